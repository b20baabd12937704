"""Fill the database with realistic synthetic data, fast, for benchmarks and demos.

    python manage.py loadbench --partners 1000 --clicks 1000000 --referrals 10000 --payments 100000

The clicks, referrals and payments asked for belong to one measured partner who logs in as
``bench@example.com`` / ``bench`` (created or reused) with about 100 links; ``--partners N``
adds N other partners with a little activity each. Clicks are spread over the last year with
returning visitors (so ``is_unique`` and ``UniqueVisitor`` say what the redirect would have
said), referrals sign up from unique clicks, converting ones pay monthly (some cancel, some
payments are refunded, fully or in part), and every payment, refund and reversal is in the
ledger and the event log. The daily rollups are computed from exactly the rows inserted and
added to the stored counters, so ``rebuild_rollups`` finds no difference.

Rows are streamed with ``COPY … FROM STDIN`` on PostgreSQL (psycopg 3) and inserted in batches
elsewhere, all in one transaction. Every id, code and email carries a per-run token: running
the command again adds more data and never collides.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import random
import secrets
import time
import uuid
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection, models, transaction
from django.utils import timezone
from tqdm import tqdm

from commissions import ledgerdays, referraldays, referralsubs
from commissions.balance import partner_balances_refresh
from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral, Refund
from commissions.money import ZERO, cents, commission_for, reversal_for
from partners.models import Partner, User, new_referral_code
from payouts.models import Payout
from tracking import monthly
from tracking.models import ROLLUP_COUNTERS, Click, Creative, DailyLinkStats, Link, UniqueVisitor
from tracking.rebuild import DIMENSION_COLUMNS, rebuild_dimension_rollups
from tracking.rollups import day_start, program_today, program_tz
from tracking.sources import device_type, referrer_host

BENCH_EMAIL = "bench@example.com"
BENCH_PASSWORD = "bench"
MAX_LINKS = 1000
_BATCH = 2000
_DAY = timedelta(days=1)
# UUID version 7 layout: 48-bit millisecond timestamp, version 7, 12 random bits, variant 10,
# 62 random bits.
_UUID7_BITS = (0x7 << 76) | (0b10 << 62)
_UUID7_RANDOM = ((1 << 12) - 1) << 64 | ((1 << 62) - 1)
_MASK_256 = (1 << 256) - 1
_HASH_MULTIPLIER = 0x9E3779B97F4A7C15F39CC0605CEDC8341082276BF3A27251F86C6A11D0C18E95
# The events service's canonical form (commissions.events.canonical_sha256), one encoder reused.
# Plain strings of the choices written on every row (enum attribute lookups are slow in loops).
SIGNED_UP, PAYMENT_SUCCEEDED = str(MerchantEvent.Type.SIGNED_UP), str(MerchantEvent.Type.PAYMENT_SUCCEEDED)
PAYMENT_REFUNDED = str(MerchantEvent.Type.PAYMENT_REFUNDED)
SUBSCRIPTION_CANCELLED = str(MerchantEvent.Type.SUBSCRIPTION_CANCELLED)
KIND_COMMISSION, KIND_REVERSAL = str(CommissionEntry.Kind.COMMISSION), str(CommissionEntry.Kind.REVERSAL)
APPLIED = str(MerchantEvent.Outcome.APPLIED)
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = _EPOCH.date()
_dates: dict[int, str] = {}


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _instant(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _text_time(micros: int) -> str:
    """An instant as PostgreSQL timestamptz text, in UTC (``2026-03-01 12:00:00.000001+00``)."""
    seconds, fraction = divmod(micros, 1_000_000)
    days, seconds = divmod(seconds, 86_400)
    date_text = _dates.get(days)
    if date_text is None:
        date_text = _dates[days] = (_EPOCH_DATE + timedelta(days=days)).isoformat()
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{date_text} {hours:02d}:{minutes:02d}:{seconds:02d}.{fraction:06d}+00"


_MONTH = timedelta(days=30)

PRICES = {"A": Decimal("25.00"), "B": Decimal("39.00"), "C": Decimal("59.00")}
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Edg/126.0 Safari/537.36",
)
REFERERS = (
    "",
    "",
    "https://www.google.com/",
    "https://blog.example.com/best-call-center-software",
    "https://t.co/",
    "https://www.youtube.com/",
    "https://www.linkedin.com/",
    "https://news.ycombinator.com/",
)
# Sub-IDs partners put on their links, and the countries a CDN header reports ("" = none).
SUB1S = ("", "", "", "youtube", "blog", "newsletter", "qr", "twitter", "podcast-notes")
SUB2S = ("", "", "", "", "video-1", "video-2", "sidebar", "footer")
COUNTRIES = ("US", "US", "US", "GB", "DE", "FR", "CA", "IN", "BR", "AU", "", "NL")
CAMPAIGNS = (
    "Blog sidebar",
    "Newsletter",
    "YouTube review",
    "Twitter bio",
    "LinkedIn post",
    "Comparison article",
    "Podcast mention",
    "Webinar",
    "Footer banner",
    "Facebook group",
    "Case study",
    "Pricing deep link",
)
DESTINATIONS = (
    "",
    "https://crazycall.com/pricing",
    "https://crazycall.com/features",
    "https://crazycall.com/integrations",
    "https://crazycall.com/blog/cold-calling-tips",
)


# --- writing rows -----------------------------------------------------------------------------


class _Writer:
    """``COPY`` on PostgreSQL, batched INSERTs elsewhere. Rows are tuples in ``fields`` order,
    with Python values (ids, aware datetimes, Decimals, dicts for JSON)."""

    def __init__(self, progress: tqdm) -> None:
        self.postgres = connection.vendor == "postgresql"
        self.progress = progress
        self._id_pools: dict[type[models.Model], list[int]] = {}
        self._next_ids: dict[type[models.Model], int] = {}

    def write(
        self, model: type[models.Model], fields: list[str], rows: Iterable[tuple], *, counts: bool = False
    ) -> int:
        """Rows as tuples of Python values in ``fields`` order (dicts for JSON columns)."""
        meta = model._meta
        model_fields = [meta.get_field(name) for name in fields]
        columns = ", ".join(connection.ops.quote_name(f.column) for f in model_fields)
        table = connection.ops.quote_name(meta.db_table)
        written = 0
        if self.postgres:
            # psycopg's C row formatter: twice as fast as formatting these mixed rows in Python.
            json_at = [i for i, f in enumerate(model_fields) if isinstance(f, models.JSONField)]
            with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    if json_at:
                        row = list(row)
                        for i in json_at:
                            row[i] = json.dumps(row[i])
                    copy.write_row(row)
                    written += 1
                    if counts and written % 10_000 == 0:
                        self.progress.update(10_000)
            if counts:
                self.progress.update(written % 10_000)
            return written
        sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
        batch: list[tuple] = []
        with connection.cursor() as cursor:
            for row in rows:
                batch.append(tuple(f.get_db_prep_save(v, connection) for f, v in zip(model_fields, row, strict=True)))
                written += 1
                if len(batch) >= _BATCH:
                    cursor.executemany(sql, batch)
                    batch.clear()
                if counts and written % 10_000 == 0:
                    self.progress.update(10_000)
            if batch:
                cursor.executemany(sql, batch)
        if counts:
            self.progress.update(written % 10_000)
        return written

    def write_text(
        self, model: type[models.Model], fields: list[str], lines: Iterable[str], *, counts: bool = False
    ) -> int:
        """PostgreSQL only: COPY rows already formatted as COPY text lines (tab-separated, no
        characters that need escaping), sent in large chunks. For the click tables, whose rows
        are formatted in one f-string each: faster than building UUIDs and datetimes to adapt."""
        columns = ", ".join(connection.ops.quote_name(model._meta.get_field(f).column) for f in fields)
        table = connection.ops.quote_name(model._meta.db_table)
        written = 0
        with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            while chunk := list(itertools.islice(lines, 20_000)):
                copy.write("".join(chunk))
                written += len(chunk)
                if counts:
                    self.progress.update(len(chunk))
        return written

    def skip_foreign_key_checks(self) -> bool:
        """PostgreSQL, when allowed (superuser, or SET granted on the parameter): no per-row
        foreign-key triggers for the rest of this transaction. Every reference written here
        points at a row read or written in the same transaction, and a million deferred checks
        would otherwise take longer than the load itself. Without the privilege the checks
        simply run (slower, same result)."""
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError:
            return False
        return True

    def reserve_ids(self, model: type[models.Model], count: int) -> list[int]:
        """``count`` fresh primary keys for rows written later with explicit ids. Taken from the
        table's sequence in blocks (PostgreSQL), or counted on from the highest id (SQLite,
        whose writers are serialised anyway), so a thousand small partners cost a few queries."""
        pool = self._id_pools.setdefault(model, [])
        if len(pool) < count:
            wanted = max(count - len(pool), 5000)
            table = model._meta.db_table
            with connection.cursor() as cursor:
                if self.postgres:
                    cursor.execute(
                        "SELECT nextval(%s) FROM generate_series(1, %s)",
                        [connection.introspection.get_sequences(cursor, table)[0]["name"], wanted],
                    )
                    pool.extend(row[0] for row in cursor.fetchall())
                else:
                    if model not in self._next_ids:
                        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")
                        self._next_ids[model] = cursor.fetchone()[0] + 1
                    first = self._next_ids[model]
                    pool.extend(range(first, first + wanted))
                    self._next_ids[model] = first + wanted
        taken = pool[:count]
        del pool[:count]
        return taken


# --- what to generate -----------------------------------------------------------------------


@dataclass
class _LinkInfo:
    id: int
    trial_days: int


@dataclass
class _Plan:
    partner_id: int
    links: list[_LinkInfo]
    clicks: int
    referrals: int
    payments: int
    # Reservoir of unique clicks that referrals sign up from: (click id, link position, time).
    candidates: list[tuple[uuid.UUID, int, datetime]] = field(default_factory=list)
    unique_seen: int = 0


class _Rollups:
    """Counters of the rows inserted, per (link, program day)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, date], list] = defaultdict(lambda: [0, 0, 0, 0, ZERO])

    def add(self, link_id: int, day: date, index: int, amount: int | Decimal = 1) -> None:
        self.rows[(link_id, day)][index] += amount

    def write(self, partner_of: dict[int, int]) -> int:
        """Add the counters to the stored ones, as ``rollup_add`` would have done click by
        click: one upsert per (link, day) that adds to an existing row."""
        table = connection.ops.quote_name(DailyLinkStats._meta.db_table)
        counters = ROLLUP_COUNTERS
        columns = f"link_id, partner_id, day, {', '.join(counters)}"
        sets = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
        rows = [
            (link_id, partner_of[link_id], day, *values[:4], values[4])
            for (link_id, day), values in sorted(self.rows.items())
        ]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "CREATE TEMPORARY TABLE loadbench_rollup (link_id bigint, partner_id bigint, day date, "
                    "clicks integer, unique_clicks integer, new_trials integer, new_subscriptions integer, "
                    "commission numeric(14, 2))"
                )
                with cursor.copy(f"COPY loadbench_rollup ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(
                    f"INSERT INTO {table} ({columns}) SELECT {columns} FROM loadbench_rollup "
                    f"ON CONFLICT (link_id, day) DO UPDATE SET {sets}"
                )
                # Dropped now, not at commit: the caller's transaction may go on (tests, a savepoint).
                cursor.execute("DROP TABLE loadbench_rollup")
            # The month rows (tracking/monthly.py) from the days: the row triggers that keep them
            # did not fire if the loads above turned triggers off (session_replication_role).
            if connection.vendor == "postgresql":
                monthly.recompute(sorted(set(partner_of.values())))
            else:
                cursor.executemany(
                    f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                    f"ON CONFLICT (link_id, day) DO UPDATE SET {sets}",
                    [(*row[:7], str(row[7])) for row in rows],
                )
        return len(rows)


