"""The merchant simulator: plays CrazyCall's side of the partner program through the product's
public interfaces (docs/reference.md), for the demo, for tests and for benchmarks.

Two halves:

* ``build_plan`` — a pure, seeded model of the merchant's world (no database, no clock): who
  clicks which partner link and when, who signs up for a trial, who pays for which plan and how
  many seats, renewals, upgrades, added seats, refunds and cancellations. The same inputs give the
  same plan, action for action and cent for cent.
* ``MerchantSimulator`` — replays a plan in time order: visitors follow ``/r/<code>`` through the
  real view code (Django's test ``Client``, one cookie jar per visitor, real browser user
  agents) and the merchant's backend posts HMAC-signed events to ``/api/v1/events``.

Time travel: the plan lies in the past, but the redirect records a click "now". Right after a
click is recorded the simulator moves it (and the visitor's first-click time) to the simulated
moment; events simply carry their past ``created``. The daily rollups the redirect bumped on the
real day are put right by rebuilding the whole affected range from the raw rows at the end.

Re-running is safe: ids derive from the run key (a hash of every input), a click already moved
to its simulated moment is recognised and not clicked again, and events replayed with the same
id and body answer ``200`` without changing anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.cookies import SimpleCookie
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from commissions.money import ZERO, cents

EVENTS_PATH = "/api/v1/events"

PLAN_PRICES: dict[str, Decimal] = {"A": Decimal("25.00"), "B": Decimal("35.00"), "C": Decimal("49.00")}
PLAN_WEIGHTS = {"A": 50, "B": 33, "C": 17}
NEXT_PLAN = {"A": "B", "B": "C"}
# Call-center teams: most buy a handful of seats, a few buy many.
SEAT_CHOICES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25)
SEAT_WEIGHTS = (22, 18, 14, 11, 9, 7, 6, 5, 3, 2, 2, 1)

# Conversion model (per unique visitor / per trial / per month), in line with B2B SaaS figures.
SIGNUP_RATE = 0.032
TRIAL_TO_PAID = 0.40
TRIAL_EXPLICIT_CANCEL = 0.25  # of trials that do not pay, the share that cancel before the end
MONTHLY_CHURN = 0.06
WIN_BACK = 0.15
REFUND_RATE = 0.08
FULL_REFUND_SHARE = 0.45
SEAT_INCREASE_RATE = 0.09
UPGRADE_RATE = 0.05
REPEAT_VISIT_RATE = 0.24
BILLING_PERIOD = timedelta(days=30)
# Part of every run key: change it with the model, so a re-run after a change starts a new run
# instead of replaying different bodies under old ids (which the API rightly refuses with 409).
MODEL_VERSION = 3

# Real browsers, so the redirect's bot filter counts these clicks like anyone else's.
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
)
FIRST_NAMES = (
    "anna", "ben", "carla", "dev", "elena", "farid", "grace", "hugo", "ines", "jonas", "kira", "liam",
    "maya", "nico", "olga", "pavel", "quinn", "rosa", "sam", "tara", "umar", "vera", "will", "yuki", "zoe",
)  # fmt: skip
LAST_NAMES = (
    "novak", "ortiz", "becker", "chen", "haddad", "patel", "kowalski", "silva", "moreau", "tanaka",
    "jensen", "rossi", "okafor", "larsen", "dubois", "kim", "murphy", "schmidt", "nguyen", "costa",
)  # fmt: skip
CUSTOMER_DOMAINS = ("example.org", "example.net", "example.com")


# --- Inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimLink:
    """A partner link as the simulated visitors see it."""

    code: str
    trial_days: int
    destination: str = ""
    description: str = ""
    is_default: bool = False


@dataclass(frozen=True)
class SimPartner:
    email: str
    links: tuple[SimLink, ...]
    # Relative size of the partner's audience: 1.0 means ``visitors_per_day`` unique visitors a day.
    traffic: float = 1.0
    website: str = ""


@dataclass(frozen=True)
class LinkProfile:
    """How a link behaves, guessed from where it is promoted (its description and destination)."""

    weight: float
    signup_rate: float
    referers: tuple[str, ...]
    newsletter: bool = False


def _unit(*parts: object) -> float:
    """A stable number in [0, 1) from the given parts (independent of PYTHONHASHSEED)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def link_profile(link: SimLink, partner: SimPartner) -> LinkProfile:
    text = f"{link.description} {link.destination}".lower()
    website = partner.website or "https://blog.example.net/"
    # Codes are random per database (default links), so nothing random may depend on them.
    jitter = _unit("profile", partner.email, link.is_default, link.description, link.destination)
    rate = SIGNUP_RATE * (0.75 + 0.5 * jitter)
    if link.trial_days == 30:
        rate += 0.008  # a longer free trial lowers the bar to sign up
    if "/pricing" in text:
        rate += 0.008  # visitors sent to pricing already compare offers
    if "newsletter" in text:
        return LinkProfile(weight=0.15, signup_rate=rate, referers=("",), newsletter=True)
    if "youtube" in text:
        return LinkProfile(weight=0.9 + jitter, signup_rate=rate * 0.8, referers=("https://www.youtube.com/",))
    if "blog" in text or "review" in text or "article" in text:
        return LinkProfile(weight=1.2 + jitter, signup_rate=rate, referers=(website, "https://www.google.com/"))
    if link.is_default:
        return LinkProfile(
            weight=1.0,
            signup_rate=rate,
            referers=("", website, "https://www.google.com/", "https://x.com/", "https://www.linkedin.com/"),
        )
    return LinkProfile(weight=0.5 + jitter, signup_rate=rate, referers=(website, ""))


