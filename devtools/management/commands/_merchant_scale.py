"""``loadbench --merchant-scale``: the whole program's data for timing the admin changelists —
10,000 partners (a user, a default link each), 200,000 payouts in every status, 2,000,000
ledger entries, 1,000,000 merchant events — written by set-based SQL (``INSERT … SELECT`` over
``generate_series``) in PostgreSQL itself, so it takes minutes, not hours.

Each partner has ``referrals / partners`` referrals (a click each), the payments are spread over
them (several a month), one in 19 payments is refunded in full (a refund, its event, a reversal),
and every payment and refund is in the ledger: ``ledger`` entries in all. The event log holds a
sign-up event per referral, ``refund`` events one per refund, and payment events for the rest
of ``events``; there are fewer payment events than payments at this scale (the issue's figures),
so payments point at the payment events in turn. Amounts are 25, 50 or 75 and commissions 20 %
of them, exact to the cent, so no rounding happens in SQL. The daily link rollups, the ledger
days and the partners' balances are then computed from the rows written, as the services would
have kept them. PostgreSQL only.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from tracking import monthly


@dataclass(frozen=True)
class MerchantScale:
    partners: int = 10_000
    referrals: int = 200_000
    payouts: int = 200_000
    ledger: int = 2_000_000
    events: int = 1_000_000

    def scaled(self, factor: float) -> MerchantScale:
        def n(value: int) -> int:
            return max(1, round(value * factor))

        return MerchantScale(n(self.partners), n(self.referrals), n(self.payouts), n(self.ledger), n(self.events))

    @property
    def refunds(self) -> int:
        # One payment in 19 is refunded: payments + refunds = ledger.
        return self.ledger // 20

    @property
    def payments(self) -> int:
        return self.ledger - self.refunds

    @property
    def payment_events(self) -> int:
        return max(1, self.events - self.referrals - self.refunds)


def _statements(scale: MerchantScale, run: str) -> list[tuple[str, str]]:
    tz = settings.TIME_ZONE.replace("'", "''")
    rate = settings.COMMISSION_RATE
    p, r = scale.partners, scale.referrals
    day = f"((%s) AT TIME ZONE '{tz}')::date"
    return [
        (
            "users",
            f"""INSERT INTO partners_user (password, is_superuser, first_name, last_name, is_staff, is_active,
                date_joined, email)
            SELECT '!', false, 'Partner', 'M' || g, false, true, now() - (g % 700) * interval '1 day',
                'm-{run}-' || g || '@example.com'
            FROM generate_series(1, {p}) g""",
        ),
        (
            "partners",
            f"""INSERT INTO partners_partner (user_id, referral_code, name, website, paypal_email, billing_name,
                billing_address, billing_country, tax_id, accepted_terms_at, created_at, commission_total, balance,
                status, notify_new_referral, notify_new_commission, notify_payout_sent, notify_monthly_statement)
            SELECT u.id, 'm{run}' || u.id, 'Partner ' || u.last_name, '', 'paypal.' || u.email, '', '', '', '',
                u.date_joined, u.date_joined, 0, 0, 'approved', false, false, true, true
            FROM partners_user u WHERE u.email LIKE 'm-{run}-%'""",
        ),
        (
            "links",
            f"""INSERT INTO tracking_link (partner_id, code, destination, trial_days, description, is_default,
                is_active, created_at)
            SELECT id, referral_code, '', 14, '', true, true, created_at FROM partners_partner
            WHERE referral_code LIKE 'm{run}%'""",
        ),
        (
            "partner map",
            f"""CREATE TEMPORARY TABLE ms_partner ON COMMIT DROP AS
            SELECT row_number() OVER (ORDER BY p.id) - 1 AS k, p.id AS partner_id, l.id AS link_id
            FROM partners_partner p JOIN tracking_link l ON l.code = p.referral_code
            WHERE p.referral_code LIKE 'm{run}%'""",
        ),
        ("partner map index", "CREATE INDEX ON ms_partner (k)"),
        (
            "clicks",
            f"""INSERT INTO tracking_click (id, link_id, visitor_id, created_at, ip_hash, user_agent, referer,
                is_unique)
            SELECT md5('{run}c' || g)::uuid, m.link_id, '{run}v' || g,
                now() - interval '20 days' - ((g * 7919) % 345) * interval '1 day' - (g % 86400) * interval '1 second',
                md5('{run}ip' || g) || md5('{run}ip2' || g), 'Mozilla/5.0', '', true
            FROM generate_series(0, {r - 1}) g JOIN ms_partner m ON m.k = g % {p}""",
        ),
        (
            "referrals",
            f"""INSERT INTO commissions_referral (partner_id, link_id, click_id, customer_id, email,
                is_self_referral, status, signed_up_at, trial_days, trial_ends_at, first_paid_at, cancelled_at,
                plan, seats, total_paid, total_commission)
            SELECT m.partner_id, m.link_id, c.id, 'mcus-{run}-' || g, 'customer.{run}.' || g || '@example.org',
                false, CASE WHEN g % 10 = 0 THEN 'cancelled' ELSE 'paying' END,
                c.created_at + interval '1 hour', 14, c.created_at + interval '14 days 1 hour',
                c.created_at + interval '14 days', CASE WHEN g % 10 = 0 THEN now() - interval '1 day' END,
                'A', 1, 0, 0
            FROM generate_series(0, {r - 1}) g JOIN ms_partner m ON m.k = g % {p}
            JOIN tracking_click c ON c.id = md5('{run}c' || g)::uuid""",
        ),
        (
            "referral map",
            f"""CREATE TEMPORARY TABLE ms_referral ON COMMIT DROP AS
            SELECT row_number() OVER (ORDER BY id) - 1 AS k, id, partner_id, link_id, first_paid_at
            FROM commissions_referral WHERE customer_id LIKE 'mcus-{run}-%'""",
        ),
        ("referral map index", "CREATE INDEX ON ms_referral (k)"),
        (
            "sign-up events",
            f"""INSERT INTO commissions_merchantevent (event_id, type, body, body_sha256, created, received_at,
                outcome, response_status, response_body, referral_id)
            SELECT 'ms_{run}_s' || r.k, 'customer.signed_up',
                '{{"id":"ms_{run}_s' || r.k || '","type":"customer.signed_up"}}', md5(r.k::text) || md5(r.id::text),
                r.first_paid_at - interval '14 days', r.first_paid_at - interval '14 days' + interval '1 second',
                'applied', 201, jsonb_build_object('referral', jsonb_build_object('id', r.id)), r.id
            FROM ms_referral r""",
        ),
        (
            "payment events",
            f"""INSERT INTO commissions_merchantevent (event_id, type, body, body_sha256, created, received_at,
                outcome, response_status, response_body, referral_id)
            SELECT 'ms_{run}_p' || g, 'payment.succeeded',
                '{{"id":"ms_{run}_p' || g || '","type":"payment.succeeded"}}', md5(g::text) || md5('p' || g),
                now() - (g % 300) * interval '1 day', now() - (g % 300) * interval '1 day' + interval '1 second',
                CASE WHEN g % 33 = 0 THEN 'duplicate' WHEN g % 50 = 0 THEN 'not_referred' ELSE 'applied' END,
                CASE WHEN g % 33 = 0 THEN 200 ELSE 201 END, '{{}}'::jsonb, r.id
            FROM generate_series(0, {scale.payment_events - 1}) g JOIN ms_referral r ON r.k = g % {r}""",
        ),
        (
            "payment event map",
            f"""CREATE TEMPORARY TABLE ms_pevent ON COMMIT DROP AS
            SELECT row_number() OVER (ORDER BY id) - 1 AS k, id FROM commissions_merchantevent
            WHERE event_id LIKE 'ms\\_{run}\\_p%'""",
        ),
        ("payment event map index", "CREATE INDEX ON ms_pevent (k)"),
        (
            "payments",
            f"""INSERT INTO commissions_payment (payment_id, referral_id, partner_id, plan, seats, amount, currency,
                paid_at, refunded_amount, event_id)
            SELECT 'mpay-{run}-' || g, r.id, r.partner_id, 'A', 1 + g % 3, 25 * (1 + g % 3), 'USD',
                r.first_paid_at + (now() - r.first_paid_at) * ((g / {r}) % 40) / 40.0, 0, e.id
            FROM generate_series(0, {scale.payments - 1}) g JOIN ms_referral r ON r.k = g % {r}
            JOIN ms_pevent e ON e.k = g % {scale.payment_events}""",
        ),
        (
            "refund events",
            f"""INSERT INTO commissions_merchantevent (event_id, type, body, body_sha256, created, received_at,
                outcome, response_status, response_body, referral_id)
            SELECT 'ms_{run}_r' || g, 'payment.refunded',
                '{{"id":"ms_{run}_r' || g || '","type":"payment.refunded"}}', md5('r' || g) || md5(g::text),
                now() - (g % 200) * interval '1 day', now() - (g % 200) * interval '1 day', 'applied', 201,
                '{{}}'::jsonb, NULL
            FROM generate_series(0, {scale.refunds - 1}) g""",
        ),
        (
            "refunds",
            f"""INSERT INTO commissions_refund (payment_id, amount, refunded_at, event_id)
            SELECT p.id, p.amount, p.paid_at + interval '2 days', e.id
            FROM (SELECT id, amount, paid_at, row_number() OVER (ORDER BY id) - 1 AS k FROM commissions_payment
                  WHERE payment_id LIKE 'mpay-{run}-%' AND paid_at < now() - interval '2 days') p
            JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM commissions_merchantevent
                  WHERE event_id LIKE 'ms\\_{run}\\_r%') e ON e.k = p.k / 19 AND p.k % 19 = 0""",
        ),
        (
            "refunded amounts",
            f"""UPDATE commissions_payment p SET refunded_amount = f.amount FROM commissions_refund f
            WHERE f.payment_id = p.id AND p.payment_id LIKE 'mpay-{run}-%'""",
        ),
        (
            "commissions",
            f"""INSERT INTO commissions_commissionentry (partner_id, referral_id, payment_id, refund_id, kind, amount,
                earned_at, created_at)
            SELECT partner_id, referral_id, id, NULL, 'commission', amount * {rate}, paid_at, paid_at
            FROM commissions_payment WHERE payment_id LIKE 'mpay-{run}-%'""",
        ),
        (
            "reversals",
            f"""INSERT INTO commissions_commissionentry (partner_id, referral_id, payment_id, refund_id, kind, amount,
                earned_at, created_at)
            SELECT p.partner_id, p.referral_id, p.id, f.id, 'reversal', -(p.amount * {rate}), f.refunded_at,
                f.refunded_at
            FROM commissions_refund f JOIN commissions_payment p ON p.id = f.payment_id
            WHERE p.payment_id LIKE 'mpay-{run}-%'""",
        ),
        (
            "referral totals",
            f"""UPDATE commissions_referral r SET total_paid = s.paid, total_commission = s.commission
            FROM (SELECT p.referral_id, SUM(p.amount - p.refunded_amount) AS paid,
                         SUM(p.amount * {rate}) - SUM(CASE WHEN p.refunded_amount > 0 THEN p.amount * {rate} ELSE 0 END)
                         AS commission
                  FROM commissions_payment p WHERE p.payment_id LIKE 'mpay-{run}-%' GROUP BY p.referral_id) s
            WHERE s.referral_id = r.id""",
        ),
        (
            "payouts",
            f"""INSERT INTO payouts_payout (partner_id, amount, currency, method, paypal_email, status, requested_at,
                decided_at, rejection_reason, sent_at, paid_at, paypal_batch_id, paypal_item_id,
                paypal_transaction_id, failure_reason, send_attempts, sender_batch_id, outcome_unknown,
                attention_reason, paypal_item_status)
            SELECT m.partner_id, 50 + (g * 7) % 40, 'USD', 'paypal', 'paypal.m-{run}-' || m.k || '@example.com', s.status,
                now() - ((g / {p}) % 20 * 15 + 1) * interval '1 day' - (g % 86400) * interval '1 second',
                CASE WHEN s.status <> 'pending' THEN now() - ((g / {p}) % 20 * 15) * interval '1 day' END,
                CASE WHEN s.status = 'rejected' THEN 'Not eligible this month.' ELSE '' END,
                CASE WHEN s.status IN ('sent', 'paid', 'failed') THEN now() - ((g / {p}) % 20 * 15) * interval '1 day' END,
                CASE WHEN s.status = 'paid' THEN now() - ((g / {p}) % 20 * 15) * interval '1 day' END,
                CASE WHEN s.status IN ('sent', 'paid', 'failed') THEN 'MSBATCH' || g ELSE '' END,
                CASE WHEN s.status IN ('paid', 'failed') THEN 'MSITEM' || g ELSE '' END,
                CASE WHEN s.status = 'paid' THEN 'MSTX' || g ELSE '' END,
                CASE WHEN s.status = 'failed' THEN 'RECEIVER_UNREGISTERED' ELSE '' END,
                CASE WHEN s.status IN ('sent', 'paid', 'failed') THEN 1 ELSE 0 END,
                'ms-{run}-' || g, s.status IN ('unknown', 'attention'),
                CASE WHEN s.status = 'attention' THEN 'PayPal refused attempt 2 after a lost answer.' ELSE '' END,
                CASE WHEN s.status = 'paid' THEN 'SUCCESS' WHEN s.status = 'failed' THEN 'FAILED' ELSE '' END
            FROM generate_series(0, {scale.payouts - 1}) g JOIN ms_partner m ON m.k = g % {p}
            CROSS JOIN LATERAL (SELECT CASE
                -- The newest payout (g < partners) of three partners in four is still open, in
                -- each open status of the state machine (payouts/states.py).
                WHEN g < {p} AND m.k % 8 < 6
                    THEN (ARRAY['pending', 'approved', 'sending', 'unknown', 'attention', 'sent'])[m.k % 8 + 1]
                WHEN g % 10 = 7 THEN 'rejected'
                WHEN g % 10 = 8 THEN 'failed'
                WHEN g % 20 = 9 THEN 'returned'
                ELSE 'paid' END AS status) s""",
        ),
        (
            "daily link rollups",
            f"""INSERT INTO tracking_dailylinkstats AS d (link_id, partner_id, day, clicks, unique_clicks, new_trials,
                new_subscriptions, commission)
            SELECT link_id, partner_id, day, SUM(clicks), SUM(uniques), SUM(trials), SUM(subs), SUM(commission)
            FROM (
                SELECT m.link_id, m.partner_id, {day % "c.created_at"} AS day, 1 AS clicks, 1 AS uniques, 0 AS trials,
                    0 AS subs, 0 AS commission
                FROM tracking_click c JOIN ms_partner m ON m.link_id = c.link_id
                UNION ALL
                SELECT link_id, partner_id, {day % "first_paid_at - interval '14 days' + interval '1 hour'"}, 0, 0, 1,
                    0, 0 FROM ms_referral
                UNION ALL
                SELECT link_id, partner_id, {day % "first_paid_at"}, 0, 0, 0, 1, 0 FROM ms_referral
                UNION ALL
                SELECT r.link_id, e.partner_id, {day % "e.earned_at"}, 0, 0, 0, 0, e.amount
                FROM commissions_commissionentry e JOIN ms_referral r ON r.id = e.referral_id
            ) AS rows
            GROUP BY 1, 2, 3 ORDER BY 1, 3
            ON CONFLICT (link_id, day) DO UPDATE SET clicks = d.clicks + excluded.clicks,
                unique_clicks = d.unique_clicks + excluded.unique_clicks, new_trials = d.new_trials + excluded.new_trials,
                new_subscriptions = d.new_subscriptions + excluded.new_subscriptions,
                commission = d.commission + excluded.commission""",
        ),
    ]


def load(scale: MerchantScale, run: str, log) -> dict[str, int]:
    """Write the rows (the caller holds a transaction); returns the rows written per table."""
    import time

    if connection.vendor != "postgresql":
        raise RuntimeError("--merchant-scale needs PostgreSQL")
    written: dict[str, int] = {}
    with connection.cursor() as cursor:
        for name, sql in _statements(scale, run):
            started = time.monotonic()
            cursor.execute(sql)
            written[name] = cursor.rowcount
            log(f"  {name}: {max(cursor.rowcount, 0):,} rows in {time.monotonic() - started:.1f} s")
        cursor.execute(f"SELECT id FROM partners_partner WHERE referral_code LIKE 'm{run}%'")
        written["partner_ids"] = [row[0] for row in cursor.fetchall()]
    # The month rows from the daily ones: their row triggers did not fire with triggers off
    # (session_replication_role), and one grouped statement beats a trigger call per row.
    started = time.monotonic()
    monthly.recompute(written["partner_ids"])
    log(f"  monthly link rollups: recomputed in {time.monotonic() - started:.1f} s")
    return written