class _Generator:
    def __init__(self, *, rng: random.Random, run: str, days: int, writer: _Writer, progress: tqdm) -> None:
        self.rng = rng
        self.run = run
        self.writer = writer
        self.progress = progress
        self.now = timezone.now()
        today = program_today()
        if (self.now - day_start(today)).total_seconds() < 60:
            # Just after midnight: today has no room for clicks yet, end the window yesterday.
            today -= _DAY
        self.days = [today - timedelta(days=days - 1 - i) for i in range(days)]
        self.rollups = _Rollups()
        self.next_visitor = 0
        self.unique_link = array("q")
        self.unique_visitor = array("q")
        self.unique_time = array("q")
        self.counts: dict[str, int] = defaultdict(int)
        self.salt = rng.getrandbits(64)
        # Mixed into the random part of every click id: the same --seed replays the same
        # random draws, and without this a second run would generate the first run's ids.
        self.id_salt = int.from_bytes(hashlib.sha256(run.encode()).digest()[:10]) & _UUID7_RANDOM

    # Clicks ------------------------------------------------------------------------------------

    def _day_counts(self, total: int) -> list[int]:
        """Clicks per day: growing over the year, quieter at weekends, noisy."""
        rng, n = self.rng, len(self.days)
        weights = [
            (0.35 + 0.65 * i / max(1, n - 1)) * (0.75 if day.weekday() >= 5 else 1.0) * rng.uniform(0.8, 1.2)
            for i, day in enumerate(self.days)
        ]
        scale = total / sum(weights)
        counts = [int(w * scale) for w in weights]
        for i in rng.choices(range(n), weights=weights, k=total - sum(counts)):
            counts[i] += 1
        return counts

    def click_rows(self, plan: _Plan, *, as_text: bool) -> Iterator[str | tuple]:
        """The plan's clicks in time order: COPY text lines (PostgreSQL, formatted by hand: far
        faster than adapting each value) or tuples of Python values.

        Times are whole microseconds since the epoch, so every copy of a click's time (the
        click, its unique-visitor row, a referral's click) is exactly the same instant. Ids are
        time-ordered UUIDs (version 7: a millisecond timestamp, then random bits), so a million
        rows append to the primary-key index instead of landing all over it."""
        rng, run = self.rng, self.run
        links = plan.links
        link_ids = [link.id for link in links]
        # A few links bring most clicks (Zipf-like popularity).
        cumulative = list(itertools.accumulate(1 / (i + 1) ** 0.8 for i in range(len(links))))
        weight_total = cumulative[-1]
        last_position = len(links) - 1
        random_float, random_bits, salt, id_salt = rng.random, rng.getrandbits, self.salt, self.id_salt
        agents, referers = USER_AGENTS, REFERERS
        n_agents, n_referers = len(agents), len(referers)
        # What the click writer derives from each (tracking.sources), computed once per string.
        devices = [device_type(agent) for agent in agents]
        hosts = [referrer_host(referer) for referer in referers]
        sub1s, sub2s, countries = SUB1S, SUB2S, COUNTRIES
        n_sub1, n_sub2, n_countries = len(sub1s), len(sub2s), len(countries)
        home = array("H")  # each visitor's usual link (position in ``links``)
        first_visitor = self.next_visitor
        seen: set[int] = set()
        reservoir = plan.candidates
        now_us = _micros(self.now)
        for day, count in zip(self.days, self._day_counts(plan.clicks), strict=True):
            if count == 0:
                continue
            start = _micros(day_start(day))
            span = min(_micros(day_start(day + _DAY)), now_us) - start
            day_clicks: dict[int, int] = defaultdict(int)
            day_unique: dict[int, int] = defaultdict(int)
            for offset in sorted(int(random_float() * span) for _ in range(count)):
                known = len(home)
                if known and random_float() < 0.45:
                    # A returning visitor, more likely a recent one, mostly on their usual link.
                    local = known - 1 - int(known * random_float() ** 3)
                    if random_float() < 0.85:
                        position = home[local]
                    else:
                        position = min(bisect.bisect(cumulative, random_float() * weight_total), last_position)
                else:
                    local = known
                    position = min(bisect.bisect(cumulative, random_float() * weight_total), last_position)
                    home.append(position)
                visitor = first_visitor + local
                stamp = start + offset
                key = visitor * MAX_LINKS + position
                link_id = link_ids[position]
                click_hex = (
                    f"{((stamp // 1000) << 80) | _UUID7_BITS | ((random_bits(76) ^ id_salt) & _UUID7_RANDOM):032x}"
                )
                day_clicks[link_id] += 1
                unique = key not in seen
                if unique:
                    seen.add(key)
                    day_unique[link_id] += 1
                    self.unique_link.append(link_id)
                    self.unique_visitor.append(visitor)
                    self.unique_time.append(stamp)
                    plan.unique_seen += 1
                    # Reservoir sampling: every unique click equally likely to bring a sign-up.
                    slot = len(reservoir) if len(reservoir) < plan.referrals else rng.randrange(plan.unique_seen)
                    if slot < plan.referrals:
                        entry = (uuid.UUID(hex=click_hex), position, _instant(stamp))
                        if slot == len(reservoir):
                            reservoir.append(entry)
                        else:
                            reservoir[slot] = entry
                # A stand-in for the keyed hash of the visitor's IP: 64 hex digits, stable per visitor.
                ip_hash = f"{((visitor + salt) * _HASH_MULTIPLIER) & _MASK_256:064x}"
                agent, referer = visitor % n_agents, (visitor + position) % n_referers
                # A placement per (link, visitor): the same visitor keeps clicking the same spot.
                sub1, sub2 = sub1s[(visitor * 7 + position) % n_sub1], sub2s[(visitor * 3 + position) % n_sub2]
                country = countries[visitor % n_countries]
                if as_text:
                    yield (
                        f"{click_hex}\t{link_id}\t{run}v{visitor}\t{_text_time(stamp)}\t{ip_hash}\t"
                        f"{agents[agent]}\t{referers[referer]}\t{'t' if unique else 'f'}\t"
                        f"{sub1}\t{sub2}\t{country}\t{hosts[referer]}\t{devices[agent]}\n"
                    )
                else:
                    yield (
                        uuid.UUID(hex=click_hex),
                        link_id,
                        f"{run}v{visitor}",
                        _instant(stamp),
                        ip_hash,
                        agents[agent],
                        referers[referer],
                        unique,
                        sub1,
                        sub2,
                        country,
                        hosts[referer],
                        devices[agent],
                    )
            for link_id, n in day_clicks.items():
                self.rollups.add(link_id, day, 0, n)
            for link_id, n in day_unique.items():
                self.rollups.add(link_id, day, 1, n)
        self.next_visitor = first_visitor + len(home)

    def unique_visitor_rows(self, *, as_text: bool) -> Iterator[str | tuple]:
        run = self.run
        for link_id, visitor, stamp in zip(self.unique_link, self.unique_visitor, self.unique_time, strict=True):
            if as_text:
                yield f"{link_id}\t{run}v{visitor}\t{_text_time(stamp)}\n"
            else:
                yield (link_id, f"{run}v{visitor}", _instant(stamp))

    # Referrals, payments, refunds, the ledger, the event log ------------------------------------

    def _event(self, events: list, event_id: int, kind: str, at: datetime, referral_id: int, data: dict, body: dict):
        document = {"id": f"bench_{self.run}_{event_id}", "type": kind, "created": at.isoformat(), "data": data}
        # The body is sent in canonical form, so its SHA-256 is the canonical hash the events
        # service compares replays with (commissions.events.canonical_sha256), computed once.
        text = _CANONICAL_JSON.encode(document)
        events.append(
            (
                event_id,
                document["id"],
                kind,
                text,
                hashlib.sha256(text.encode()).hexdigest(),
                at,
                at + timedelta(milliseconds=40 + int(self.rng.random() * 860)),
                APPLIED,
                201,
                body,
                referral_id,
            )
        )

    def money_rows(self, plan: _Plan, tag: str) -> dict[str, list[tuple]]:
        rng, now = self.rng, self.now
        currency = settings.PROGRAM_CURRENCY
        rate = settings.COMMISSION_RATE  # the bench partners have no rate of their own
        commissions: dict[Decimal, Decimal] = {}  # commission_for() of each distinct amount
        zone = program_tz()

        def local_day(moment: datetime) -> date:
            return moment.astimezone(zone).date()  # program_day(), without the per-call lookups

        candidates = sorted(plan.candidates, key=lambda c: c[2])
        referral_ids = self.writer.reserve_ids(Referral, len(candidates))
        signups = []
        for (click_id, position, clicked), referral_id in zip(candidates, referral_ids, strict=True):
            delay = (
                timedelta(minutes=rng.randint(2, 180)) if rng.random() < 0.7 else timedelta(hours=rng.randint(3, 480))
            )
            if clicked + delay >= now:
                # A recent click: the sign-up happens somewhere between the click and now.
                delay = (now - clicked) * rng.random()
            signups.append((referral_id, click_id, plan.links[position], clicked + delay))

        # Which referrals pay: first payment near the end of the trial, if that has come.
        eligible = []
        for referral_id, _, link, signed_up in signups:
            first_paid = signed_up + timedelta(days=link.trial_days) - timedelta(hours=rng.randint(0, 72))
            if first_paid < now:
                eligible.append((referral_id, first_paid))
        rng.shuffle(eligible)
        converting = eligible[: min(plan.payments, max(1, round(len(signups) * 0.45)))] if plan.payments else []

        # Monthly renewals until now, or until the customer cancels.
        stops: dict[int, datetime | None] = {}
        slots: list[tuple[int, datetime]] = []
        for referral_id, first_paid in converting:
            months = int((now - first_paid) / _MONTH)
            cancel_at = None
            if rng.random() < 0.2:
                months = rng.randint(0, months)
                moment = first_paid + months * _MONTH + timedelta(days=rng.randint(3, 25))
                cancel_at = moment if moment < now else None
            stops[referral_id] = cancel_at
            slots.extend((referral_id, first_paid + k * _MONTH) for k in range(1, months + 1))
        renewals_wanted = plan.payments - len(converting) if converting else 0
        if renewals_wanted <= len(slots):
            renewals = rng.sample(slots, renewals_wanted)
        else:
            # More payments than months: the rest are seat purchases and upgrades mid-month.
            renewals = list(slots)
            open_ended = [(r, p) for r, p in converting if stops[r] is None] or converting
            for _ in range(renewals_wanted - len(slots)):
                referral_id, first_paid = rng.choice(open_ended)
                until = stops[referral_id] or now
                renewals.append((referral_id, first_paid + (until - first_paid) * rng.random()))
        schedule = sorted(
            [(first_paid, referral_id, True) for referral_id, first_paid in converting]
            + [(at, referral_id, False) for referral_id, at in renewals]
        )

        events, payments, entries, refunds = [], [], [], []
        event_ids = iter(self.writer.reserve_ids(MerchantEvent, len(signups) + len(schedule) * 2 + len(stops)))
        payment_ids = self.writer.reserve_ids(Payment, len(schedule))
        link_of = {referral_id: link for referral_id, _, link, _ in signups}
        state: dict[int, dict] = {
            referral_id: {"plan": "", "seats": None, "paid": ZERO, "commission": ZERO, "first": None}
            for referral_id, *_ in signups
        }
        customer = {referral_id: f"bench-{self.run}-{tag}-{n}" for n, (referral_id, *_) in enumerate(signups)}
        for referral_id, click_id, link, signed_up in signups:
            self._event(
                events,
                next(event_ids),
                SIGNED_UP,
                signed_up,
                referral_id,
                {"customer_id": customer[referral_id], "click_id": str(click_id), "email": None},
                {"referral": {"id": referral_id, "status": "trial", "trial_days": link.trial_days}},
            )
            self.rollups.add(link.id, local_day(signed_up), 2)

        refund_rows = []
        for (paid_at, referral_id, is_first), payment_id in zip(schedule, payment_ids, strict=True):
            current = state[referral_id]
            if is_first:
                current["plan"] = rng.choices("ABC", weights=(50, 35, 15))[0]
                current["seats"] = max(1, int(rng.paretovariate(1.6)))
                current["first"] = paid_at
            elif rng.random() < 0.08:
                current["seats"] += rng.randint(1, 3)
                if current["plan"] != "C" and rng.random() < 0.3:
                    current["plan"] = "B" if current["plan"] == "A" else "C"
            amount = PRICES[current["plan"]] * current["seats"]
            commission = commissions.get(amount)
            if commission is None:
                commission = commissions[amount] = commission_for(amount)
            event_id = next(event_ids)
            data = {
                "payment_id": f"bench_{self.run}_pay_{payment_id}",
                "customer_id": customer[referral_id],
                "amount": str(amount),
                "currency": currency,
                "plan": current["plan"],
                "seats": current["seats"],
            }
            self._event(
                events,
                event_id,
                PAYMENT_SUCCEEDED,
                paid_at,
                referral_id,
                data,
                {
                    "payment": {"payment_id": data["payment_id"], "amount": data["amount"]},
                    "commission": {"amount": str(commission)},
                },
            )
            refunded = ZERO
            left = commission
            if rng.random() < 0.03:
                refunded_at = paid_at + timedelta(days=rng.randint(1, 14), hours=rng.randint(0, 23))
                if refunded_at < now:
                    full = rng.random() < 0.6
                    refunded = amount if full else (amount / 2).quantize(Decimal("0.01"))
                    reversal = reversal_for(refunded=refunded, commission_left=left, completes_payment=full)
                    left += reversal
                    refund_event = next(event_ids)
                    refund_rows.append(
                        (refund_event, payment_id, refunded, refunded_at, reversal, referral_id, link_of[referral_id])
                    )
                    self._event(
                        events,
                        refund_event,
                        PAYMENT_REFUNDED,
                        refunded_at,
                        referral_id,
                        {"payment_id": data["payment_id"], "amount": str(refunded)},
                        {"commission": {"amount": str(reversal)}},
                    )
            payments.append(
                (
                    payment_id,
                    data["payment_id"],
                    referral_id,
                    plan.partner_id,
                    current["plan"],
                    current["seats"],
                    amount,
                    currency,
                    paid_at,
                    refunded,
                    event_id,
                )
            )
            entries.append(
                (
                    plan.partner_id,
                    referral_id,
                    payment_id,
                    None,
                    KIND_COMMISSION,
                    commission,
                    rate,
                    paid_at,
                    paid_at,
                )
            )
            current["paid"] += amount - refunded
            current["commission"] += left
            paid_day = local_day(paid_at)
            self.rollups.add(link_of[referral_id].id, paid_day, 4, commission)
            if is_first:
                self.rollups.add(link_of[referral_id].id, paid_day, 3)

        refund_ids = self.writer.reserve_ids(Refund, len(refund_rows))
        for refund_id, (event_id, payment_id, refunded, refunded_at, reversal, referral_id, link) in zip(
            refund_ids, refund_rows, strict=True
        ):
            refunds.append((refund_id, payment_id, refunded, refunded_at, event_id))
            entries.append(
                (
                    plan.partner_id,
                    referral_id,
                    payment_id,
                    refund_id,
                    KIND_REVERSAL,
                    reversal,
                    rate,
                    refunded_at,
                    refunded_at,
                )
            )
            self.rollups.add(link.id, local_day(refunded_at), 4, reversal)

        referrals = []
        for referral_id, click_id, link, signed_up in signups:
            current = state[referral_id]
            trial_ends = signed_up + timedelta(days=link.trial_days)
            cancelled_at = stops.get(referral_id)
            if cancelled_at is not None:
                status = Referral.Status.CANCELLED
                self._event(
                    events,
                    next(event_ids),
                    SUBSCRIPTION_CANCELLED,
                    cancelled_at,
                    referral_id,
                    {"customer_id": customer[referral_id]},
                    {"referral": {"id": referral_id, "status": "cancelled"}},
                )
            elif current["first"] is not None:
                status = Referral.Status.PAYING
            elif trial_ends > now:
                status = Referral.Status.TRIAL
            else:
                status = Referral.Status.EXPIRED
            referrals.append(
                (
                    referral_id,
                    plan.partner_id,
                    link.id,
                    click_id,
                    customer[referral_id],
                    f"customer.{self.run}.{tag}.{referral_id}@example.org",
                    False,
                    status,
                    signed_up,
                    link.trial_days,
                    trial_ends,
                    current["first"],
                    cancelled_at,
                    current["plan"],
                    current["seats"],
                    current["paid"],
                    current["commission"],
                )
            )
        self.counts["referrals"] += len(referrals)
        self.counts["payments"] += len(payments)
        self.counts["refunds"] += len(refunds)
        self.counts["events"] += len(events)
        return {"referrals": referrals, "events": events, "payments": payments, "entries": entries, "refunds": refunds}

    def write_money(self, rows: dict[str, list[tuple]]) -> None:
        w = self.writer
        w.write(
            Referral,
            [
                "id",
                "partner_id",
                "link_id",
                "click_id",
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
            ],
            rows["referrals"],
        )
        self.progress.update(len(rows["referrals"]))
        w.write(
            MerchantEvent,
            [
                "id",
                "event_id",
                "type",
                "body",
                "body_sha256",
                "created",
                "received_at",
                "outcome",
                "response_status",
                "response_body",
                "referral_id",
            ],
            rows["events"],
        )
        w.write(
            Payment,
            [
                "id",
                "payment_id",
                "referral_id",
                "partner_id",
                "plan",
                "seats",
                "amount",
                "currency",
                "paid_at",
                "refunded_amount",
                "event_id",
            ],
            rows["payments"],
        )
        self.progress.update(len(rows["payments"]))
        w.write(Refund, ["id", "payment_id", "amount", "refunded_at", "event_id"], rows["refunds"])
        w.write(
            CommissionEntry,
            [
                "partner_id",
                "referral_id",
                "payment_id",
                "refund_id",
                "kind",
                "amount",
                "rate",
                "earned_at",
                "created_at",
            ],
            rows["entries"],
        )


