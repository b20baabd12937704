"""The simulator's model of the merchant's world (pure: no database, no clock)."""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from devtools.simulator import PLAN_PRICES, Click, Event, SimLink, SimPartner, build_plan, event_body, sign

END = datetime(2026, 3, 1, tzinfo=UTC)

PARTNERS = (
    SimPartner(
        email="blogger@example.com",
        website="https://blog.example.net/",
        links=(
            SimLink(code="defaultcode1", trial_days=14, is_default=True),
            SimLink(
                code="pricing30", trial_days=30, destination="https://crazycall.com/pricing", description="Blog review"
            ),
            SimLink(code="newsmarch", trial_days=14, description="Newsletter March"),
        ),
    ),
    SimPartner(
        email="youtuber@example.com",
        traffic=0.5,
        links=(SimLink(code="defaultcode2", trial_days=14, is_default=True),),
    ),
)


def _plan(seed=1, partners=PARTNERS, days=120, vpd=20.0):
    return build_plan(partners=partners, seed=seed, days=days, end=END, visitors_per_day=vpd)


def _events(plan, type_=None):
    return [a for a in plan.actions if isinstance(a, Event) and (type_ is None or a.type == type_)]


@pytest.fixture(scope="module")
def plan():
    return _plan()


def test_the_same_seed_gives_the_same_plan_action_for_action():
    assert _plan(seed=7).actions == _plan(seed=7).actions


def test_another_seed_gives_another_plan():
    assert _plan(seed=7).actions != _plan(seed=8).actions


def test_the_plan_does_not_depend_on_link_codes():
    """Default links get random codes in each database; the story must stay the same."""
    renamed = tuple(
        SimPartner(
            email=p.email,
            traffic=p.traffic,
            website=p.website,
            links=tuple(SimLink(**{**link.__dict__, "code": link.code + "x"}) for link in p.links),
        )
        for p in PARTNERS
    )
    a, b = _plan(seed=3), _plan(seed=3, partners=renamed)
    assert a.run_key == b.run_key
    assert [(e.event_id, e.moment, e.data) for e in _events(a)] == [(e.event_id, e.moment, e.data) for e in _events(b)]


def test_event_ids_change_with_any_input_so_runs_never_collide():
    base = {e.event_id for e in _events(_plan(seed=3))}
    for other in (_plan(seed=4), _plan(seed=3, days=119), _plan(seed=3, vpd=21.0)):
        assert base.isdisjoint(e.event_id for e in _events(other))


def test_event_ids_are_unique_within_a_plan(plan):
    ids = [e.event_id for e in _events(plan)]
    assert len(ids) == len(set(ids))


def test_actions_are_in_time_order_within_the_simulated_days(plan):
    moments = [a.moment for a in plan.actions]
    assert moments == sorted(moments)
    assert plan.start == END - timedelta(days=120)
    assert all(plan.start <= m < END for m in moments)


def test_visitors_come_back_and_click_again(plan):
    clicks_per_visitor = defaultdict(int)
    for action in plan.actions:
        if isinstance(action, Click):
            clicks_per_visitor[action.visitor] += 1
    repeaters = sum(1 for n in clicks_per_visitor.values() if n > 1)
    assert 0.1 < repeaters / len(clicks_per_visitor) < 0.4


def test_a_few_percent_of_unique_visitors_sign_up(plan):
    referred_signups = [e for e in _events(plan, "customer.signed_up") if e.visitor is not None]
    assert 0.02 <= len(referred_signups) / len(plan.visitors) <= 0.06


def test_every_referred_sign_up_follows_a_click_of_its_visitor(plan):
    first_click = {}
    for action in plan.actions:
        if isinstance(action, Click):
            first_click.setdefault(action.visitor, action.moment)
    for event in _events(plan, "customer.signed_up"):
        if event.visitor is not None:
            assert first_click[event.visitor] < event.moment


