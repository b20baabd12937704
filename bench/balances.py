"""Balance recalculation for 100,000 partners in one set-based pass, timed.

Run by bench/run.py as a separate process on its own, freshly migrated database (named by
DATABASE_URL): fills it with partners and a ledger by COPY, runs the hourly Celery task's body
(``commissions.tasks.recalculate_all_balances_task``: one UPDATE for every partner) a few
times, checks every partner's stored balance against an independent GROUP BY over the ledger
and the payouts, and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, models  # noqa: E402
from django.utils import timezone  # noqa: E402

from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral, Refund  # noqa: E402
from commissions.tasks import recalculate_all_balances_task  # noqa: E402
from partners.models import Partner, User  # noqa: E402
from payouts.models import Payout  # noqa: E402
from tracking.models import Click, Link  # noqa: E402

RATE = Decimal("0.20")
PRICES = (Decimal("25.00"), Decimal("39.00"), Decimal("59.00"), Decimal("118.00"))


class Copier:
    """Rows for one model, written with COPY. Values go through each field's own conversion
    (``get_db_prep_save``), so the rows are what the ORM would have written."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.rows: list[list] = []
        self.next_id = 0
        if isinstance(model._meta.pk, models.AutoField):
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {model._meta.db_table}")
                self.next_id = cursor.fetchone()[0] + 1

    def add(self, **values) -> int | object:
        if "id" not in values and self.next_id:
            values["id"] = self.next_id
            self.next_id += 1
        obj = self.model(**values)
        self.rows.append([f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in self.fields])
        return obj.pk

    def flush(self) -> int:
        table = connection.ops.quote_name(self.model._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(f.column) for f in self.fields)
        with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in self.rows:
                copy.write_row(row)
        if self.next_id:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {self.next_id})")
        count = len(self.rows)
        self.rows = []
        return count


def populate(partners: int, with_ledger_every: int, rng: random.Random) -> dict[str, int]:
    now = timezone.now()
    users, profiles, links = Copier(User), Copier(Partner), Copier(Link)
    clicks, referrals, events = Copier(Click), Copier(Referral), Copier(MerchantEvent)
    payments, refunds, entries, payouts = Copier(Payment), Copier(Refund), Copier(CommissionEntry), Copier(Payout)

    def event(event_id: str, kind: str, at, referral_id: int) -> int:
        return events.add(
            event_id=event_id,
            type=kind,
            body="{}",
            body_sha256="0" * 64,
            created=at,
            outcome=MerchantEvent.Outcome.APPLIED,
            response_status=201,
            response_body={},
            referral_id=referral_id,
        )

    for i in range(partners):
        code = f"bal{i:06d}"
        user_id = users.add(email=f"{code}@example.com", password="!", date_joined=now)  # noqa: S106 - unusable password
        partner_id = profiles.add(user_id=user_id, referral_code=code, name=f"Partner {i}", accepted_terms_at=now)
        link_id = links.add(partner_id=partner_id, code=code, is_default=True)
        if i % with_ledger_every:
            continue
        signed_up = now - timedelta(days=rng.randint(120, 400))  # every payment in the past
        click_id = clicks.add(id=uuid.uuid4(), link_id=link_id, visitor_id=code, created_at=signed_up, is_unique=True)
        referral_id = referrals.add(
            partner_id=partner_id,
            link_id=link_id,
            click_id=click_id,
            customer_id=f"cus-{code}",
            status=Referral.Status.PAYING,
            signed_up_at=signed_up,
            trial_days=14,
            trial_ends_at=signed_up + timedelta(days=14),
            first_paid_at=signed_up + timedelta(days=14),
        )
        earned = Decimal("0.00")
        for n in range(rng.randint(1, 4)):
            paid_at = signed_up + timedelta(days=14 + 30 * n)
            amount = rng.choice(PRICES)
            event_id = event(f"evt-{code}-{n}", MerchantEvent.Type.PAYMENT_SUCCEEDED, paid_at, referral_id)
            payment_id = payments.add(
                payment_id=f"pay-{code}-{n}",
                referral_id=referral_id,
                partner_id=partner_id,
                plan="B",
                seats=1,
                amount=amount,
                currency="USD",
                paid_at=paid_at,
                event_id=event_id,
            )
            commission = (amount * RATE).quantize(Decimal("0.01"))
            entries.add(
                partner_id=partner_id,
                referral_id=referral_id,
                payment_id=payment_id,
                kind=CommissionEntry.Kind.COMMISSION,
                amount=commission,
                earned_at=paid_at,
            )
            earned += commission
            if n == 0 and i % (with_ledger_every * 10) == 0:
                refunded_at = paid_at + timedelta(days=3)
                refund_event = event(f"ref-{code}", MerchantEvent.Type.PAYMENT_REFUNDED, refunded_at, referral_id)
                refund_id = refunds.add(
                    payment_id=payment_id, amount=amount, refunded_at=refunded_at, event_id=refund_event
                )
                entries.add(
                    partner_id=partner_id,
                    referral_id=referral_id,
                    payment_id=payment_id,
                    refund_id=refund_id,
                    kind=CommissionEntry.Kind.REVERSAL,
                    amount=-commission,
                    earned_at=refunded_at,
                )
                earned -= commission
        if i % (with_ledger_every * 5) == 0 and earned > 0:
            payouts.add(
                partner_id=partner_id,
                amount=earned,
                currency="USD",
                paypal_email=f"{code}@example.com",
                status=Payout.Status.PAID,
                paid_at=now,
            )
    counts = {}
    for name, copier in (
        ("users", users),
        ("partners", profiles),
        ("links", links),
        ("clicks", clicks),
        ("referrals", referrals),
        ("events", events),
        ("payments", payments),
        ("refunds", refunds),
        ("commission_entries", entries),
        ("payouts", payouts),
    ):
        counts[name] = copier.flush()
    return counts


