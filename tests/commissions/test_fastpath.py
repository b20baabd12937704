"""PostgreSQL's one-statement path for payments and sign-ups (commissions/fastpath/) against
the general ORM path: the same events through each give the same answers and the same rows."""

from __future__ import annotations

import collections
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral
from tests.commissions.conftest import cancelled, paid, refunded, signed_up
from tests.factories import ClickFactory, LinkFactory
from tracking.models import DailyLinkStats, LinkMonthlyStats

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement event path exists on PostgreSQL only; runs in CI via .ci/run")


def _world(send, settings, *, fast: bool, tag: str, at) -> dict[str, Any]:
    """One program history through one path; returns every answer and row, made comparable."""
    settings.EVENTS_SQL_FAST_PATH = fast
    link = LinkFactory(trial_days=30)
    partner = link.partner
    click = ClickFactory(link=link, created_at=at - timedelta(hours=2))
    old_click = ClickFactory(link=link, created_at=at - timedelta(days=200))
    own_email = partner.user.email.upper()

    def cus(name: str) -> str:
        return f"{tag}-{name}"

    def evt(name: str) -> str:
        return f"{tag}-evt-{name}"

    replayed = paid(cus("pay-r"), cus("a"), "39.00", event_id=evt("replayed"), created=at)
    steps = [
        signed_up(cus("a"), click.id, email="a@example.org", event_id=evt("1")),
        signed_up(cus("self"), click.id, email=own_email, event_id=evt("2")),
        signed_up(cus("nobody"), None, event_id=evt("3")),
        signed_up(cus("late"), old_click.id, event_id=evt("4")),  # outside the window
        signed_up(cus("a"), click.id, event_id=evt("5")),  # referred already
        paid(cus("pay-1"), cus("a"), "49.00", plan="B", seats=2, event_id=evt("6")),  # first payment
        paid(cus("pay-2"), cus("a"), "98.00", plan="C", seats=3, event_id=evt("7")),  # renewal
        paid(cus("pay-3"), cus("self"), "25.00", event_id=evt("8")),  # self-referral: earns 0.00
        paid(cus("pay-4"), cus("self"), "25.00", event_id=evt("9")),  # ...again: no rollup row change
        paid(cus("pay-5"), cus("stranger"), "10.00", event_id=evt("10")),  # not a referral
        paid(cus("pay-1"), cus("a"), "49.00", event_id=evt("11")),  # a known payment id
        paid(cus("pay-6"), cus("a"), "0.02", event_id=evt("12")),  # commission rounds to 0.00
        replayed,
        replayed,  # the same event again: 200, the first answer
        {**replayed, "data": {**replayed["data"], "amount": "40.00"}},  # same id, other body: 409
        signed_up(cus("b"), click.id, event_id=evt("1")),  # a sign-up reusing an id: 409
        refunded(cus("pay-2"), "20.00", event_id=evt("13")),
        cancelled(cus("a"), event_id=evt("14")),
        paid(cus("pay-7"), cus("a"), "49.00", event_id=evt("15")),  # paying again after cancelling
        signed_up(cus("c"), click.id, event_id=evt("16")),
    ]
    ids: dict[int, str] = {}

    def comparable(value: Any) -> Any:
        text = repr(value)
        for referral_id, name in ids.items():
            text = text.replace(f"'id': {referral_id},", f"'id': {name!r},").replace(
                f"'referral': {referral_id},", f"'referral': {name!r},"
            )
        return text.replace(partner.referral_code, "<code>").replace(tag, "<tag>").replace(own_email, "<own email>")

    answers = []
    for step in steps:
        step["created"] = at.isoformat().replace("+00:00", "Z")
        response = send(step)
        for referral in Referral.objects.filter(partner=partner):
            ids[referral.pk] = referral.customer_id
        body = response.json()
        answers.append((response.status_code, comparable(body)))

    def rows(queryset, *fields: str) -> list:
        # Every field orders: a payment's commission and its reversal share the first one.
        return [comparable(row) for row in queryset.order_by(*fields).values_list(*fields)]

    for stored in MerchantEvent.objects.filter(event_id__startswith=f"{tag}-"):
        assert json.loads(stored.body)["id"] == stored.event_id  # the raw body, as sent
    referrals = Referral.objects.filter(partner=partner)
    assert set(referrals.values_list("link_id", "click_id")) == {(link.pk, click.pk)}
    return {
        "answers": answers,
        "referrals": rows(
            referrals,
            "customer_id",
            "email",
            "is_self_referral",
            "status",
            "signed_up_at",
            "trial_days",
            "trial_ends_at",
            "first_paid_at",
            "cancelled_at",
            "plan",
            "seats",
            "total_paid",
            "total_commission",
        ),
        "payments": rows(
            Payment.objects.filter(partner=partner),
            "payment_id",
            "referral__customer_id",
            "plan",
            "seats",
            "amount",
            "currency",
            "paid_at",
            "refunded_amount",
            "event__event_id",
        ),
        "entries": rows(
            CommissionEntry.objects.filter(partner=partner),
            "payment__payment_id",
            "kind",
            "amount",
            "earned_at",
            "referral__customer_id",
        ),
        "events": rows(
            MerchantEvent.objects.filter(event_id__startswith=f"{tag}-"),
            "event_id",
            "type",
            "created",
            "outcome",
            "response_status",
            "response_body",
            "referral__customer_id",
        ),
        "daily": rows(
            DailyLinkStats.objects.filter(link=link),
            "day",
            "clicks",
            "unique_clicks",
            "new_trials",
            "new_subscriptions",
            "commission",
        ),
        "monthly": rows(
            LinkMonthlyStats.objects.filter(link=link), "month", "new_trials", "new_subscriptions", "commission"
        ),
    }


