"""The partner's promo codes in Resources (with each code's numbers) and in Performance, and a
partner's request for a code."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from commissions.models import Referral
from tests.commissions.conftest import paid, signed_up
from tests.factories import PartnerFactory, PromoCodeFactory
from tracking.models import PromoCode
from tracking.services import PROMO_CODE_OPEN_REQUESTS_MAX

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

RESOURCES = "/resources/"
REQUEST = "/resources/promo-codes/request/"


@pytest.fixture
def refer_by_code(send):
    def _refer(customer_id: str, code: str, *, created=None):
        body = signed_up(customer_id, None, created=created)
        body["data"]["promo_code"] = code
        assert send(body).status_code == 201
        return Referral.objects.get(customer_id=customer_id)

    return _refer


def test_resources_lists_each_code_with_its_sign_ups_subscriptions_and_commission(partner_client, refer_by_code, send):
    mine = PromoCodeFactory(partner=partner_client.partner, code="PODCAST", trial_days=30)
    PromoCodeFactory(partner=partner_client.partner, code="VIDEO")
    refer_by_code("cus_1", "PODCAST")
    refer_by_code("cus_2", "podcast")
    send(paid("pay_1", "cus_1", "49.00"))
    response = partner_client.get(RESOURCES)
    rows = {row.code.code: row for row in response.context["promo_codes"]}
    assert rows["PODCAST"].code == mine
    assert (rows["PODCAST"].sign_ups, rows["PODCAST"].subscriptions, rows["PODCAST"].commission) == (
        2,
        1,
        Decimal("9.80"),
    )
    assert (rows["VIDEO"].sign_ups, rows["VIDEO"].subscriptions, rows["VIDEO"].commission) == (0, 0, Decimal("0"))
    page = response.content.decode()
    assert "PODCAST" in page and "9.80" in page


def test_a_partner_never_sees_another_partners_codes(partner_client):
    PromoCodeFactory(partner=PartnerFactory(), code="SOMEONEELSE")
    response = partner_client.get(RESOURCES)
    assert response.context["promo_codes"] == []
    assert "SOMEONEELSE" not in response.content.decode()


def test_the_resources_page_makes_the_same_number_of_queries_whatever_the_number_of_codes(
    partner_client, refer_by_code, django_assert_max_num_queries
):
    PromoCodeFactory(partner=partner_client.partner, code="CODE-A")
    refer_by_code("cus_a", "CODE-A")
    partner_client.get(RESOURCES)
    with django_assert_max_num_queries(30) as few:
        partner_client.get(RESOURCES)
    # Counted now: every request resets the connection's query log the context reads from.
    baseline = len(few.captured_queries)
    for n in range(10):
        PromoCodeFactory(partner=partner_client.partner, code=f"CODE-{n}")
        refer_by_code(f"cus_{n}", f"CODE-{n}")
    with django_assert_max_num_queries(baseline):
        partner_client.get(RESOURCES)


def test_promo_codes_paginate(partner_client):
    for n in range(25):
        PromoCodeFactory(partner=partner_client.partner, code=f"PAGE-{n:02d}")
    first = partner_client.get(RESOURCES).context["promo_codes"]
    second = partner_client.get(RESOURCES + "?codes_page=2").context["promo_codes"]
    assert len(first) == 20 and len(second) == 5


def test_a_partner_asks_for_a_code_which_waits_for_staff(partner_client, send):
    response = partner_client.post(REQUEST, {"code": "MYSHOW", "trial_days": "30", "description": "my show"})
    assert response.status_code == 302
    code = PromoCode.objects.get(code="MYSHOW")
    assert code.partner == partner_client.partner and code.trial_days == 30
    assert not code.is_active and code.requested_at is not None
    body = signed_up("cus_r1", None)
    body["data"]["promo_code"] = "MYSHOW"
    assert send(body).json() == {"referral": None}  # not before staff approve it
    assert "Under review" in partner_client.get(RESOURCES).content.decode()


def test_a_requested_code_taken_in_another_case_is_a_form_error(partner_client):
    PromoCodeFactory(code="TAKEN")
    response = partner_client.post(REQUEST, {"code": "taken", "trial_days": "14"})
    assert response.status_code == 400
    assert "already taken" in response.content.decode()
    assert PromoCode.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "field"),
    [({"code": "a b", "trial_days": "14"}, "code"), ({"code": "GOOD", "trial_days": "21"}, "trial_days")],
)
def test_a_bad_request_is_a_form_error_and_writes_nothing(partner_client, data, field):
    response = partner_client.post(REQUEST, data)
    assert response.status_code == 400
    assert response.context["promo_code_form"].errors[field]
    assert not PromoCode.objects.exists()


def test_open_requests_are_limited(partner_client):
    for n in range(PROMO_CODE_OPEN_REQUESTS_MAX):
        assert partner_client.post(REQUEST, {"code": f"ASK{n}", "trial_days": "14"}).status_code == 302
    response = partner_client.post(REQUEST, {"code": "ONEMORE", "trial_days": "14"})
    assert response.status_code == 400
    assert not PromoCode.objects.filter(code="ONEMORE").exists()


def test_staff_approve_a_requested_code_in_the_admin(admin_client, partner_client):
    partner_client.post(REQUEST, {"code": "MYSHOW", "trial_days": "14"})
    code = PromoCode.objects.get(code="MYSHOW")
    response = admin_client.post(
        reverse("admin:tracking_promocode_changelist"), {"action": "approve", "_selected_action": [code.pk]}
    )
    assert response.status_code == 302
    code.refresh_from_db()
    assert code.is_active


def test_staff_cannot_create_a_second_spelling_of_a_code_in_the_admin(admin_client):
    partner = PartnerFactory()
    PromoCodeFactory(code="PODCAST")
    response = admin_client.post(
        reverse("admin:tracking_promocode_add"),
        {"partner": partner.pk, "code": "Podcast", "trial_days": "14", "description": "", "is_active": "on"},
    )
    assert response.status_code == 200
    assert "taken" in response.content.decode()
    assert PromoCode.objects.count() == 1


def test_the_anonymous_cannot_ask_for_a_code(client):
    response = client.post(REQUEST, {"code": "MYSHOW", "trial_days": "14"})
    assert response.status_code == 302
    assert not PromoCode.objects.exists()


def _days_ago(n: int):
    return timezone.now() - timedelta(days=n)


def test_performance_shows_each_codes_numbers_inside_the_chosen_range(partner_client, refer_by_code, send):
    PromoCodeFactory(partner=partner_client.partner, code="PODCAST")
    refer_by_code("cus_old", "PODCAST", created=_days_ago(40))
    send(paid("pay_old", "cus_old", "49.00", created=_days_ago(39)))
    refer_by_code("cus_new", "PODCAST", created=_days_ago(5))
    send(paid("pay_new", "cus_new", "100.00", created=_days_ago(4)))
    start, end = (timezone.localdate() - timedelta(days=10)), timezone.localdate()
    response = partner_client.get(f"/performance/promo-codes/?start={start:%Y-%m-%d}&end={end:%Y-%m-%d}")
    (row,) = response.context["promo_codes"]
    assert (row.sign_ups, row.subscriptions, row.commission) == (1, 1, Decimal("20.00"))
    assert "PODCAST" in response.content.decode()


def test_promo_code_performance_shows_only_the_partners_own_codes(partner_client, refer_by_code):
    PromoCodeFactory(partner=PartnerFactory(), code="THEIRS")
    refer_by_code("cus_t", "THEIRS")
    response = partner_client.get("/performance/promo-codes/")
    assert response.status_code == 200
    assert response.context["promo_codes"] == []
    assert "THEIRS" not in response.content.decode()


def test_promo_code_performance_query_count_does_not_grow_with_codes(
    partner_client, refer_by_code, django_assert_max_num_queries
):
    PromoCodeFactory(partner=partner_client.partner, code="CODE-A")
    refer_by_code("cus_a", "CODE-A")
    with django_assert_max_num_queries(30) as few:
        partner_client.get("/performance/promo-codes/")
    baseline = len(few.captured_queries)
    for n in range(8):
        PromoCodeFactory(partner=partner_client.partner, code=f"CODE-{n}")
        refer_by_code(f"cus_{n}", f"CODE-{n}")
    with django_assert_max_num_queries(baseline):
        partner_client.get("/performance/promo-codes/")


def test_promo_code_performance_with_a_bad_range_says_so_and_shows_the_last_30_days(partner_client):
    response = partner_client.get("/performance/promo-codes/?start=2026-13-40&end=x")
    assert response.status_code == 200
    assert "Showing the last 30 days." in response.content.decode()


def test_the_performance_page_links_to_its_promo_codes_tab(partner_client):
    assert "/performance/promo-codes/" in partner_client.get("/performance/").content.decode()


# --- the Promo codes tab's CSV ------------------------------------------------------------------

EXPORT = "/performance/promo-codes/export.csv"


def _csv(response) -> list[list[str]]:
    import csv
    import io

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="promo-codes-')
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def test_the_promo_code_csv_has_the_tabs_columns_and_numbers_for_the_range(partner_client, refer_by_code, send):
    PromoCodeFactory(partner=partner_client.partner, code="PODCAST", trial_days=30)
    PromoCodeFactory(partner=partner_client.partner, code="VIDEO")
    refer_by_code("cus_old", "PODCAST", created=_days_ago(40))
    send(paid("pay_old", "cus_old", "49.00", created=_days_ago(39)))
    refer_by_code("cus_new", "PODCAST", created=_days_ago(5))
    send(paid("pay_new", "cus_new", "10000.00", created=_days_ago(4)))
    start, end = (timezone.localdate() - timedelta(days=10)), timezone.localdate()
    query = f"start={start:%Y-%m-%d}&end={end:%Y-%m-%d}"
    page = partner_client.get(f"/performance/promo-codes/?{query}")
    header, *rows = _csv(partner_client.get(f"{EXPORT}?{query}"))
    # The table's column titles, in its order; its rows (newest code first).
    titles = [str(title) for title in page.context["columns"]]
    assert header == titles == ["Code", "Trial", "Sign-ups", "Subscriptions", "Commission (USD)"]
    assert rows == [["VIDEO", "14 days", "0", "0", "0.00"], ["PODCAST", "30 days", "1", "1", "2000.00"]]
    for title in titles:
        assert f">{title}</th>" in page.content.decode()
    assert f"/performance/promo-codes/export.csv?{query.replace('&', '&amp;')}" in page.content.decode()


def test_the_promo_code_csv_holds_only_the_partners_own_codes(partner_client, refer_by_code):
    PromoCodeFactory(partner=partner_client.partner, code="MINE")
    PromoCodeFactory(partner=PartnerFactory(), code="THEIRS")
    refer_by_code("cus_t", "THEIRS")
    _header, *rows = _csv(partner_client.get(EXPORT))
    assert [row[0] for row in rows] == ["MINE"]
    assert "THEIRS" not in str(rows)


def test_the_promo_code_csv_refuses_a_bad_range_and_the_anonymous(partner_client):
    from django.test import Client

    response = partner_client.get(f"{EXPORT}?start=2026-13-40&end=x")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert Client().get(EXPORT).status_code == 302  # to the login


def test_the_promo_code_csv_makes_the_same_number_of_queries_whatever_the_number_of_codes(
    partner_client, refer_by_code, django_assert_max_num_queries, monkeypatch
):
    from tracking import promo_views

    PromoCodeFactory(partner=partner_client.partner, code="CODE-A")
    refer_by_code("cus_a", "CODE-A")
    with django_assert_max_num_queries(30) as few:
        assert len(_csv(partner_client.get(EXPORT))) == 2
    baseline = len(few.captured_queries)
    for n in range(12):
        PromoCodeFactory(partner=partner_client.partner, code=f"CODE-{n}")
        refer_by_code(f"cus_{n}", f"CODE-{n}")
    with django_assert_max_num_queries(baseline) as one_chunk:
        assert len(_csv(partner_client.get(EXPORT))) == 14
    # Read in chunks: 13 codes five at a time is three chunks (5, 5, 3), each a list query and
    # three grouped ones: two chunks more than one.
    monkeypatch.setattr(promo_views, "EXPORT_CHUNK", 5)
    with django_assert_max_num_queries(30) as chunked:
        rows = _csv(partner_client.get(EXPORT))
    assert len(rows) == 14 and len({row[0] for row in rows[1:]}) == 13
    assert len(chunked.captured_queries) == len(one_chunk.captured_queries) + 2 * 4
