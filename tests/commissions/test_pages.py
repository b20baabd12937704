"""The referrals and commissions pages, their CSV exports and a referral's timeline."""

from __future__ import annotations

import codecs
import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from commissions.display import mask_email
from commissions.models import Referral
from tests.commissions.conftest import cancelled, paid, refunded, signed_up
from tests.factories import ClickFactory, LinkFactory

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def link_of(partner_client):
    def _link(**kw):
        return LinkFactory(partner=partner_client.partner, **kw)

    return _link


@pytest.fixture
def refer(send, partner_client):
    """Sign up a customer through a fresh click on ``link`` (the partner's default by default)."""

    def _refer(customer_id: str, *, link=None, created=None, email=None):
        link = link or partner_client.partner.links.get(is_default=True)
        created = created or timezone.now()
        click = ClickFactory(link=link, created_at=created - timedelta(minutes=5))
        response = send(signed_up(customer_id, click.id, created=created, email=email))
        assert response.status_code == 201, response.content
        return Referral.objects.get(customer_id=customer_id)

    return _refer


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    assert body.startswith(codecs.BOM_UTF8), "a CSV starts with a UTF-8 byte-order mark (Excel)"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _column_titles(html: str) -> list[str]:
    """The visible text of a page's table header cells (sort arrows left out)."""
    cells = re.findall(r"<th[^>]*>(.*?)</th>", html, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>|[▲▼]", "", cell)).strip() for cell in cells]


# --- masking -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "masked"),
    [("john@example.com", "j***@example.com"), ("a@b.io", "a***@b.io"), ("", ""), (None, ""), ("weird", "w***")],
)
def test_customer_emails_are_masked(email, masked):
    assert mask_email(email) == masked


# --- /referrals/ -------------------------------------------------------------------------


def test_the_referrals_page_lists_each_referral_with_link_status_plan_money_and_masked_email(
    partner_client, refer, link_of, send
):
    link = link_of(description="Spring newsletter")
    refer("cus_1", link=link, email="jane.doe@example.com")
    send(paid("pay_1", "cus_1", "49.00", plan="B", seats=3))
    response = partner_client.get(reverse("commissions:referral_list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Spring newsletter" in html
    assert "j***@example.com" in html
    assert "jane.doe@example.com" not in html
    assert "Paying" in html
    assert "Plan B" in html
    assert "49.00" in html and "9.80" in html


def test_an_ended_trial_reads_as_trial_ended_not_trial(partner_client, refer):
    refer("cus_old", created=timezone.now() - timedelta(days=20))
    html = partner_client.get(reverse("commissions:referral_list")).content.decode()
    assert "Trial ended" in html
    assert 'badge-trial"' not in html


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("trial", {"cus_trial"}),
        ("expired", {"cus_ended"}),
        ("paying", {"cus_paying"}),
        ("cancelled", {"cus_gone"}),
        ("", {"cus_trial", "cus_ended", "cus_paying", "cus_gone"}),
    ],
)
def test_the_referrals_page_filters_by_status(partner_client, refer, send, status, expected):
    refer("cus_trial")
    refer("cus_ended", created=timezone.now() - timedelta(days=20))
    refer("cus_paying")
    send(paid("pay_1", "cus_paying"))
    refer("cus_gone")
    send(cancelled("cus_gone"))
    response = partner_client.get(reverse("commissions:referral_list"), {"status": status})
    assert {r.customer_id for r in response.context["referrals"]} == expected


def test_the_referrals_page_filters_by_link(partner_client, refer, link_of):
    newsletter = link_of(description="Newsletter")
    refer("cus_a", link=newsletter)
    refer("cus_b")
    response = partner_client.get(reverse("commissions:referral_list"), {"link": newsletter.pk})
    assert [r.customer_id for r in response.context["referrals"]] == ["cus_a"]


def test_another_partners_link_is_not_a_valid_filter(partner_client, refer):
    refer("cus_a")
    foreign = LinkFactory()
    response = partner_client.get(reverse("commissions:referral_list"), {"link": foreign.pk})
    assert [r.customer_id for r in response.context["referrals"]] == ["cus_a"]  # ignored, not someone else's data