def test_both_paths_give_the_same_answers_and_rows(send, settings):
    at = timezone.now().replace(microsecond=0) - timedelta(minutes=30)
    with CaptureQueriesContext(connection) as orm_queries:
        general = _world(send, settings, fast=False, tag="orm", at=at)
    with CaptureQueriesContext(connection) as sql_queries:
        one_statement = _world(send, settings, fast=True, tag="sql", at=at)
    executed = statements_run(sql_queries)
    assert statements_run(orm_queries) == []
    # Every payment and sign-up went through a statement first (those it did not settle then
    # took the general path): 11 payments, 7 sign-ups, 6 of them naming a click (the sign-up
    # statement looks it up), one of which is outside the attribution window (then logged by
    # the unattributed statement, like the sign-up without a click).
    assert collections.Counter(executed) == {
        "pp_payment": 11,
        "pp_signed_up": 6,
        "pp_unattributed": 2,
    }
    for part in general:
        assert one_statement[part] == general[part], part
    statuses = [status for status, _ in general["answers"]]
    # fmt: off
    assert statuses == [201, 201, 201, 201, 200, 201, 201, 201, 201, 201, 200, 201, 201, 200, 409, 409, 201, 201, 201, 201]
    # fmt: on
    assert "'commission': {'amount': '0.00'}" in general["answers"][7][1]  # the self-referral's payment


def statements_run(captured) -> list[str]:
    """The fast path's statements among the captured queries, by the label each starts with."""
    return [q["sql"].split()[1] for q in captured.captured_queries if q["sql"].startswith("/* pp_")]


def test_a_payment_and_a_sign_up_are_one_statement_each(send, settings, click):
    settings.EVENTS_SQL_FAST_PATH = True
    send(signed_up("cus_0", click.id))  # prepares the statements on this connection
    send(paid("pay_0", "cus_0"))
    with CaptureQueriesContext(connection) as sign_up:
        assert send(signed_up("cus_1", click.id)).status_code == 201
    with CaptureQueriesContext(connection) as payment:
        assert send(paid("pay_1", "cus_1", "49.00")).status_code == 201
    assert statements_run(payment) == ["pp_payment"]
    # The sign-up: one statement, the click lookup in it (savepoints around it in a test).
    assert statements_run(sign_up) == ["pp_signed_up"]
    assert Referral.objects.get(customer_id="cus_1").total_commission == Decimal("9.80")


def test_a_statement_is_prepared_again_on_a_new_connection(send, settings, click):
    settings.EVENTS_SQL_FAST_PATH = True
    send(signed_up("cus_1", click.id))
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a pooler's reset or a new session looks like
    assert send(paid("pay_1", "cus_1", "49.00")).status_code == 201
    assert send(signed_up("cus_2", click.id)).status_code == 201
    assert Payment.objects.filter(payment_id="pay_1").exists()


def test_the_statements_are_prepared_once_per_connection_and_run_with_their_values_bound(send, settings, click):
    settings.EVENTS_SQL_FAST_PATH = True
    # Values the statement must store as sent: a quote, a percent sign, non-ASCII.
    email = "o'brien+100%@exämple.com"
    for n in range(3):
        assert send(signed_up(f"cus_{n}", click.id, email=email, event_id=f"evt_{n}")).status_code == 201
        assert send(paid(f"pay_{n}", f"cus_{n}", "49.00")).status_code == 201
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT split_part(statement, ' ', 2), parameter_types::text FROM pg_prepared_statements "
            "WHERE NOT from_sql AND statement LIKE '/* pp_%%' ORDER BY 1"
        )
        prepared = cursor.fetchall()
    # One each, whatever the run: every parameter's type is written in the statement.
    assert [label for label, _ in prepared] == ["pp_payment", "pp_signed_up"]
    assert all("unknown" not in types for _, types in prepared)
    assert set(Referral.objects.values_list("email", flat=True)) == {email}
    assert json.loads(MerchantEvent.objects.get(event_id="evt_0").body)["data"]["email"] == email