# --- The plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Visitor:
    user_agent: str
    ip: str


@dataclass(frozen=True)
class Click:
    moment: datetime
    visitor: str  # key of the visitor's cookie jar
    code: str
    referer: str


@dataclass(frozen=True)
class Event:
    moment: datetime
    event_id: str
    type: str
    data: dict[str, Any]
    # For sign-ups: the visitor whose browser the merchant reads ``aff_click`` from.
    visitor: str | None = None


Action = Click | Event


@dataclass
class Plan:
    run_key: str
    start: datetime
    end: datetime
    actions: list[Action]
    visitors: dict[str, Visitor]

    def count(self, kind: str) -> int:
        if kind == "click":
            return sum(1 for a in self.actions if isinstance(a, Click))
        return sum(1 for a in self.actions if isinstance(a, Event) and a.type == kind)


def run_key(
    *,
    seed: int,
    days: int,
    end: datetime,
    visitors_per_day: float,
    partners: Sequence[SimPartner],
    organic_per_day: float | None = None,
) -> str:
    """Every input of the plan, hashed: the same inputs give the same ids (so a re-run replays),
    different inputs give new ids (so they never collide with another run's events)."""
    spec = json.dumps(
        {
            "model": MODEL_VERSION,
            "rates": [SIGNUP_RATE, TRIAL_TO_PAID, MONTHLY_CHURN, REFUND_RATE, REPEAT_VISIT_RATE],
            "seed": seed,
            "days": days,
            "end": end.isoformat(),
            "vpd": visitors_per_day,
            "organic": organic_per_day,
            "partners": [
                [
                    p.email,
                    p.traffic,
                    [[lk.is_default, lk.trial_days, lk.description, lk.destination] for lk in p.links],
                ]
                for p in partners
            ],
        },
        sort_keys=True,
    )
    return hashlib.sha256(spec.encode()).hexdigest()[:10]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def _time_of_day(rng: random.Random) -> timedelta:
    """Most visits in working hours, a second bump in the evening."""
    hours = rng.gauss(11.5, 2.8) if rng.random() < 0.65 else rng.gauss(20.5, 1.8)
    hours %= 24  # wrap around midnight rather than pile visits up on its edges
    return timedelta(microseconds=int(hours * 3600 * 1_000_000))


def _weekday_factor(day: date) -> float:
    return (1.08, 1.12, 1.1, 1.05, 0.95, 0.72, 0.68)[day.weekday()]


class _Ids:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.counters: Counter[str] = Counter()

    def __call__(self, kind: str) -> str:
        self.counters[kind] += 1
        return f"{self.prefix}_{kind}{self.counters[kind]}"


