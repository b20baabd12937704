"""Concurrency: thousands of clicks, events and withdrawals from a pool of threads (each with its
own Django test client and its own PostgreSQL connection) against the whole WSGI stack — then
the invariants: unique clicks, one commission per payment, ledger = balances, one open payout
per partner, rollups = a rebuild from the raw rows.

Bounded: fixed counts, a fixed seed, 12 threads; every wait has a timeout."""

from __future__ import annotations

import json
import random
import threading
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.db.models import Count, Sum
from django.test import Client
from django.utils import timezone

from commissions.balance import partner_balance
from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral
from commissions.services import partner_balances_recalculate
from commissions.signing import signature_header
from partners.models import Partner
from payouts.models import Payout
from tests.factories import LinkFactory, PartnerFactory
from tests.reliability.conftest import (
    BROWSER_UA,
    RELIABILITY_REDIS_DB,
    add_commission,
    cancelled,
    paid,
    redis_or_skip,
    refunded,
    shared_redis_url,
    signed_up,
)
from tracking import click_writes, clicks
from tracking.click_writes import ClickData
from tracking.models import Click, DailyLinkStats, UniqueVisitor
from tracking.rebuild import rebuild_rollups
from tracking.rollups import program_today
from tracking.visitors import VISITOR_COOKIE, visitor_cookie_value

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

THREADS = 12
CLICKS = 10_000
VISITORS = 2_500
CUSTOMERS = 450  # × their event chains = 1,800 distinct events
REPLAYS = 200  # → 2,000 deliveries, 10 % of them replays
WITHDRAWAL_PARTNERS = 10
ATTEMPTS_PER_PARTNER = 5
RATE = Decimal("0.20")


def _cents(value: Decimal) -> Decimal:
    # Written out here rather than imported: the expectation must not share code with the ledger.
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _run_threads(work: Sequence[Sequence], fn: Callable[[Client, object], object]) -> list[list]:
    """Run ``fn(client, item)`` for every item of ``work[i]`` in thread ``i`` (in order), each
    thread with its own client and database connection, all threads released at once. Returns
    the results per thread."""
    results: list[list] = [[] for _ in work]
    errors: list[BaseException] = []
    start = threading.Barrier(len(work), timeout=60)

    def worker(index: int) -> None:
        client = Client()
        try:
            start.wait()
            for item in work[index]:
                results[index].append(fn(client, item))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,), name=f"load-{i}") for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a load thread did not finish"
    assert not errors, ["".join(traceback.format_exception(error)) for error in errors[:2]]
    return results


def _rollups_rebuild_clean() -> list:
    today = program_today()
    return rebuild_rollups(today - timedelta(days=1), today, dry_run=True).differences