# --- the command ----------------------------------------------------------------------------


def _add_dimension_rollups(run: str, days: list[date], partner_ids: list[int]) -> None:
    """Add this run's clicks to ``DailyDimensionStats``, so ``rebuild_rollups`` finds no
    difference. PostgreSQL: one additive INSERT … SELECT per dimension over exactly the rows
    inserted (their visitor ids start with the run's hex token), then the partner-wide rows of
    the run's partners summed again from their links' rows; elsewhere the rebuild of the run's
    days computes them from the raw clicks."""
    from tracking.models import DailyDimensionStats, PartnerDailyDimensionStats

    if connection.vendor != "postgresql":
        rebuild_dimension_rollups(days[0], days[-1])
        return
    table = connection.ops.quote_name(DailyDimensionStats._meta.db_table)
    clicks = connection.ops.quote_name(Click._meta.db_table)
    links = connection.ops.quote_name(Link._meta.db_table)
    for dimension, column in DIMENSION_COLUMNS.items():
        sql = (
            f"INSERT INTO {table} (link_id, partner_id, day, dimension, value, clicks, unique_clicks) "
            "SELECT c.link_id, l.partner_id, (c.created_at AT TIME ZONE %s)::date, %s, "
            f"c.{column}, COUNT(*), COUNT(*) FILTER (WHERE c.is_unique) "
            f"FROM {clicks} c JOIN {links} l ON l.id = c.link_id "
            f"WHERE c.visitor_id LIKE %s AND c.{column} <> '' GROUP BY 1, 2, 3, 5 "
            f"ON CONFLICT (link_id, dimension, day, value) DO UPDATE SET clicks = {table}.clicks + excluded.clicks, "
            f"unique_clicks = {table}.unique_clicks + excluded.unique_clicks"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [settings.TIME_ZONE, dimension, f"{run}v%"])
    partners = connection.ops.quote_name(PartnerDailyDimensionStats._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {partners} (partner_id, dimension, day, value, clicks, unique_clicks) "
            f"SELECT d.partner_id, d.dimension, d.day, d.value, SUM(d.clicks), SUM(d.unique_clicks) FROM {table} d "
            "WHERE d.partner_id = ANY(%s) GROUP BY 1, 2, 3, 4 ON CONFLICT (partner_id, dimension, day, value) "
            "DO UPDATE SET clicks = excluded.clicks, unique_clicks = excluded.unique_clicks",
            [partner_ids],
        )