def mismatches() -> int:
    """Partners whose stored commission total or balance differs from an independent GROUP BY
    over the ledger and the payouts (no commission hold in this data set)."""
    q = connection.ops.quote_name
    partner, entry, payout = (q(m._meta.db_table) for m in (Partner, CommissionEntry, Payout))
    statuses = ", ".join(f"'{s}'" for s in Payout.COUNTED_STATUSES)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT COUNT(*) FROM {partner} p
            LEFT JOIN (SELECT partner_id, SUM(amount) AS s FROM {entry} GROUP BY partner_id) e ON e.partner_id = p.id
            LEFT JOIN (SELECT partner_id, SUM(amount) AS s FROM {payout} WHERE status IN ({statuses})
                       GROUP BY partner_id) o ON o.partner_id = p.id
            WHERE p.commission_total <> COALESCE(e.s, 0) OR p.balance <> COALESCE(e.s, 0) - COALESCE(o.s, 0)
            """
        )
        return cursor.fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partners", type=int, default=100_000)
    parser.add_argument("--ledger-every", type=int, default=4, help="Every Nth partner has referrals and payments.")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(20261125)

    started = time.perf_counter()
    counts = populate(args.partners, args.ledger_every, rng)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    load_s = time.perf_counter() - started

    timings = []
    updated = 0
    for _ in range(args.repeat):
        started = time.perf_counter()
        updated = recalculate_all_balances_task()
        timings.append(time.perf_counter() - started)
    bad = mismatches()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {Partner._meta.db_table}")
        total_partners = cursor.fetchone()[0]
    print(
        "BENCH_JSON "
        + json.dumps(
            {
                "partners": total_partners,
                "rows": counts,
                "load_s": round(load_s, 2),
                "recalc_s": [round(t, 3) for t in timings],
                "recalc_median_s": round(statistics.median(timings), 3),
                "rows_updated": updated,
                "mismatches": bad,
            }
        )
    )


if __name__ == "__main__":
    main()