# --- clicks -------------------------------------------------------------------------------------------
def test_ten_thousand_clicks_with_repeats_count_each_visitor_once_per_link(settings, monkeypatch, tried):
    """Half written directly, half through the Redis stream with a flusher running meanwhile."""
    stream = redis_or_skip(shared_redis_url(RELIABILITY_REDIS_DB))
    partners = [PartnerFactory() for _ in range(4)]
    links = [partner.links.get() for partner in partners] + [LinkFactory(partner=p) for p in partners[:3]]
    rng = random.Random(10_000)
    # A skewed audience: some visitors click a lot, most once or twice.
    visitors = [f"{n:032x}" for n in range(VISITORS)]
    weights = [1 / (1 + n % 50) for n in range(VISITORS)]
    plan = [(rng.choices(visitors, weights)[0], rng.choice(links).code) for _ in range(CLICKS)]
    pairs = set(plan)

    def click(client: Client, item: tuple[str, str]) -> tuple[int, str]:
        visitor, code = item
        client.cookies[VISITOR_COOKIE] = visitor_cookie_value(visitor)
        response = client.get(f"/r/{code}", HTTP_USER_AGENT=BROWSER_UA)
        return response.status_code, parse_qs(urlsplit(response.get("Location", "")).query).get("aff_click", [""])[0]

    def shares(items: list) -> list[list]:
        return [items[i::THREADS] for i in range(THREADS)]

    half = CLICKS // 2
    direct = _run_threads(shares(plan[:half]), click)

    key = f"test:reliability:load:{uuid.uuid4().hex}"
    monkeypatch.setattr(clicks, "STREAM_KEY", key)
    settings.REDIS_URL = shared_redis_url(RELIABILITY_REDIS_DB)
    settings.CLICK_BUFFER = True
    clicks.reset_buffer_state()
    done = threading.Event()
    flushed: list[int] = []

    def flusher() -> None:
        try:
            while True:
                handled = clicks.flush_click_buffer(500)
                flushed.append(handled)
                if done.is_set() and handled == 0:
                    return
        finally:
            connections.close_all()

    # A click whose XADD times out under this load is written directly instead (and may be in
    # the stream too: the writes are idempotent on the click id). Count those fallbacks.
    fallbacks: list[int] = []
    write_direct = click_writes.record_click_direct

    def counted_direct(data):
        fallbacks.append(1)
        return write_direct(data)

    monkeypatch.setattr(clicks, "record_click_direct", counted_direct)
    flush_thread = threading.Thread(target=flusher, name="load-flusher")
    flush_thread.start()
    try:
        buffered = _run_threads(shares(plan[half:]), click)
    finally:
        done.set()
        flush_thread.join(timeout=120)
    try:
        tried(
            f"{CLICKS:,} clicks, {len(pairs):,} distinct (visitor, link) pairs, {len(links)} links, {THREADS} threads"
        )
        answers = [answer for share in direct + buffered for answer in share]
        assert Counter(status for status, _ in answers) == {302: CLICKS}
        click_ids = {click_id for _, click_id in answers}
        assert len(click_ids) == CLICKS and "" not in click_ids
        # Every click went into the stream or, when Redis was too slow, straight to the database;
        # every stream entry was flushed once and acknowledged (nothing left pending).
        assert CLICKS - half - len(fallbacks) <= sum(flushed) <= CLICKS - half
        assert stream.xlen(key) == 0
        assert stream.xpending(key, clicks.GROUP)["pending"] == 0

        assert Click.objects.count() == CLICKS
        assert set(map(str, Click.objects.values_list("id", flat=True))) == click_ids
        assert Click.objects.filter(is_unique=True).count() == len(pairs)
        assert UniqueVisitor.objects.count() == len(pairs)
        totals = DailyLinkStats.objects.aggregate(clicks=Sum("clicks"), unique=Sum("unique_clicks"))
        assert totals == {"clicks": CLICKS, "unique": len(pairs)}
        assert _rollups_rebuild_clean() == []
    finally:
        stream.delete(key)


# --- events ---------------------------------------------------------------------------------------------
def _chains(clicks_by_customer: list, emails: dict[int, str], rng: random.Random) -> list[list[dict]]:
    """Per customer, the events in the order they happened: sign-up, payment(s), refund(s),
    cancellation. The times are in the past so every commission counts in the balance."""
    start = timezone.now() - timedelta(minutes=30)
    chains = []
    for c, click in enumerate(clicks_by_customer):
        moment = start + timedelta(seconds=c)

        def at(step: int, _moment=moment):
            return {"created": _moment + timedelta(milliseconds=step)}

        customer = f"cus_load_{c}"
        amount = rng.choice(["49.00", "99.00", "149.50", "19.99", "250.00"])
        email = emails.get(c)
        chain = [
            signed_up(customer, click.id if click else None, email=email, **at(0)),
            paid(f"pay_load_{c}_1", customer, amount, **at(1)),
        ]
        if c < 300:
            chain.append(paid(f"pay_load_{c}_2", customer, "30.00", **at(2)))
        if c >= 150:
            chain.append(refunded(f"pay_load_{c}_1", "10.00", **at(3)))
        if 150 <= c < 300:
            left = Decimal(amount) - Decimal("10.00")
            chain.append(refunded(f"pay_load_{c}_1", str(left), **at(4)))
        if c >= 300:
            chain.append(cancelled(customer, **at(5)))
        chains.append(chain)
    return chains