def _bench_partner(password_hash: str) -> tuple[Partner, bool]:
    user = User.objects.filter(email__iexact=BENCH_EMAIL).first()
    if user is None:
        user = User.objects.create(email=BENCH_EMAIL, password=password_hash, first_name="Bench")
    else:
        # Reused: make sure the printed credentials work.
        User.objects.filter(pk=user.pk).update(password=password_hash, is_active=True)
    partner = Partner.objects.filter(user=user).first()
    if partner is not None:
        return partner, False
    code = new_referral_code()
    partner = Partner.objects.create(
        user=user,
        name="Bench Partner",
        website="https://bench.example.com",
        paypal_email="bench.paypal@example.com",
        referral_code=code,
        accepted_terms_at=timezone.now(),
    )
    Link.objects.create(partner=partner, code=code, trial_days=14, is_default=True)
    return partner, True


def _ensure_links(partner: Partner, count: int, run: str, rng: random.Random) -> list[_LinkInfo]:
    existing = list(partner.links.order_by("-is_default", "pk").values_list("pk", "trial_days"))
    creatives = list(Creative.objects.filter(is_active=True).values_list("pk", flat=True)[:20])
    missing = count - len(existing)
    if missing > 0:
        Link.objects.bulk_create(
            [
                Link(
                    partner=partner,
                    code=f"b-{run}-{partner.pk}-{n}",
                    destination=rng.choice(DESTINATIONS),
                    trial_days=30 if rng.random() < 0.25 else 14,
                    description=f"{rng.choice(CAMPAIGNS)} #{n + 1}",
                    creative_id=rng.choice(creatives) if creatives and rng.random() < 0.5 else None,
                )
                for n in range(missing)
            ],
            batch_size=_BATCH,
        )
        existing = list(partner.links.order_by("-is_default", "pk").values_list("pk", "trial_days"))
    return [_LinkInfo(pk, trial_days) for pk, trial_days in existing[:count]]