def test_a_statement_is_kept_short_enough_for_psycopg_to_parse_it_once():
    from config.prepared import PSYCOPG_CACHED_LENGTH, PreparedStatement, compact

    # Comments go, whitespace runs become one space, quoted literals stay as written.
    assert compact("SELECT  'a  --  b',\n  1 -- one\n  , 'it''s  ok'") == "SELECT 'a  --  b', 1 , 'it''s  ok'"
    with pytest.raises(ValueError, match="over 4096"):
        PreparedStatement("long", "SELECT " + ", ".join(["%(x)s"] * PSYCOPG_CACHED_LENGTH), {"x": "text"})


def test_a_statement_that_aborts_itself_writes_nothing_and_leaves_the_connection_usable(click):
    from commissions.fastpath import _execute
    from config.prepared import PreparedStatement

    statement = PreparedStatement(
        "abort_test",
        f"WITH e AS (INSERT INTO {MerchantEvent._meta.db_table} (event_id, type, body, body_sha256, created, "
        "received_at, outcome, response_status, response_body) VALUES ('evt_undone', 'payment.succeeded', '{}', '', "
        "now(), now(), 'applied', 201, '{}') RETURNING id) "
        "SELECT (SELECT id FROM e), partner_panel_abort(%(reason)s)",
        {"reason": "text"},
    )
    assert _execute(statement, {"reason": "test"}) is None
    assert not MerchantEvent.objects.filter(event_id="evt_undone").exists()
    assert Referral.objects.count() == 0  # the connection still answers


@pytest.mark.parametrize(
    ("partner_email", "customer_email", "is_self"),
    [
        ("ann@example.com", "ANN@Example.com", True),  # case-folded, as self_referral()
        (" ann@example.com ", "ann@example.com", True),  # stripped
        ("ann@example.com", "ann@example.org", False),
        ("ann@example.com", None, False),  # no email: no self-referral
        ("straße@example.com", "STRASSE@example.com", True),  # beyond ASCII (the general path): ß is ss
        ("straße@example.com", "strase@example.com", False),
    ],
)
def test_the_self_referral_check_is_python_s_whichever_path_decides(
    send, settings, partner_email, customer_email, is_self
):
    from commissions.services import self_referral

    settings.EVENTS_SQL_FAST_PATH = True
    link = LinkFactory(partner__user__email=partner_email)
    click = ClickFactory(link=link)
    assert self_referral(customer_email or "", partner_email) is is_self
    response = send(signed_up("cus_1", click.id, email=customer_email))
    assert response.status_code == 201
    assert Referral.objects.get(customer_id="cus_1").is_self_referral is is_self


@pytest.mark.parametrize("trial_days", [14, 30])
def test_a_sign_up_answers_with_its_link_s_trial_on_both_paths(send, settings, trial_days):
    at = timezone.now().replace(microsecond=0)
    answers = []
    for fast in (True, False):
        settings.EVENTS_SQL_FAST_PATH = fast
        link = LinkFactory(trial_days=trial_days)
        click = ClickFactory(link=link, created_at=at - timedelta(minutes=5))
        customer = f"cus_{trial_days}_{fast}"
        body = signed_up(customer, click.id)
        body["created"] = at.isoformat().replace("+00:00", "Z")
        response = send(body)
        assert response.status_code == 201
        referral = Referral.objects.get(customer_id=customer)
        answer = response.json()["referral"]
        assert answer["id"] == referral.pk
        assert answer["partner"] == link.partner.referral_code
        assert referral.trial_ends_at == at + timedelta(days=trial_days)
        answers.append({k: v for k, v in answer.items() if k not in ("id", "partner")})
    assert answers[0] == answers[1]
    assert answers[0]["trial_days"] == trial_days


def test_a_sign_up_naming_a_click_still_in_the_spool_flushes_it_first(send, settings, tmp_path):
    from tracking.click_writes import ClickData
    from tracking.clicks import record_click
    from tracking.ids import new_click_id
    from tracking.models import Click

    settings.EVENTS_SQL_FAST_PATH = True
    settings.CLICK_BUFFER = "spool"
    settings.CLICK_SPOOL_DIR = str(tmp_path)
    link = LinkFactory()
    click = ClickData(
        id=new_click_id(),
        link_id=link.pk,
        partner_id=link.partner_id,
        visitor_id="v-spooled",
        created_at=timezone.now(),
        ip_hash="",
        user_agent="test",
        referer="",
    )
    record_click(click)
    assert not Click.objects.filter(pk=click.id).exists()
    response = send(signed_up("cus_1", click.id))
    assert response.status_code == 201
    assert response.json()["referral"] is not None
    assert Referral.objects.get(customer_id="cus_1").click_id == click.id