class _Planner:
    def __init__(self, *, seed: int, start: datetime, end: datetime, currency: str, key: str) -> None:
        self.seed = seed
        self.start = start
        self.end = end
        self.currency = currency
        self.key = key
        self.actions: list[Action] = []
        self.visitors: dict[str, Visitor] = {}

    # Customers -------------------------------------------------------------------------------
    def customer(
        self,
        rng: random.Random,
        ids: _Ids,
        *,
        signed_up_at: datetime,
        trial_days: int,
        visitor: str | None,
        email: str,
        may_pay: bool = True,
    ) -> None:
        customer_id = ids("cus")
        self._event(
            ids,
            signed_up_at,
            "customer.signed_up",
            {"customer_id": customer_id, "click_id": None, "email": email},
            visitor=visitor,
        )
        trial_end = signed_up_at + timedelta(days=trial_days)
        if not may_pay or rng.random() >= TRIAL_TO_PAID:
            if rng.random() < TRIAL_EXPLICIT_CANCEL:
                self._event(
                    ids,
                    signed_up_at + timedelta(days=rng.uniform(0.5, trial_days - 0.5)),
                    "subscription.cancelled",
                    {"customer_id": customer_id},
                )
            return
        if rng.random() < 0.75:
            first = trial_end + timedelta(minutes=rng.uniform(1, 360))
        else:
            first = signed_up_at + timedelta(days=rng.uniform(1, trial_days - 1))
        plan = rng.choices(list(PLAN_WEIGHTS), weights=list(PLAN_WEIGHTS.values()))[0]
        seats = rng.choices(SEAT_CHOICES, weights=SEAT_WEIGHTS)[0]
        self.subscription(rng, ids, customer_id=customer_id, first=first, plan=plan, seats=seats)

    def subscription(
        self, rng: random.Random, ids: _Ids, *, customer_id: str, first: datetime, plan: str, seats: int
    ) -> None:
        paid_at = first
        while paid_at < self.end:
            payment_id = self._payment(rng, ids, customer_id, paid_at, plan, seats, PLAN_PRICES[plan] * seats)
            next_renewal = paid_at + BILLING_PERIOD
            if payment_id is None:  # refunded in full: the customer asked to leave
                return
            leaves = rng.random() < MONTHLY_CHURN
            # Mid-cycle changes (never in a period the customer leaves in) are charged pro rata
            # for the rest of the period.
            if not leaves and rng.random() < SEAT_INCREASE_RATE:
                at = paid_at + timedelta(days=rng.uniform(3, 26))
                added = rng.choice((1, 1, 2, 3, 5))
                remaining = Decimal(str(round((next_renewal - at) / BILLING_PERIOD, 4)))
                seats += added
                self._payment(
                    rng, ids, customer_id, at, plan, seats, PLAN_PRICES[plan] * added * remaining, refundable=False
                )
            elif not leaves and plan in NEXT_PLAN and rng.random() < UPGRADE_RATE:
                at = paid_at + timedelta(days=rng.uniform(3, 26))
                new_plan = NEXT_PLAN[plan]
                remaining = Decimal(str(round((next_renewal - at) / BILLING_PERIOD, 4)))
                difference = (PLAN_PRICES[new_plan] - PLAN_PRICES[plan]) * seats
                plan = new_plan
                self._payment(rng, ids, customer_id, at, plan, seats, difference * remaining, refundable=False)
            if leaves:
                cancelled_at = paid_at + timedelta(days=rng.uniform(8, 29))
                self._event(ids, cancelled_at, "subscription.cancelled", {"customer_id": customer_id})
                if rng.random() >= WIN_BACK:
                    return
                # Won back: a new first payment some weeks later turns the referral paying again.
                next_renewal = cancelled_at + timedelta(days=rng.uniform(14, 60))
            paid_at = next_renewal

    def _payment(
        self,
        rng: random.Random,
        ids: _Ids,
        customer_id: str,
        at: datetime,
        plan: str,
        seats: int,
        raw_amount: Decimal,
        *,
        refundable: bool = True,
    ) -> str | None:
        """One ``payment.succeeded`` and maybe its refunds; ``None`` when it is refunded in full and
        the customer leaves, ``""`` when nothing was charged."""
        if at >= self.end:
            return ""
        amount = cents(raw_amount)
        if amount <= ZERO:
            return ""
        payment_id = ids("pay")
        self._event(
            ids,
            at,
            "payment.succeeded",
            {
                "payment_id": payment_id,
                "customer_id": customer_id,
                "amount": str(amount),
                "currency": self.currency,
                "plan": plan,
                "seats": seats,
            },
        )
        if not refundable or rng.random() >= REFUND_RATE:
            return payment_id
        refunded_at = at + timedelta(hours=rng.uniform(2, 240))
        if rng.random() < FULL_REFUND_SHARE:
            self._event(ids, refunded_at, "payment.refunded", {"payment_id": payment_id, "amount": str(amount)})
            self._event(
                ids,
                refunded_at + timedelta(minutes=rng.uniform(1, 30)),
                "subscription.cancelled",
                {"customer_id": customer_id},
            )
            return None
        # Partial: seats given back, or a goodwill credit.
        unit = PLAN_PRICES[plan]
        if seats > 1 and rng.random() < 0.6:
            part = cents(min(unit * rng.randint(1, seats - 1), amount - Decimal("0.01")))
        else:
            part = cents(amount * Decimal(str(round(rng.uniform(0.15, 0.5), 2))))
        if part <= ZERO:
            return payment_id
        self._event(ids, refunded_at, "payment.refunded", {"payment_id": payment_id, "amount": str(part)})
        if rng.random() < 0.15:
            # Later the rest is refunded too: the completing refund reverses exactly what is left.
            self._event(
                ids,
                refunded_at + timedelta(days=rng.uniform(1, 5)),
                "payment.refunded",
                {"payment_id": payment_id, "amount": str(amount - part)},
            )
        return payment_id

    def _event(
        self, ids: _Ids, moment: datetime, type_: str, data: dict[str, Any], *, visitor: str | None = None
    ) -> None:
        if moment < self.end:
            self.actions.append(Event(moment=moment, event_id=ids("evt"), type=type_, data=data, visitor=visitor))

    # Visitors --------------------------------------------------------------------------------
    def partner(self, partner: SimPartner, visitors_per_day: float, days: int) -> None:
        # Each partner has its own random stream: adding a partner never changes another's story.
        rng = random.Random(f"{self.seed}:{partner.email}")
        pkey = _partner_key(partner.email)
        ids = _Ids(f"sim{self.key}_{pkey}")
        links = list(partner.links)
        profiles = [link_profile(link, partner) for link in links]
        send_days = {i: set(range(int(rng.uniform(3, 20)), days, 28)) for i, p in enumerate(profiles) if p.newsletter}
        self_referral_done = rng.random() < 0.5  # half the partners try their own link once
        growth_from, growth_to = rng.uniform(0.45, 0.7), rng.uniform(1.2, 1.5)
        for d in range(days):
            day_start = self.start + timedelta(days=d)
            progress = d / max(days - 1, 1)
            trend = growth_from + (growth_to - growth_from) * progress
            mean = visitors_per_day * partner.traffic * trend * _weekday_factor(day_start.date())
            mean *= math.exp(rng.gauss(0, 0.18))
            weights = []
            for i, profile in enumerate(profiles):
                boost = 1.0
                if i in send_days:
                    boost = 14.0 if d in send_days[i] else 4.0 if d - 1 in send_days[i] else 1.0
                weights.append(profile.weight * boost)
            boost_total = sum(weights) / sum(p.weight for p in profiles)
            for _ in range(_poisson(rng, mean * boost_total)):
                link_index = rng.choices(range(len(links)), weights=weights)[0]
                first_click = day_start + _time_of_day(rng)
                if first_click >= self.end:
                    continue
                visitor = f"{pkey}-{ids.counters['vis'] + 1}"
                ids("vis")
                self.visitors[visitor] = Visitor(user_agent=rng.choice(USER_AGENTS), ip=_ip(rng))
                clicks = [(first_click, link_index)]
                if rng.random() < REPEAT_VISIT_RATE:
                    at = first_click
                    for _ in range(rng.choice((1, 1, 1, 2, 3))):
                        at += timedelta(minutes=10) + timedelta(days=rng.expovariate(1 / 4))
                        other = link_index if rng.random() < 0.8 else rng.randrange(len(links))
                        clicks.append((at, other))
                for at, index in clicks:
                    if at < self.end:
                        self.actions.append(
                            Click(
                                moment=at,
                                visitor=visitor,
                                code=links[index].code,
                                referer=rng.choice(profiles[index].referers),
                            )
                        )
                if rng.random() >= profiles[link_index].signup_rate:
                    continue
                anchor = rng.choice(clicks)[0]
                if rng.random() < 0.6:
                    signed_up_at = anchor + timedelta(minutes=rng.uniform(2, 50))
                else:
                    signed_up_at = anchor + timedelta(days=min(rng.expovariate(1 / 2), 60))
                if signed_up_at >= self.end:
                    continue
                # Last click wins: the trial is the one offered by the latest link before sign-up.
                last = max((c for c in clicks if c[0] < signed_up_at), key=lambda c: c[0])
                own = not self_referral_done
                self_referral_done = True
                self.customer(
                    rng,
                    ids,
                    signed_up_at=signed_up_at,
                    trial_days=links[last[1]].trial_days,
                    visitor=visitor,
                    email=partner.email if own else _customer_email(rng, ids.counters["cus"] + 1),
                    may_pay=not own,
                )

    def organic(self, per_day: float, days: int) -> None:
        """Customers who never clicked a partner link: the merchant sends their events too, and
        the API logs them and answers ``null``."""
        rng = random.Random(f"{self.seed}:organic")
        ids = _Ids(f"sim{self.key}_org")
        for d in range(days):
            for _ in range(_poisson(rng, per_day)):
                signed_up_at = self.start + timedelta(days=d) + _time_of_day(rng)
                email = _customer_email(rng, ids.counters["cus"] + 1)
                self.customer(rng, ids, signed_up_at=signed_up_at, trial_days=14, visitor=None, email=email)