def _other_partners(
    count: int, run: str, password_hash: str, rng: random.Random
) -> list[tuple[Partner, list[_LinkInfo]]]:
    if count == 0:
        return []
    users = User.objects.bulk_create(
        [
            User(email=f"bench-{run}-{n}@example.com", password=password_hash, first_name=f"Partner {n}")
            for n in range(count)
        ],
        batch_size=_BATCH,
    )
    now = timezone.now()
    partners = Partner.objects.bulk_create(
        [
            Partner(
                user=user,
                name=f"Partner {run} {n}",
                referral_code=new_referral_code(),
                accepted_terms_at=now,
                paypal_email=f"paypal.{run}.{n}@example.com" if rng.random() < 0.8 else "",
            )
            for n, user in enumerate(users)
        ],
        batch_size=_BATCH,
    )
    links = []
    for n, partner in enumerate(partners):
        links.append(Link(partner=partner, code=partner.referral_code, trial_days=14, is_default=True))
        if n % 2 == 0:
            links.append(
                Link(
                    partner=partner,
                    code=f"b-{run}-{partner.pk}-1",
                    destination=rng.choice(DESTINATIONS),
                    trial_days=rng.choice((14, 30)),
                    description=rng.choice(CAMPAIGNS),
                )
            )
    Link.objects.bulk_create(links, batch_size=_BATCH)
    by_partner: dict[int, list[_LinkInfo]] = defaultdict(list)
    for pk, partner_id, trial_days in (
        Link.objects.filter(partner__in=partners)
        .order_by("-is_default", "pk")
        .values_list("pk", "partner_id", "trial_days")
    ):
        by_partner[partner_id].append(_LinkInfo(pk, trial_days))
    return [(partner, by_partner[partner.pk]) for partner in partners]