def test_trial_customers_pay_at_a_realistic_rate(plan):
    signups = {e.data["customer_id"] for e in _events(plan, "customer.signed_up")}
    paying = {e.data["customer_id"] for e in _events(plan, "payment.succeeded")}
    assert paying <= signups
    assert 0.25 <= len(paying) / len(signups) <= 0.55


def test_payments_cover_plans_seats_renewals_and_changes(plan):
    payments = _events(plan, "payment.succeeded")
    assert {p.data["plan"] for p in payments} == set(PLAN_PRICES)
    assert max(p.data["seats"] for p in payments) > 1
    by_customer = defaultdict(list)
    for p in payments:
        by_customer[p.data["customer_id"]].append(p)
    assert any(len(ps) >= 3 for ps in by_customer.values()), "monthly renewals"
    assert any(len({(p.data["plan"], p.data["seats"]) for p in ps}) > 1 for ps in by_customer.values()), (
        "upgrades or added seats"
    )


def test_a_full_price_payment_is_the_plan_price_times_the_seats(plan):
    for p in _events(plan, "payment.succeeded"):
        amount = Decimal(p.data["amount"])
        assert amount > 0 and amount == amount.quantize(Decimal("0.01"))
        assert amount <= PLAN_PRICES[p.data["plan"]] * p.data["seats"]
    full = [
        p
        for p in _events(plan, "payment.succeeded")
        if Decimal(p.data["amount"]) == PLAN_PRICES[p.data["plan"]] * p.data["seats"]
    ]
    assert len(full) > len(_events(plan, "payment.succeeded")) * 0.8


def test_refunds_are_partial_or_full_and_never_exceed_the_payment():
    plan = _plan(seed=11, days=180, vpd=40.0)
    paid = {e.data["payment_id"]: Decimal(e.data["amount"]) for e in _events(plan, "payment.succeeded")}
    refunded = defaultdict(Decimal)
    for event in _events(plan, "payment.refunded"):
        refunded[event.data["payment_id"]] += Decimal(event.data["amount"])
    assert refunded
    assert all(total <= paid[pid] for pid, total in refunded.items())
    assert any(total == paid[pid] for pid, total in refunded.items()), "a full refund"
    assert any(total < paid[pid] for pid, total in refunded.items()), "a partial refund"


def test_customers_cancel_and_some_are_won_back():
    plan = _plan(seed=11, days=180, vpd=40.0)
    cancels = _events(plan, "subscription.cancelled")
    payments = _events(plan, "payment.succeeded")
    assert cancels
    won_back = {
        c.data["customer_id"]
        for c in cancels
        for p in payments
        if p.data["customer_id"] == c.data["customer_id"] and p.moment > c.moment
    }
    assert won_back


def test_sign_ups_use_the_trial_of_the_link_clicked_last():
    plan = _plan(seed=5, days=150, vpd=30.0)
    trial_of = {link.code: link.trial_days for p in PARTNERS for link in p.links}
    last_click: dict[str, Click] = {}
    seen_trials = set()
    for action in plan.actions:
        if isinstance(action, Click):
            last_click[action.visitor] = action
        elif action.type == "customer.signed_up" and action.visitor is not None:
            seen_trials.add(trial_of[last_click[action.visitor].code])
    assert seen_trials == {14, 30}


def test_the_signature_is_hmac_sha256_of_timestamp_dot_raw_body():
    body = b'{"id":"evt_1"}'
    expected = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(body, secret="whsec_test", timestamp=1700000000) == f"t=1700000000,v1={expected}"


def test_the_event_body_carries_the_past_moment_and_the_click_id(plan):
    signup = _events(plan, "customer.signed_up")[0]
    body = event_body(signup, click_id="3f2b8c1e-7d4a-4e0b-9a57-2c1d5e6f7a8b").decode()
    assert f'"created":"{signup.moment.isoformat().replace("+00:00", "Z")}"' in body
    assert '"click_id":"3f2b8c1e-7d4a-4e0b-9a57-2c1d5e6f7a8b"' in body
    assert event_body(signup, click_id=None) == event_body(signup, click_id=None)