def test_the_referrals_page_sorts_by_money_brought(partner_client, refer, send):
    for customer, amount in (("cus_small", "10.00"), ("cus_big", "90.00"), ("cus_mid", "50.00")):
        refer(customer)
        send(paid(f"pay_{customer}", customer, amount))
    url = reverse("commissions:referral_list")
    descending = partner_client.get(url, {"sort": "-paid"}).context["referrals"]
    ascending = partner_client.get(url, {"sort": "paid"}).context["referrals"]
    assert [r.customer_id for r in descending] == ["cus_big", "cus_mid", "cus_small"]
    assert [r.customer_id for r in ascending] == ["cus_small", "cus_mid", "cus_big"]


def test_the_referrals_page_paginates(partner_client, refer):
    for i in range(27):
        refer(f"cus_{i}")
    first = partner_client.get(reverse("commissions:referral_list"))
    second = partner_client.get(reverse("commissions:referral_list"), {"page": 2})
    assert len(first.context["referrals"]) == 25
    assert len(second.context["referrals"]) == 2


def test_a_partner_sees_only_their_own_referrals(partner_client, refer, send):
    refer("cus_mine")
    other_click = ClickFactory(created_at=timezone.now() - timedelta(minutes=1))
    send(signed_up("cus_theirs", other_click.id))
    response = partner_client.get(reverse("commissions:referral_list"))
    assert [r.customer_id for r in response.context["referrals"]] == ["cus_mine"]


def test_the_referrals_page_query_count_does_not_grow_with_rows(partner_client, refer, django_assert_max_num_queries):
    url = reverse("commissions:referral_list")
    refer("cus_0")
    with django_assert_max_num_queries(50) as one_row:
        partner_client.get(url)
    baseline = len(one_row.captured_queries)
    for i in range(1, 20):
        refer(f"cus_{i}", link=LinkFactory(partner=partner_client.partner))
    with django_assert_max_num_queries(baseline):
        response = partner_client.get(url)
    assert len(response.context["referrals"]) == 20


def test_the_referrals_page_requires_login(client):
    response = client.get(reverse("commissions:referral_list"))
    assert response.status_code == 302
    assert reverse("partners:login") in response["Location"]


# --- /referrals/<id>/ ----------------------------------------------------------------------


def test_a_referral_shows_its_full_timeline_with_each_commission(partner_client, refer, send):
    start = timezone.now() - timedelta(days=5)
    referral = refer("cus_1", created=start)
    send(paid("pay_1", "cus_1", "49.00", created=start + timedelta(days=1)))
    send(refunded("pay_1", "10.00", created=start + timedelta(days=2)))
    send(cancelled("cus_1", created=start + timedelta(days=3)))
    send(paid("pay_2", "cus_1", "20.00", created=start + timedelta(days=4)))
    response = partner_client.get(reverse("commissions:referral_detail", args=[referral.pk]))
    assert response.status_code == 200
    timeline = response.context["timeline"]
    assert [item.kind for item in timeline] == ["click", "signed_up", "payment", "refund", "cancelled", "payment"]
    assert [item.commission for item in timeline] == [None, None, D("9.80"), D("-2.00"), None, D("4.00")]
    assert response.context["referral"].current_status == "paying"


def test_a_trial_that_ended_unpaid_shows_in_the_timeline(partner_client, refer):
    referral = refer("cus_1", created=timezone.now() - timedelta(days=20))
    response = partner_client.get(reverse("commissions:referral_detail", args=[referral.pk]))
    assert "trial_ended" in [item.kind for item in response.context["timeline"]]
    assert "Trial ended" in response.content.decode()