def _expected_ledger(chains: list[list[dict]], referred: dict[int, Partner | None], self_referred: set[int]) -> dict:
    """What each partner must have earned, computed from the events alone."""
    earned: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    payments = 0
    for c, chain in enumerate(chains):
        partner = referred[c]
        if partner is None:
            continue
        commission: dict[str, Decimal] = {}
        paid_amount: dict[str, Decimal] = {}
        refunded_amount: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
        for body in chain:
            data = body["data"]
            if body["type"] == "payment.succeeded":
                payments += 1
                amount = Decimal(data["amount"])
                paid_amount[data["payment_id"]] = amount
                commission[data["payment_id"]] = Decimal("0.00") if c in self_referred else _cents(amount * RATE)
                earned[partner.pk] += commission[data["payment_id"]]
            elif body["type"] == "payment.refunded":
                payment_id, amount = data["payment_id"], Decimal(data["amount"])
                refunded_amount[payment_id] += amount
                if refunded_amount[payment_id] == paid_amount[payment_id]:
                    reversal = commission[payment_id]  # a full refund nets the payment to 0.00
                else:
                    reversal = min(_cents(amount * RATE), commission[payment_id])
                commission[payment_id] -= reversal
                earned[partner.pk] -= reversal
    return {"earned": dict(earned), "payments": payments}


def test_two_thousand_events_with_replays_out_of_order_earn_each_commission_once_and_match_the_balances(tried):
    rng = random.Random(2_000)
    partners = [PartnerFactory() for _ in range(6)]
    links = [partner.links.get() for partner in partners] + [LinkFactory(partner=partners[0], trial_days=30)]
    click_time = timezone.now() - timedelta(hours=2)
    clicks_by_customer, referred, emails, self_referred = [], {}, {}, set()
    for c in range(CUSTOMERS):
        if c % 10 == 9:  # not referred: logged, earns nothing
            clicks_by_customer.append(None)
            referred[c] = None
            continue
        link = rng.choice(links)
        click = ClickData(
            id=uuid.uuid4(), link_id=link.pk, partner_id=link.partner_id, visitor_id=f"v{c}", created_at=click_time
        )
        clicks_by_customer.append(click)
        referred[c] = link.partner
        if c % 25 == 0:  # the partner's own address: a self-referral, earns 0.00
            emails[c] = link.partner.user.email
            self_referred.add(c)
    click_writes.write_clicks([click for click in clicks_by_customer if click is not None])  # the redirect's writer
    chains = _chains(clicks_by_customer, emails, rng)
    originals = sum(len(chain) for chain in chains)

    # Replays: a delivery of an earlier event again, later in the same customer's chain.
    chosen = rng.sample([(c, i) for c, chain in enumerate(chains) for i in range(len(chain))], REPLAYS)
    deliveries: list[list[tuple[dict, bool]]] = [[(body, False) for body in chain] for chain in chains]
    for c, i in sorted(chosen, key=lambda ci: (ci[0], -ci[1])):
        position = rng.randint(i + 1, len(deliveries[c]))
        deliveries[c].insert(position, (chains[c][i], True))

    # Out of order across customers, causal within each: a random interleaving of the chains,
    # each customer's events sent by one thread.
    cursors = [0] * CUSTOMERS
    pending = [c for c in range(CUSTOMERS) for _ in deliveries[c]]
    rng.shuffle(pending)
    work: list[list] = [[] for _ in range(THREADS)]
    for c in pending:
        body, replay = deliveries[c][cursors[c]]
        cursors[c] += 1
        work[c % THREADS].append((body, replay))

    def send(client: Client, item: tuple[dict, bool]) -> tuple[dict, bool, int, dict]:
        body, replay = item
        raw = json.dumps(body).encode()
        header = signature_header(secret=django_settings.EVENTS_SIGNING_SECRET, body=raw)
        response = client.post(
            "/api/v1/events", data=raw, content_type="application/json", HTTP_X_PARTNER_SIGNATURE=header
        )
        return body, replay, response.status_code, response.json()

    results = [result for share in _run_threads(work, send) for result in share]
    tried(
        f"{len(results):,} events ({originals:,} distinct, {REPLAYS} replays), {CUSTOMERS} customers, {THREADS} threads"
    )
    assert len(results) == originals + REPLAYS == 2_000

    first_answer = {}
    for body, replay, status, answer in results:
        if not replay:
            assert status == 201, (body, answer)
            first_answer[body["id"]] = answer
    for body, replay, status, answer in results:
        if replay:
            assert status == 200, (body, answer)
            assert answer == first_answer[body["id"]]

    expected = _expected_ledger(chains, referred, self_referred)
    assert MerchantEvent.objects.count() == originals
    assert Referral.objects.count() == sum(1 for p in referred.values() if p is not None)
    assert Referral.objects.filter(is_self_referral=True).count() == len(self_referred)
    assert Payment.objects.count() == expected["payments"]
    per_payment = CommissionEntry.objects.filter(kind="commission").values("payment").annotate(n=Count("id"))
    assert len(per_payment) == expected["payments"]
    assert {row["n"] for row in per_payment} == {1}

    partner_balances_recalculate()
    now = timezone.now()
    for partner in Partner.objects.all():
        entries = CommissionEntry.objects.filter(partner=partner)
        ledger_total = sum(entries.values_list("amount", flat=True), Decimal("0.00"))
        held = sum(
            Payout.objects.filter(partner=partner, status__in=Payout.COUNTED_STATUSES).values_list("amount", flat=True),
            Decimal("0.00"),
        )
        counted = sum(entries.filter(earned_at__lte=now).values_list("amount", flat=True), Decimal("0.00"))
        assert ledger_total == expected["earned"].get(partner.pk, Decimal("0.00")), partner
        assert partner.commission_total == ledger_total
        assert partner.balance == counted - held == partner_balance(partner=partner)
    assert _rollups_rebuild_clean() == []
    stats = DailyLinkStats.objects.aggregate(trials=Sum("new_trials"), subscriptions=Sum("new_subscriptions"))
    referred_count = Referral.objects.count()
    assert stats == {"trials": referred_count, "subscriptions": referred_count}