def _bench_payouts(writer: _Writer, partner: Partner, count: int, days: list[date], rng: random.Random) -> None:
    """``count`` payouts of the measured partner over the loaded days, oldest first: paid mostly,
    some rejected or failed, and the newest still pending (one open payout at most). Together
    they take at most 90 % of the partner's commission (at least 1.00 each), so the balance stays
    positive whenever the partner earned more than that."""
    now = timezone.now()
    earned = CommissionEntry.objects.filter(partner=partner).aggregate(total=models.Sum("amount"))["total"] or ZERO
    weights = [rng.uniform(0.5, 1.5) for _ in range(count)]
    budget = earned * Decimal("0.9") / Decimal(str(sum(weights)))
    amounts = [max(Decimal("1.00"), cents(budget * Decimal(str(weight)))) for weight in weights]
    step = max(1, len(days) * 86_400 // max(1, count))
    first = now - timedelta(seconds=step * count)
    rows = []
    for n in range(count):
        requested = first + timedelta(seconds=step * n + rng.randint(0, max(0, step - 1)))
        newest = n == count - 1
        roll = rng.random()
        status = "pending" if newest else "rejected" if roll < 0.05 else "failed" if roll < 0.1 else "paid"
        decided = None if newest else requested + timedelta(hours=rng.randint(1, 48))
        rows.append(
            (
                partner.pk,
                amounts[n],
                settings.PROGRAM_CURRENCY,
                "paypal",
                partner.paypal_email or BENCH_EMAIL,
                status,
                requested,
                decided,
                "Not eligible this month." if status == "rejected" else "",
                decided if status in ("paid", "failed") else None,
                decided if status == "paid" else None,
                f"BENCHBATCH{n}" if status in ("paid", "failed") else "",
                f"BENCHITEM{n}" if status in ("paid", "failed") else "",
                f"BENCHTX{n}" if status == "paid" else "",
                "RECEIVER_UNREGISTERED" if status == "failed" else "",
                0 if newest else 1,
                f"bench-{partner.pk}-{n}",
                False,
                "",
                {"paid": "SUCCESS", "failed": "FAILED"}.get(status, ""),
            )
        )
    writer.write(
        Payout,
        [
            "partner_id",
            "amount",
            "currency",
            "method",
            "paypal_email",
            "status",
            "requested_at",
            "decided_at",
            "rejection_reason",
            "sent_at",
            "paid_at",
            "paypal_batch_id",
            "paypal_item_id",
            "paypal_transaction_id",
            "failure_reason",
            "send_attempts",
            "sender_batch_id",
            "outcome_unknown",
            "attention_reason",
            "paypal_item_status",
        ],
        rows,
    )


class Command(BaseCommand):
    help = (
        "Insert synthetic clicks, referrals, payments, refunds and commissions for the measured partner "
        f"{BENCH_EMAIL} (password '{BENCH_PASSWORD}'), plus --partners other partners; rollups included."
    )

    def add_arguments(self, parser):
        parser.add_argument("--partners", type=int, default=1000, help="Other partners to add (a little data each).")
        parser.add_argument("--clicks", type=int, default=1_000_000, help="Clicks for the measured partner.")
        parser.add_argument(
            "--referrals", type=int, default=10_000, help="Referrals (sign-ups) for the measured partner."
        )
        parser.add_argument("--payments", type=int, default=100_000, help="Payments for the measured partner.")
        parser.add_argument("--links", type=int, default=100, help="Links of the measured partner (default 100).")
        parser.add_argument("--days", type=int, default=365, help="How far back activity goes (days).")
        parser.add_argument("--seed", type=int, default=None, help="Random seed (ids stay unique per run).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parser.add_argument(
            "--payouts", type=int, default=0, help="Payouts of the measured partner (all closed but the newest)."
        )
        parser.add_argument(
            "--merchant-scale",
            action="store_true",
            help="Instead: 10,000 partners, 200,000 payouts in every status, 2 M ledger entries, 1 M events "
            "(set-based SQL; PostgreSQL), for the admin changelists.",
        )
        parser.add_argument(
            "--merchant-scale-factor", type=float, default=1.0, help="Scale the merchant-scale counts (tests)."
        )

    def handle(self, *args, **options):
        if options["merchant_scale"]:
            return self._merchant_scale(options)
        clicks, referrals, payments = options["clicks"], options["referrals"], options["payments"]
        links, days, others = options["links"], options["days"], options["partners"]
        if min(clicks, referrals, payments, others) < 0 or not 1 <= links <= MAX_LINKS or not 1 <= days <= 3650:
            raise CommandError("Counts must be ≥ 0, --links between 1 and 1000, --days between 1 and 3650.")
        if referrals > clicks:
            raise CommandError("Every referral signs up from a unique click: --referrals cannot exceed --clicks.")
        if payments and not referrals:
            raise CommandError("Payments need referrals: give --referrals too.")

        seed = options["seed"] if options["seed"] is not None else secrets.randbits(32)
        rng = random.Random(seed)
        run = secrets.token_hex(3)
        started = time.monotonic()
        from django.contrib.auth.hashers import make_password

        bench_hash = make_password(BENCH_PASSWORD)
        others_hash = make_password(None)  # other partners cannot log in
        small = [(rng.randint(5, 40), rng.randint(0, 2), rng.randint(0, 3)) for _ in range(others)]
        total = clicks + referrals + payments + sum(c + r + p for c, r, p in small)
        progress = tqdm(
            total=total, unit="row", unit_scale=True, desc="loadbench", disable=options["no_progress"], mininterval=0.5
        )
        writer = _Writer(progress)
        phases: dict[str, tuple[float, float]] = {}
        mark = (time.monotonic(), time.process_time())

        def phase(name: str) -> None:
            # Wall time and this process's CPU time (the rest is the database, or other load).
            nonlocal mark
            now = (time.monotonic(), time.process_time())
            phases[name] = (now[0] - mark[0], now[1] - mark[1])
            mark = now

        skips_checks = False
        with transaction.atomic():
            if writer.postgres:
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit = off")
                skips_checks = writer.skip_foreign_key_checks()
            bench, created = _bench_partner(bench_hash)
            plans = [_Plan(bench.pk, _ensure_links(bench, links, run, rng), clicks, referrals, payments)]
            partner_ids = [bench.pk]
            for (partner, partner_links), (c, r, p) in zip(
                _other_partners(others, run, others_hash, rng), small, strict=True
            ):
                plans.append(_Plan(partner.pk, partner_links, c, min(r, c), p if r else 0))
                partner_ids.append(partner.pk)

            generator = _Generator(rng=rng, run=run, days=days, writer=writer, progress=progress)
            phase("partners and links")
            click_fields = [
                "id",
                "link_id",
                "visitor_id",
                "created_at",
                "ip_hash",
                "user_agent",
                "referer",
                "is_unique",
                "sub1",
                "sub2",
                "country",
                "referrer_host",
                "device",
            ]
            text = writer.postgres
            click_rows = (row for plan in plans for row in generator.click_rows(plan, as_text=text))
            unique_rows = generator.unique_visitor_rows(as_text=text)
            unique_fields = ["link_id", "visitor_id", "first_click_at"]
            if text:
                writer.write_text(Click, click_fields, click_rows, counts=True)
                writer.write_text(UniqueVisitor, unique_fields, unique_rows)
            else:
                writer.write(Click, click_fields, click_rows, counts=True)
                writer.write(UniqueVisitor, unique_fields, unique_rows)
            phase("clicks and unique visitors")
            money: dict[str, list[tuple]] = defaultdict(list)
            for n, plan in enumerate(plans):
                for table, rows in generator.money_rows(plan, tag=str(n)).items():
                    money[table].extend(rows)
            phase("referrals, payments, ledger, events built")
            generator.write_money(money)
            phase("written")
            if options["payouts"]:
                _bench_payouts(writer, bench, options["payouts"], generator.days, rng)
            partner_of = {link.id: plan.partner_id for plan in plans for link in plan.links}
            rollup_rows = generator.rollups.write(partner_of)
            _add_dimension_rollups(run, generator.days, partner_ids)
            partner_balances_refresh(partner_ids=partner_ids)
            # The ledger's day sums, the referrals' day counts and their clicks' sub-IDs: their
            # triggers did not fire while the rows were copied in.
            ledgerdays.recompute(partner_ids=partner_ids)
            referraldays.recompute(partner_ids=partner_ids)
            referralsubs.recompute(partner_ids=partner_ids)
            phase("rollups and balances")
        phase("commit")
        progress.close()
        if writer.postgres:
            # Fresh planner statistics and visibility maps, so the first benchmark does not run on
            # stale estimates or pay for setting hint bits. Only the tables the reports and the
            # ledger read; clicks and events are left to autovacuum. VACUUM cannot run inside a
            # transaction (a caller's, or a test's): then statistics only.
            command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
            with connection.cursor() as cursor:
                from tracking.models import DailyDimensionStats, PartnerDailyDimensionStats

                for model in (
                    Link,
                    Referral,
                    Payment,
                    CommissionEntry,
                    DailyLinkStats,
                    Partner,
                    DailyDimensionStats,
                    PartnerDailyDimensionStats,
                ):
                    cursor.execute(f"{command} {connection.ops.quote_name(model._meta.db_table)}")
            phase("vacuum and analyze")

        bench.refresh_from_db()
        elapsed = time.monotonic() - started
        if options["verbosity"] >= 2:
            if writer.postgres:
                self.stdout.write(f"Foreign-key triggers skipped: {'yes' if skips_checks else 'no (not permitted)'}.")
            self.stdout.write(
                "Timings (wall / our CPU): "
                + ", ".join(f"{name} {wall:.1f} / {cpu:.1f} s" for name, (wall, cpu) in phases.items())
            )
        self.stdout.write(
            f"Inserted {clicks + sum(c for c, _, _ in small):,} clicks ({len(generator.unique_link):,} unique), "
            f"{generator.counts['referrals']:,} referrals, {generator.counts['payments']:,} payments, "
            f"{generator.counts['refunds']:,} refunds, {generator.counts['events']:,} events, "
            f"{rollup_rows:,} rollup rows, {others:,} other partners in {elapsed:.1f} s (seed {seed}, run {run})."
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Measured partner: {BENCH_EMAIL} / {BENCH_PASSWORD} ({'created' if created else 'reused'}; "
                f"{len(plans[0].links)} links; commission {bench.commission_total} {settings.PROGRAM_CURRENCY}, "
                f"balance {bench.balance} {settings.PROGRAM_CURRENCY})."
            )
        )

    def _merchant_scale(self, options) -> None:
        from devtools.management.commands._merchant_scale import MerchantScale, load

        if connection.vendor != "postgresql":
            raise CommandError("--merchant-scale needs PostgreSQL (DATABASE_URL=postgres://...).")
        factor = options["merchant_scale_factor"]
        if not 0 < factor <= 10:
            raise CommandError("--merchant-scale-factor must be in (0, 10].")
        scale = MerchantScale().scaled(factor)
        run = secrets.token_hex(3)
        started = time.monotonic()
        self.stdout.write(
            f"Merchant scale: {scale.partners:,} partners, {scale.payouts:,} payouts, {scale.ledger:,} ledger "
            f"entries, {scale.events:,} events (run {run})."
        )
        writer = _Writer(tqdm(disable=True))
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
            skips_checks = writer.skip_foreign_key_checks()
            written = load(scale, run, self.stdout.write)
            # The ledger's day rows, the referrals' day counts and their clicks' sub-IDs are kept
            # by triggers, which the replica role skipped.
            ledgerdays.recompute(partner_ids=written["partner_ids"])
            referraldays.recompute(partner_ids=written["partner_ids"])
            referralsubs.recompute(partner_ids=written["partner_ids"])
            partner_balances_refresh(partner_ids=written["partner_ids"])
        with connection.cursor() as cursor:
            for table in (
                "partners_user",
                "partners_partner",
                "tracking_link",
                "tracking_click",
                "commissions_referral",
                "commissions_merchantevent",
                "commissions_payment",
                "commissions_refund",
                "commissions_commissionentry",
                "commissions_ledgerday",
                "payouts_payout",
                "tracking_dailylinkstats",
                "tracking_linkmonthlystats",
            ):
                cursor.execute(f"VACUUM (ANALYZE) {table}" if not connection.in_atomic_block else f"ANALYZE {table}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Merchant scale loaded in {time.monotonic() - started:.0f} s "
                f"(foreign-key triggers skipped: {'yes' if skips_checks else 'no'})."
            )
        )