def test_a_referral_names_its_link_as_the_list_and_the_csv_do(partner_client, refer, link_of):
    campaign = link_of(code="spring", description="Spring newsletter")
    plain = link_of(code="plain01", description="")
    for customer_id, link, name in (
        ("cus_default", None, "Default link"),
        ("cus_campaign", campaign, "Spring newsletter"),
        ("cus_plain", plain, "/r/plain01"),
    ):
        referral = refer(customer_id, link=link)
        page = partner_client.get(reverse("commissions:referral_detail", args=[referral.pk])).content.decode()
        assert f"<dt>Link</dt><dd>{name} <span" in page
        listed = partner_client.get(reverse("commissions:referral_list")).content.decode()
        assert f'data-label="Link">{name}</td>' in listed


def test_another_partners_referral_is_a_404(partner_client, send):
    other_click = ClickFactory(created_at=timezone.now() - timedelta(minutes=1))
    send(signed_up("cus_theirs", other_click.id))
    theirs = Referral.objects.get(customer_id="cus_theirs")
    assert partner_client.get(reverse("commissions:referral_detail", args=[theirs.pk])).status_code == 404


def test_the_timeline_query_count_does_not_grow_with_history(
    partner_client, refer, send, django_assert_max_num_queries
):
    referral = refer("cus_1", created=timezone.now() - timedelta(days=10))
    send(paid("pay_0", "cus_1", "10.00"))
    url = reverse("commissions:referral_detail", args=[referral.pk])
    with django_assert_max_num_queries(50) as short:
        partner_client.get(url)
    baseline = len(short.captured_queries)
    for i in range(1, 10):
        send(paid(f"pay_{i}", "cus_1", "10.00"))
        send(refunded(f"pay_{i}", "1.00"))
    with django_assert_max_num_queries(baseline):
        partner_client.get(url)


# --- /commissions/ -------------------------------------------------------------------------


def test_the_commissions_page_lists_payments_and_refund_reversals_with_totals(partner_client, refer, send):
    refer("cus_1", email="jane@example.com")
    send(paid("pay_1", "cus_1", "49.00", plan="C", seats=4))
    send(refunded("pay_1", "10.00"))
    response = partner_client.get(reverse("commissions:commission_list"))
    entries = response.context["entries"]
    assert [(e.kind, e.amount) for e in entries] == [("reversal", D("-2.00")), ("commission", D("9.80"))]
    totals = response.context["totals"]
    assert (totals.payments, totals.refunds, totals.net, totals.commission) == (
        D("49.00"),
        D("10.00"),
        D("39.00"),
        D("7.80"),
    )
    html = response.content.decode()
    assert "j***@example.com" in html and "jane@example.com" not in html
    assert "Plan C" in html


def test_the_commissions_page_filters_by_date_and_totals_the_range(partner_client, refer, send):
    refer("cus_1", created=timezone.now() - timedelta(days=40))
    send(paid("pay_old", "cus_1", "100.00", created=timezone.now() - timedelta(days=35)))
    send(paid("pay_new", "cus_1", "10.00", created=timezone.now() - timedelta(days=1)))
    start = (timezone.localdate() - timedelta(days=7)).isoformat()
    response = partner_client.get(reverse("commissions:commission_list"), {"start": start})
    assert [e.payment.payment_id for e in response.context["entries"]] == ["pay_new"]
    assert response.context["totals"].commission == D("2.00")


def test_the_commissions_page_shows_only_the_partners_own_payments(partner_client, refer, send):
    refer("cus_mine")
    send(paid("pay_mine", "cus_mine"))
    other_click = ClickFactory(created_at=timezone.now() - timedelta(minutes=1))
    send(signed_up("cus_theirs", other_click.id))
    send(paid("pay_theirs", "cus_theirs"))
    response = partner_client.get(reverse("commissions:commission_list"))
    assert [e.payment.payment_id for e in response.context["entries"]] == ["pay_mine"]
    assert response.context["totals"].commission == D("9.80")