# --- withdrawals ----------------------------------------------------------------------------------------
def test_fifty_racing_withdrawal_requests_open_at_most_one_payout_per_partner_for_its_whole_balance(tried):
    rng = random.Random(50)
    partners = []
    for n in range(WITHDRAWAL_PARTNERS):
        partner = PartnerFactory(paypal_email="" if n == 9 else f"paypal.load{n}@example.com")
        for _ in range(rng.randint(1, 4)):
            add_commission(partner, rng.choice(["9.80", "19.60", "29.90", "12.34"]))
        partners.append(partner)
    before = {partner.pk: partner_balance(partner=partner) for partner in partners}
    eligible = {pk for pk, balance in before.items() if balance >= Decimal("50.00")} - {partners[9].pk}
    assert 3 <= len(eligible) < WITHDRAWAL_PARTNERS  # the seed gives both kinds

    # 50 attempts over the thread pool, released together; one partner's attempts sit in
    # different threads so they race each other.
    attempts = [partner for _ in range(ATTEMPTS_PER_PARTNER) for partner in partners]
    shares = [attempts[i::THREADS] for i in range(THREADS)]

    def attempt(client: Client, partner: Partner) -> tuple[int, int]:
        client.force_login(partner.user)
        return partner.pk, client.post("/payouts/request/").status_code

    results = [result for share in _run_threads(shares, attempt) for result in share]
    tried(f"{len(results)} withdrawal requests at once, {WITHDRAWAL_PARTNERS} partners × {ATTEMPTS_PER_PARTNER}")
    assert Counter(status for _, status in results) == {302: len(results)}

    open_per_partner = Counter(
        Payout.objects.filter(status__in=Payout.OPEN_STATUSES).values_list("partner_id", flat=True)
    )
    assert max(open_per_partner.values()) == 1
    assert set(open_per_partner) == eligible
    for payout in Payout.objects.all():
        assert payout.amount == before[payout.partner_id]
    partner_balances_recalculate()
    for partner in Partner.objects.filter(pk__in=[p.pk for p in partners]):
        expected = Decimal("0.00") if partner.pk in eligible else before[partner.pk]
        assert partner_balance(partner=partner) == expected == partner.balance
