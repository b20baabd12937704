"""Issue 16, Found 5 and 6: amounts in ASCII digits only; any date the schema accepts answers
normally (never a 500) on both the SQL fast path and the general path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commissions.models import MerchantEvent, Referral
from tests.commissions.conftest import iso, paid, refunded, row_counts, signed_up
from tests.factories import ClickFactory, LinkFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["fast", "general"])
def path(request, settings):
    """Both paths: the one-statement SQL path (PostgreSQL) and the ORM path."""
    settings.EVENTS_SQL_FAST_PATH = request.param == "fast"
    return request.param


@pytest.mark.parametrize(
    "amount",
    [
        "\u0661\u0662.\u0663\u0664",  # Arabic-Indic digits: ١٢.٣٤
        "\uff14\uff19.\uff10\uff10",  # fullwidth digits: ４９.００
        "\u0664\u0669",  # ٤٩
        "4\u0669.00",  # one non-ASCII digit among ASCII ones
        "\u09ea\u09ef.00",  # Bengali digits
    ],
)
def test_a_payment_amount_in_non_ascii_digits_is_refused_with_400_and_writes_nothing(send, referral_of, amount):
    referral_of("cus_1")
    before = row_counts()
    response = send(paid("pay_1", "cus_1", amount))
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_amount"
    assert response.json()["error"]["field"] == "data.amount"
    assert row_counts() == before


def test_a_refund_amount_in_non_ascii_digits_is_refused_with_400(send, referral_of):
    referral_of("cus_1")
    assert send(paid("pay_1", "cus_1", "49.00")).status_code == 201
    before = row_counts()
    response = send(refunded("pay_1", "\uff11\uff10.00"))
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_amount",
        "message": response.json()["error"]["message"],
        "field": "data.amount",
    }
    assert row_counts() == before


def test_the_published_amount_pattern_is_ascii_only():
    from commissions.schemas import _AMOUNT_RE

    assert _AMOUNT_RE.fullmatch("49.00")
    assert not _AMOUNT_RE.fullmatch("\u0664\u0669.00")


LATE = [
    "9999-12-31T23:59:59.999999Z",
    "9999-12-25T00:00:00Z",
    "9999-12-17T12:00:00Z",  # a 14-day trial would end on 9999-12-31 ... 12:00, still representable
    "9999-12-31T23:59:59-15:59",  # the latest instant with the largest offset PostgreSQL accepts
]
EARLY = ["0001-01-01T00:00:00Z", "0001-01-01T15:59:00+15:59"]


@pytest.mark.parametrize("created", LATE + EARLY)
def test_a_sign_up_at_the_edges_of_the_calendar_answers_normally_on_both_paths(send, path, created):
    click = ClickFactory(link=LinkFactory(trial_days=30))
    body = signed_up("cus_edge", click.id)
    body["created"] = created
    response = send(body)
    assert response.status_code in (201, 400), response.content
    if response.status_code == 201:
        # The click was made now: a sign-up years away from it is outside the window.
        assert response.json() == {"referral": None}
    else:
        assert response.json()["error"]["field"] == "created"


@pytest.mark.parametrize("trial_days", [14, 30])
def test_a_sign_up_inside_the_window_whose_trial_would_end_after_9999_is_refused_on_both_paths(send, path, trial_days):
    created = datetime(9999, 12, 31, 12, 0, tzinfo=UTC) - timedelta(days=trial_days - 1)
    click = ClickFactory(link=LinkFactory(trial_days=trial_days), created_at=created - timedelta(hours=1))
    before = row_counts()
    body = signed_up("cus_late", click.id, created=created)
    response = send(body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == "created"
    assert row_counts() == before
    assert not Referral.objects.exists()


@pytest.mark.parametrize("trial_days", [14, 30])
def test_a_sign_up_inside_the_window_whose_trial_ends_just_before_year_10000_is_a_referral(send, path, trial_days):
    created = datetime(9999, 12, 31, 23, 0, tzinfo=UTC) - timedelta(days=trial_days)
    click = ClickFactory(link=LinkFactory(trial_days=trial_days), created_at=created - timedelta(hours=1))
    response = send(signed_up("cus_late", click.id, created=created))
    assert response.status_code == 201, response.content
    assert response.json()["referral"]["trial_ends_at"] == iso(created + timedelta(days=trial_days))


@pytest.mark.parametrize("created", LATE + EARLY)
def test_a_payment_at_the_edges_of_the_calendar_answers_normally_on_both_paths(send, path, created):
    click = ClickFactory(created_at=datetime(2025, 1, 1, tzinfo=UTC))
    assert send(signed_up("cus_1", click.id, created=datetime(2025, 1, 2, tzinfo=UTC))).status_code == 201
    body = paid("pay_edge", "cus_1")
    body["created"] = created
    response = send(body)
    if created.endswith("-15:59"):  # the year 10000 in UTC: the schema refuses it
        assert response.status_code == 400
        assert response.json()["error"]["field"] == "created"
        return
    assert response.status_code == 201, response.content
    assert response.json()["commission"] == {"amount": "9.80"}
    assert MerchantEvent.objects.filter(event_id=body["id"]).exists()


def test_a_date_whose_program_day_is_after_9999_is_refused_with_400(send, settings, referral_of):
    settings.TIME_ZONE = "Asia/Tokyo"
    referral_of("cus_1")
    body = paid("pay_edge", "cus_1")
    body["created"] = "9999-12-31T23:00:00Z"  # already 10000-01-01 in Tokyo
    before = row_counts()
    response = send(body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == "created"
    assert row_counts() == before