def test_the_commissions_page_query_count_does_not_grow_with_rows(
    partner_client, refer, send, django_assert_max_num_queries
):
    refer("cus_1")
    send(paid("pay_0", "cus_1"))
    # A reversal in both: the own takes are then read (and, after a new one, recomputed) in both.
    send(refunded("pay_0", "1.00"))
    url = reverse("commissions:commission_list")
    with django_assert_max_num_queries(50) as one_row:
        partner_client.get(url)
    baseline = len(one_row.captured_queries)
    for i in range(1, 15):
        send(paid(f"pay_{i}", "cus_1"))
        send(refunded(f"pay_{i}", "1.00"))
    with django_assert_max_num_queries(baseline):
        response = partner_client.get(url)
    assert len(response.context["entries"]) == 25


def test_a_bad_date_range_is_explained_not_a_crash(partner_client):
    response = partner_client.get(reverse("commissions:commission_list"), {"start": "2025-02-01", "end": "2025-01-01"})
    assert response.status_code == 200
    assert "before the start date" in response.content.decode()


def test_a_reversed_range_shows_the_error_and_no_rows_not_all_of_them(partner_client, refer, send):
    refer("cus_1")
    send(paid("pay_1", "cus_1", "49.00"))
    reversed_range = {"start": "2025-02-01", "end": "2025-01-01"}
    referrals = partner_client.get(reverse("commissions:referral_list"), reversed_range)
    assert "before the start date" in referrals.content.decode()
    assert list(referrals.context["referrals"]) == []
    assert "match these filters" not in referrals.content.decode()
    commissions = partner_client.get(reverse("commissions:commission_list"), reversed_range)
    assert list(commissions.context["entries"]) == []
    # The CSV answers the range error itself instead of a file of every row.
    assert partner_client.get(reverse("commissions:referral_export"), reversed_range).status_code == 400


def test_a_referrals_back_link_keeps_the_lists_filters_and_sort(partner_client, refer):
    referral = refer("cus_1")
    filters = {"status": "trial", "sort": "-paid", "page": "1"}
    listing = partner_client.get(reverse("commissions:referral_list"), filters).content.decode()
    detail_url = reverse("commissions:referral_detail", args=[referral.pk])
    assert f'href="{detail_url}?status=trial&amp;sort=-paid&amp;page=1"' in listing
    detail = partner_client.get(detail_url, {**filters, "next": "https://evil.example/"}).content.decode()
    assert f'href="{reverse("commissions:referral_list")}?status=trial&amp;sort=-paid&amp;page=1"' in detail
    assert "evil.example" not in detail


def test_sort_headers_show_their_direction(partner_client, refer):
    refer("cus_1")
    html = partner_client.get(reverse("commissions:referral_list"), {"sort": "paid"}).content.decode()
    assert 'aria-sort="ascending"' in html and "▲" in html
    html = partner_client.get(reverse("commissions:referral_list")).content.decode()
    assert 'aria-sort="descending"' in html and "▼" in html


# --- CSV -------------------------------------------------------------------------------------


def test_the_referrals_csv_has_the_filtered_rows_with_masked_emails(partner_client, refer, send):
    refer("cus_1", email="jane@example.com")
    send(paid("pay_1", "cus_1", "49.00", plan="B", seats=2))
    refer("cus_2")
    response = partner_client.get(reverse("commissions:referral_export"), {"status": "paying"})
    assert response["Content-Type"].startswith("text/csv")
    assert response.streaming
    rows = _csv(response)
    assert rows[0][:3] == ["Referral", "Customer", "Link"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["Customer"], row["Status"], row["Plan now"], row["Seats"]) == (
        "j***@example.com",
        "Paying",
        "Plan B",
        "2",
    )
    assert (row["Money brought (USD)"], row["Commission (USD)"]) == ("49.00", "9.80")
    # Whole seconds in the program's time zone, no microseconds or offset.
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", row["Signed up"]), row["Signed up"]


def test_the_csv_columns_have_the_titles_of_the_page(partner_client, refer, send):
    refer("cus_1")
    send(paid("pay_1", "cus_1", "49.00"))
    for page, export in (
        ("commissions:referral_list", "commissions:referral_export"),
        ("commissions:commission_list", "commissions:commission_export"),
    ):
        titles = _column_titles(partner_client.get(reverse(page)).content.decode())
        header = _csv(partner_client.get(reverse(export)))[0]
        assert titles and set(titles) <= set(header), (page, titles, header)