def _partner_key(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:6]


def partner_event_prefix(plan: Plan, email: str) -> str:
    """The prefix of the event ids of one partner's customers in ``plan``."""
    return f"sim{plan.run_key}_{_partner_key(email)}_evt"


def _ip(rng: random.Random) -> str:
    """An address from the shared (carrier-grade NAT, RFC 6598) or the IPv6 documentation
    range: never a real subscriber's address, and wide enough that two visitors rarely share an
    IP and a browser (which a cookie-less first click would see as one visitor)."""
    if rng.random() < 0.7:
        value = (100 << 24) | (64 << 16) | rng.getrandbits(22)
        return ".".join(str((value >> shift) & 255) for shift in (24, 16, 8, 0))
    return "2001:db8:" + ":".join(f"{rng.getrandbits(16):x}" for _ in range(6))


def _customer_email(rng: random.Random, n: int) -> str:
    return f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}{n}@{rng.choice(CUSTOMER_DOMAINS)}"


def build_plan(
    *,
    partners: Sequence[SimPartner],
    seed: int,
    days: int,
    end: datetime,
    visitors_per_day: float,
    currency: str = "USD",
    organic_per_day: float | None = None,
) -> Plan:
    """The merchant's story over the ``days`` days before ``end``, in time order. Pure: no
    database and no clock, so the same arguments always give the same plan."""
    if days < 1:
        raise ValueError("days must be at least 1")
    partners = sorted(partners, key=lambda p: p.email)
    key = run_key(
        seed=seed,
        days=days,
        end=end,
        visitors_per_day=visitors_per_day,
        partners=partners,
        organic_per_day=organic_per_day,
    )
    start = end - timedelta(days=days)
    planner = _Planner(seed=seed, start=start, end=end, currency=currency, key=key)
    for partner in partners:
        if partner.links:
            planner.partner(partner, visitors_per_day, days)
    planner.organic(visitors_per_day / 60 if organic_per_day is None else organic_per_day, days)
    # Stable order: by time, then by id, so equal moments never reorder between runs.
    planner.actions.sort(key=lambda a: (a.moment, a.event_id if isinstance(a, Event) else f"~{a.visitor}"))
    return Plan(run_key=key, start=start, end=end, actions=planner.actions, visitors=planner.visitors)