def test_the_commissions_csv_has_payments_and_reversals_for_the_range(partner_client, refer, send):
    refer("cus_1")
    send(paid("pay_1", "cus_1", "49.00"))
    send(refunded("pay_1", "10.00"))
    today = timezone.localdate().isoformat()
    response = partner_client.get(reverse("commissions:commission_export"), {"start": today, "end": today})
    rows = _csv(response)
    assert rows[0] == [
        "Date",
        "Type",
        "Referral",
        "Customer",
        "Plan",
        "Seats",
        "Amount (USD)",
        "Commission (USD)",
        "State",
    ]
    assert sorted((r[1], r[6], r[7], r[8]) for r in rows[1:]) == [
        ("Payment", "49.00", "9.80", "Reversed 2.00; Available 7.80"),
        ("Refund", "-10.00", "-2.00", "Reversed"),
    ]
    html = partner_client.get(reverse("commissions:commission_list")).content.decode()
    assert ">Payment<" in html and ">Refund<" in html  # the same words on the page
    assert f"commissions-{today}-to-{today}.csv" in response["Content-Disposition"]


def test_the_commissions_csv_keeps_the_state_filter_of_the_page_it_is_downloaded_from(partner_client, refer, send):
    refer("cus_1")
    send(paid("pay_1", "cus_1", "49.00"))
    send(refunded("pay_1", "10.00"))
    refer("cus_2")
    send(paid("pay_2", "cus_2", "29.00"))
    page = partner_client.get(reverse("commissions:commission_list"), {"state": "reversed"}).content.decode()
    download = re.search(r'href="([^"]*/commissions/export\.csv[^"]*)"', page).group(1).replace("&amp;", "&")
    assert "state=reversed" in download
    reversed_rows = _csv(partner_client.get(download))[1:]
    # The refund's reversal and the payment it partly reversed; not the other payment.
    assert sorted((r[1], r[6], r[8]) for r in reversed_rows) == [
        ("Payment", "49.00", "Reversed 2.00; Available 7.80"),
        ("Refund", "-10.00", "Reversed"),
    ]
    export = reverse("commissions:commission_export")
    available = _csv(partner_client.get(export, {"state": "available"}))[1:]
    assert sorted(r[6] for r in available) == ["29.00", "49.00"]
    assert _csv(partner_client.get(export, {"state": "paid"}))[1:] == []
    # No state, or one that is not a state: every row, as on the page.
    assert len(_csv(partner_client.get(export))) == len(_csv(partner_client.get(export, {"state": "bogus"}))) == 4


def test_the_csv_exports_never_include_another_partners_rows(partner_client, refer, send):
    refer("cus_mine")
    other_click = ClickFactory(created_at=timezone.now() - timedelta(minutes=1))
    send(signed_up("cus_theirs", other_click.id))
    send(paid("pay_theirs", "cus_theirs"))
    assert len(_csv(partner_client.get(reverse("commissions:referral_export")))) == 2
    assert len(_csv(partner_client.get(reverse("commissions:commission_export")))) == 1


def test_the_csv_export_query_count_does_not_grow_with_rows(partner_client, refer, send, django_assert_max_num_queries):
    refer("cus_0")
    url = reverse("commissions:referral_export")
    with django_assert_max_num_queries(50) as small:
        _csv(partner_client.get(url))
    baseline = len(small.captured_queries)
    for i in range(1, 10):
        refer(f"cus_{i}")
    with django_assert_max_num_queries(baseline):
        assert len(_csv(partner_client.get(url))) == 11


def test_the_pages_link_to_their_csv_downloads(partner_client):
    assert (
        reverse("commissions:referral_export")
        in partner_client.get(reverse("commissions:referral_list")).content.decode()
    )
    assert (
        reverse("commissions:commission_export")
        in partner_client.get(reverse("commissions:commission_list")).content.decode()
    )