# --- Signing ---------------------------------------------------------------------------------


def sign(body: bytes, *, secret: str, timestamp: int) -> str:
    """The ``X-Partner-Signature`` header value of docs/reference.md for this raw body."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event_body(event: Event, *, click_id: str | None = None) -> bytes:
    data = dict(event.data)
    if event.type == "customer.signed_up":
        data["click_id"] = click_id
    created = event.moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    payload = {"id": event.event_id, "type": event.type, "created": created, "data": data}
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


# --- Running a plan --------------------------------------------------------------------------


@dataclass
class Summary:
    run_key: str = ""
    clicks: Counter[str] = field(default_factory=Counter)  # recorded / already_recorded / not_counted
    events: Counter[str] = field(default_factory=Counter)  # by event type
    responses: Counter[int] = field(default_factory=Counter)  # by HTTP status
    referrals: int = 0  # sign-ups the API attributed to a partner
    payments_total: Decimal = ZERO  # everything the merchant charged (referred or not)
    refunds_total: Decimal = ZERO
    referred_payments_total: Decimal = ZERO  # the part the API recorded for referrals
    referred_refunds_total: Decimal = ZERO
    commission_total: Decimal = ZERO  # net, as answered by the API (reversals included)
    rollup_rows_rebuilt: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_key": self.run_key,
            "clicks": dict(sorted(self.clicks.items())),
            "events": dict(sorted(self.events.items())),
            "responses": {str(k): v for k, v in sorted(self.responses.items())},
            "referrals": self.referrals,
            "payments_total": str(self.payments_total),
            "refunds_total": str(self.refunds_total),
            "referred_payments_total": str(self.referred_payments_total),
            "referred_refunds_total": str(self.referred_refunds_total),
            "commission_total": str(self.commission_total),
        }

    def lines(self) -> list[str]:
        currency = settings.PROGRAM_CURRENCY
        out = [f"Run {self.run_key}"]
        out.append(
            "Clicks: "
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(self.clicks.items()))
            + f" (total {sum(self.clicks.values())})"
        )
        out.append("Events sent:")
        out.extend(f"  {t:<24} {n:>7}" for t, n in sorted(self.events.items()))
        out.append("Responses: " + ", ".join(f"{s}: {n}" for s, n in sorted(self.responses.items())))
        out.append(f"Referrals attributed: {self.referrals}")
        out.append(f"Payments:   {self.payments_total:>12} {currency} ({self.referred_payments_total} by referrals)")
        out.append(f"Refunds:    {self.refunds_total:>12} {currency} ({self.referred_refunds_total} by referrals)")
        out.append(f"Commission: {self.commission_total:>12} {currency} (net of reversals)")
        out.append(f"Daily rollups rebuilt from raw rows: {self.rollup_rows_rebuilt} link-days rewritten")
        if self.errors:
            out.append(f"Unexpected answers: {len(self.errors)} (first: {self.errors[0]})")
        return out


Hook = Callable[[datetime], None]


@dataclass
class _Jar:
    cookies: SimpleCookie = field(default_factory=SimpleCookie)
    click_set_at: datetime | None = None


def _commission_of(body: Any) -> Decimal | None:
    if isinstance(body, dict) and isinstance(body.get("commission"), dict):
        amount = body["commission"].get("amount")
        if amount is not None:
            return Decimal(str(amount))
    return None


def _test_host() -> str:
    hosts = list(settings.ALLOWED_HOSTS)
    if "testserver" in hosts or "*" in hosts or not hosts:
        return "testserver"
    return hosts[0].lstrip(".")


@contextmanager
def quiet_logger(logger_name: str, level: int = logging.ERROR) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


class MerchantSimulator:
    """Replays a plan through the product's public interfaces and tells what came back."""

    def __init__(
        self, *, secret: str | None = None, progress: bool = False, progress_file=None, via: str = "events"
    ) -> None:
        self.secret = secret if secret is not None else settings.EVENTS_SIGNING_SECRET
        # "events": signed posts to /api/v1/events; "stripe": the same plan as Stripe Billing
        # webhooks to /api/v1/integrations/stripe (devtools/stripe_merchant.py).
        self.via = via
        self.stripe = None
        self.progress = progress
        self.progress_file = progress_file
        host = _test_host()
        # https, so production settings (SSL redirect, Secure cookies) behave as for real visitors.
        self.browser = Client(HTTP_HOST=host)
        self.merchant = Client(HTTP_HOST=host)
        self.jars: dict[str, _Jar] = {}
        self.link_ids: dict[str, int] = {}
        self.recorded: dict[tuple[int, datetime], tuple[str, str]] = {}
        self.pending_moves: list[tuple[str, int, str | None, datetime]] = []

    def run(self, plan: Plan, *, hooks: Iterable[tuple[datetime, Hook]] = ()) -> Summary:
        from tqdm import tqdm

        from tracking.models import Link

        codes = {a.code for a in plan.actions if isinstance(a, Click)}
        self.link_ids = dict(Link.objects.filter(code__in=codes).values_list("code", "id"))
        self._load_recorded(plan)
        pending_hooks = sorted(hooks, key=lambda h: h[0])
        summary = Summary(run_key=plan.run_key)
        bar = tqdm(
            total=len(plan.actions),
            unit="action",
            disable=None if self.progress else True,  # None: only on a terminal
            file=self.progress_file,
            mininterval=0.5,
            desc="Simulating",
        )
        # Eager Celery logs a line per task run (a balance recalculation after every money
        # event): thousands of lines that would bury the summary.
        with quiet_logger("celery.app.trace", logging.WARNING):
            try:
                for action in plan.actions:
                    while pending_hooks and pending_hooks[0][0] <= action.moment:
                        moment, hook = pending_hooks.pop(0)
                        self._flush_moves()
                        hook(moment)
                    if isinstance(action, Click):
                        self._click(plan, action, summary)
                    else:
                        self._flush_moves()
                        self._event(action, summary)
                    bar.update(1)
                self._flush_moves()
            finally:
                bar.close()
            for moment, hook in pending_hooks:
                hook(moment)
        summary.rollup_rows_rebuilt = self.rebuild_rollups(plan)
        return summary

    # Clicks ----------------------------------------------------------------------------------
    def _load_recorded(self, plan: Plan) -> None:
        """Clicks an earlier run of this plan already recorded and moved to their moments, by
        (link, moment): one query up front instead of one per click."""
        from tracking.models import Click as ClickRow

        rows = ClickRow.objects.filter(
            link_id__in=self.link_ids.values(), created_at__gte=plan.start, created_at__lt=plan.end
        ).values_list("link_id", "created_at", "id", "visitor_id")
        self.recorded = {(link_id, at): (click_id, visitor_id) for link_id, at, click_id, visitor_id in rows}

    def _click(self, plan: Plan, click: Click, summary: Summary) -> None:
        from tracking.models import Click as ClickRow
        from tracking.visitors import visitor_cookie_value, visitor_from_cookie

        jar = self.jars.setdefault(click.visitor, _Jar())
        link_id = self.link_ids.get(click.code)
        existing = self.recorded.get((link_id, click.moment))
        if existing is not None:
            # Recorded by an earlier run of this plan: the browser would hold its cookies.
            jar.cookies["aff_click"] = str(existing[0])
            jar.cookies["aff_vid"] = visitor_cookie_value(existing[1])
            jar.click_set_at = click.moment
            summary.clicks["already_recorded"] += 1
            return
        visitor = plan.visitors[click.visitor]
        self._expire_cookies(jar, click.moment)
        self.browser.cookies = jar.cookies
        extra = {"HTTP_USER_AGENT": visitor.user_agent, "REMOTE_ADDR": visitor.ip}
        if click.referer:
            extra["HTTP_REFERER"] = click.referer
        response = self.browser.get(f"/r/{click.code}", secure=True, **extra)
        click_id = self._click_id_of(response)
        if response.status_code != 302 or click_id is None or link_id is None:
            summary.clicks["not_counted"] += 1
            if response.status_code != 302:
                summary.errors.append(f"GET /r/{click.code} answered {response.status_code}")
            return
        jar.click_set_at = click.moment
        vid = jar.cookies.get("aff_vid")
        visitor_id = visitor_from_cookie(vid.value if vid else None)
        if visitor_id is None:
            # No signed visitor cookie came back: read the click's own visitor id.
            visitor_id = ClickRow.objects.filter(pk=click_id).values_list("visitor_id", flat=True).first()
        self._move_click(click_id, link_id, visitor_id, click.moment)
        summary.clicks["recorded"] += 1

    @staticmethod
    def _click_id_of(response) -> str | None:
        morsel = response.cookies.get("aff_click")
        if morsel is not None and morsel.value:
            return morsel.value
        return None

    @staticmethod
    def _expire_cookies(jar: _Jar, moment: datetime) -> None:
        # The test client ignores Max-Age; a real browser drops aff_click after the window.
        window = timedelta(days=settings.ATTRIBUTION_WINDOW_DAYS)
        if jar.click_set_at is not None and moment - jar.click_set_at > window and "aff_click" in jar.cookies:
            del jar.cookies["aff_click"]

    def _move_click(self, click_id: str, link_id: int, visitor_id: str | None, moment: datetime) -> None:
        """Time travel: the redirect stamped the click "now"; it happened at ``moment``. Moves
        are batched (see ``_flush_moves``) and always flushed before the next event or hook."""
        self.pending_moves.append((click_id, link_id, visitor_id, moment))

    def _flush_moves(self) -> None:
        """Write the pending moves in one transaction: each click gets its simulated moment, and
        the visitor's first click on the link moves with it (a later click never moves it back).
        Must run before any event is posted, since attribution compares the click's time with
        the sign-up's."""
        from tracking.models import Click as ClickRow
        from tracking.models import UniqueVisitor

        if not self.pending_moves:
            return
        ops = connection.ops
        clicks, visitors = ops.quote_name(ClickRow._meta.db_table), ops.quote_name(UniqueVisitor._meta.db_table)
        pk = ClickRow._meta.pk
        click_rows, visitor_rows = [], []
        for click_id, link_id, visitor_id, moment in self.pending_moves:
            at = ops.adapt_datetimefield_value(moment)
            click_rows.append((at, pk.get_db_prep_value(uuid.UUID(click_id), connection)))
            if visitor_id is not None:
                visitor_rows.append((at, link_id, visitor_id, at))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {clicks} SET created_at = %s WHERE id = %s", click_rows)
            cursor.executemany(
                f"UPDATE {visitors} SET first_click_at = %s "
                "WHERE link_id = %s AND visitor_id = %s AND first_click_at > %s",
                visitor_rows,
            )
        self.pending_moves.clear()

    # Events ----------------------------------------------------------------------------------
    def _event(self, event: Event, summary: Summary) -> None:
        click_id = None
        if event.visitor is not None:
            jar = self.jars.get(event.visitor)
            if jar is not None:
                self._expire_cookies(jar, event.moment)
                morsel = jar.cookies.get("aff_click")
                click_id = morsel.value if morsel is not None else None
        if self.via == "stripe":
            self._stripe_event(event, click_id, summary)
            return
        body = event_body(event, click_id=click_id)
        # The signature's t is the real clock (the API allows 300 s of skew); only ``created``
        # lies in the past.
        signature = sign(body, secret=self.secret, timestamp=int(time.time()))
        response = self.merchant.post(
            EVENTS_PATH, data=body, content_type="application/json", secure=True, HTTP_X_PARTNER_SIGNATURE=signature
        )
        summary.events[event.type] += 1
        summary.responses[response.status_code] += 1
        if response.status_code not in (200, 201):
            summary.errors.append(f"{event.event_id} {event.type}: {response.status_code} {response.content[:200]!r}")
            return
        if event.type == "payment.succeeded":
            summary.payments_total += Decimal(event.data["amount"])
        elif event.type == "payment.refunded":
            summary.refunds_total += Decimal(event.data["amount"])
        try:
            answer = json.loads(response.content)
        except ValueError:
            summary.errors.append(f"{event.event_id}: answer is not JSON")
            return
        if not isinstance(answer, dict):
            summary.errors.append(f"{event.event_id}: answer is not a JSON object")
            return
        if event.type == "customer.signed_up" and answer.get("referral"):
            summary.referrals += 1
        elif event.type == "payment.succeeded" and answer.get("payment"):
            summary.referred_payments_total += Decimal(event.data["amount"])
        elif event.type == "payment.refunded" and answer.get("refund"):
            summary.referred_refunds_total += Decimal(event.data["amount"])
        commission = _commission_of(answer)
        if commission is not None:
            summary.commission_total += commission

    def _stripe_event(self, event: Event, click_id: str | None, summary: Summary) -> None:
        """The event as the Stripe webhooks a merchant on Stripe Billing gets (devtools/stripe_merchant.py)."""
        from commissions.models import MerchantEvent
        from devtools.stripe_merchant import WEBHOOK_PATH, StripeMerchant

        if self.stripe is None:
            self.stripe = StripeMerchant(currency=settings.PROGRAM_CURRENCY)
        data = dict(event.data)
        if event.type == "customer.signed_up":
            data["click_id"] = click_id
        summary.events[event.type] += 1
        applied_as: list[str] = []
        for stripe_event in self.stripe.events(
            event_id=event.event_id, type_=event.type, data=data, moment=event.moment
        ):
            body = self.stripe.body(stripe_event)
            signature = self.stripe.signature(body, secret=settings.STRIPE_WEBHOOK_SECRET)
            response = self.merchant.post(
                WEBHOOK_PATH, data=body, content_type="application/json", secure=True, HTTP_STRIPE_SIGNATURE=signature
            )
            summary.responses[response.status_code] += 1
            if response.status_code != 200:
                summary.errors.append(
                    f"{stripe_event['id']} {stripe_event['type']}: {response.status_code} {response.content[:200]!r}"
                )
                return
            applied_as.extend(json.loads(response.content).get("applied_as") or [])
        if event.type == "payment.succeeded":
            summary.payments_total += Decimal(event.data["amount"])
        elif event.type == "payment.refunded":
            summary.refunds_total += Decimal(event.data["amount"])
        answers = MerchantEvent.objects.filter(event_id__in=applied_as).values_list("type", "response_body")
        for type_, answer in answers:
            if type_ == "customer.signed_up" and answer.get("referral"):
                summary.referrals += 1
            elif type_ == "payment.succeeded" and answer.get("payment"):
                summary.referred_payments_total += Decimal(event.data["amount"])
            elif type_ == "payment.refunded" and answer.get("refund"):
                summary.referred_refunds_total += Decimal(event.data["amount"])
            commission = _commission_of(answer)
            if commission is not None:
                summary.commission_total += commission

    # Rollups ---------------------------------------------------------------------------------
    @staticmethod
    def rebuild_rollups(plan: Plan) -> int:
        """Put the daily counters right; returns the number of link-days rewritten.

        The redirect counted each click on the real day before the simulator moved it into the
        past, so the counters of both the simulated days and today are off. Rather than undo
        and redo increments by hand, the reports' own rebuild recomputes the whole range from
        the raw rows (exact by construction). It logs the differences it repairs as a warning;
        here they are expected, so that one log line is kept quiet."""
        from tracking.rebuild import rebuild_rollups
        from tracking.rollups import program_day

        with quiet_logger("tracking.rebuild"):
            report = rebuild_rollups(program_day(plan.start), program_day(timezone.now()))
        return report.rows_written