def test_staff_without_a_partner_profile_get_403(client):
    from tests.factories import StaffFactory

    client.force_login(StaffFactory())
    assert client.get(reverse("commissions:commission_list")).status_code == 403


def test_a_trial_paid_after_it_ended_is_not_said_to_have_had_no_payment(partner_client, refer, send):
    referral = refer("cus_1", created=timezone.now() - timedelta(days=20))
    send(paid("pay_late", "cus_1", "49.00", created=referral.trial_ends_at + timedelta(minutes=50)))
    response = partner_client.get(reverse("commissions:referral_detail", args=[referral.pk]))
    ended = [item for item in response.context["timeline"] if item.kind == "trial_ended"]
    assert len(ended) == 1
    assert "No payment" not in ended[0].detail
    assert "No payment during the trial" not in response.content.decode()


def test_money_and_dates_read_the_same_everywhere(partner_client, refer, send):
    refer("cus_1")
    send(paid("pay_1", "cus_1", "12345.60"))
    html = partner_client.get(reverse("commissions:commission_list")).content.decode()
    assert "12,345.60" in html and "2,469.12" in html  # thousands separated
    assert "12345.60" not in html
    assert "2,469.12\u00a0USD" in html  # the currency never wraps apart from the amount
    day = timezone.localtime().strftime("%b ") + str(timezone.localtime().day)
    assert day in html


@pytest.mark.parametrize("query", [{}, {"state": "reversed"}])
def test_each_kind_of_ledger_row_shows_what_it_is(partner_client, refer, send, query):
    """A commission of the partner's own sign-up (badge), a refund's reversal (negative refunded
    amount), a staff void (its reason): the rows are read with the columns they show only, so a
    cell that needed another would cost a query per row."""
    from django.contrib.auth import get_user_model

    from commissions.fraud.services import commission_void
    from commissions.models import CommissionEntry

    own = partner_client.partner.user.email
    refer("cus_self", email=own.upper())
    send(paid("pay_self", "cus_self", "20.00"))
    refer("cus_2", email="bob@example.com")
    send(paid("pay_2", "cus_2", "50.00", plan="B", seats=3))
    send(refunded("pay_2", "15.00"))
    send(paid("pay_3", "cus_2", "40.00"))
    staff = get_user_model().objects.create_user(email="staff@example.com", password="x", is_staff=True)
    entry = CommissionEntry.objects.get(payment__payment_id="pay_3", kind=CommissionEntry.Kind.COMMISSION)
    commission_void(entry_id=entry.pk, actor=staff, reason="Test traffic <b>not</b> real")
    response = partner_client.get(reverse("commissions:commission_list"), query)
    assert response.status_code == 200
    rows = re.findall(r"<tr[ >].*?</tr>", response.content.decode(), re.S)[1:-1]  # header and totals out
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]
    void = next(row for row in rows if "Void" in row)
    assert 'class="reversal-row"' in void
    assert "Test traffic &lt;b&gt;not&lt;/b&gt; real" in void  # the reason, escaped
    reversal = next(row for row in rows if "Refund" in row or "Reversal" in row)
    assert 'class="num negative"' in reversal and "-15.00" in reversal
    if not query:
        own_row = next(row for row, words in zip(rows, text, strict=True) if "Plan A" in words and "20.00" in words)
        assert "Self-referral" in own_row
        assert any("Plan B" in words and "3" in words.split() for words in text)
    with CaptureQueriesContext(connection) as queries:
        partner_client.get(reverse("commissions:commission_list"), query)
    for n in range(4, 8):
        send(paid(f"pay_{n}", "cus_self" if n % 2 else "cus_2", "10.00"))
        send(refunded(f"pay_{n}", "10.00"))
    partner_client.get(reverse("commissions:commission_list"), query)  # the own takes recomputed once
    with CaptureQueriesContext(connection) as more:
        partner_client.get(reverse("commissions:commission_list"), query)
    assert len(more.captured_queries) == len(queries.captured_queries)