# --- Reading partners from the database ------------------------------------------------------


def partners_from_db(
    emails: Sequence[str] | None = None, *, traffic: dict[str, float] | None = None
) -> list[SimPartner]:
    """Active partners (or those with the given emails) with their active links, in a stable order."""
    from partners.models import Partner
    from tracking.models import Link

    queryset = Partner.objects.select_related("user").filter(user__is_active=True, status=Partner.Status.APPROVED)
    if emails:
        queryset = queryset.filter(user__email__in=[e.lower() for e in emails])
    partners = []
    for partner in queryset.order_by("user__email"):
        links = Link.objects.filter(partner=partner, is_active=True).order_by("-is_default", "description", "pk")
        sim_links = tuple(
            SimLink(
                code=link.code,
                trial_days=link.trial_days,
                destination=link.destination,
                description=link.description,
                is_default=link.is_default,
            )
            for link in links
        )
        partners.append(
            SimPartner(
                email=partner.user.email,
                links=sim_links,
                traffic=(traffic or {}).get(partner.user.email, 1.0),
                website=partner.website,
            )
        )
    return partners


__all__ = [
    "PLAN_PRICES",
    "Click",
    "Event",
    "LinkProfile",
    "MerchantSimulator",
    "Plan",
    "SimLink",
    "SimPartner",
    "Summary",
    "build_plan",
    "event_body",
    "link_profile",
    "partner_event_prefix",
    "partners_from_db",
    "run_key",
    "sign",
]


def simulate(
    *,
    partners: Sequence[SimPartner],
    seed: int,
    days: int,
    until: date | None = None,
    visitors_per_day: float = 20.0,
    organic_per_day: float | None = None,
    hooks: Iterable[tuple[datetime, Hook]] = (),
    progress: bool = False,
    progress_file=None,
    via: str = "events",
) -> Summary:
    """Plan and play ``days`` days ending at the start of ``until`` (default: today, so every
    simulated moment is in the past) in the program's time zone."""
    from django.test.utils import override_settings

    from tracking.rollups import day_start, program_today

    end = day_start(until or program_today())
    plan = build_plan(
        partners=partners,
        seed=seed,
        days=days,
        end=end,
        visitors_per_day=visitors_per_day,
        currency=settings.PROGRAM_CURRENCY,
        organic_per_day=organic_per_day,
    )
    simulator = MerchantSimulator(progress=progress, progress_file=progress_file, via=via)
    # Each click is moved to its simulated moment right after the redirect, so it must be in
    # the database by then, not waiting in the Redis click buffer for a worker.
    with override_settings(CLICK_BUFFER=False):
        return simulator.run(plan, hooks=hooks)
