from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from partners.models import Partner
from tracking.models import Click, Link, PromoCode


class MerchantEvent(models.Model):
    """Every accepted event from the merchant, stored before it is handled (unique on the
    merchant's id): a replay finds the row and answers with the stored response."""

    class Type(models.TextChoices):
        SIGNED_UP = "customer.signed_up"
        PAYMENT_SUCCEEDED = "payment.succeeded"
        PAYMENT_REFUNDED = "payment.refunded"
        SUBSCRIPTION_CANCELLED = "subscription.cancelled"

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied"
        DUPLICATE = "duplicate", "Already known (no change)"
        NOT_REFERRED = "not_referred", "Not a referral (logged only)"
        # A sign-up naming a click still in the click buffer, and the events of its customer
        # that came meanwhile: applied when the click lands (``AwaitingClick``).
        AWAITING_CLICK = "awaiting_click", "Waiting for its click"

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=40, choices=Type.choices)
    body = models.TextField()
    body_sha256 = models.CharField(max_length=64)
    created = models.DateTimeField(help_text="When it happened, as the merchant says.")
    received_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    # The referral the event was about (set once handled), so a referral's timeline can list
    # its cancellations and every other event without searching raw bodies.
    referral = models.ForeignKey("Referral", null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    # A payment, refund or cancellation of a customer whose sign-up waits for its click: held,
    # and applied in order of arrival once the click lands.
    awaiting = models.ForeignKey(
        "AwaitingClick", null=True, blank=True, on_delete=models.PROTECT, related_name="held_events"
    )

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["type", "received_at"], name="event_type_received"),
            # The admin's event log, newest first (its order is -received_at, -id).
            models.Index(fields=["received_at", "id"], name="event_received_id"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class Referral(models.Model):
    class Status(models.TextChoices):
        TRIAL = "trial", "Trial"
        PAYING = "paying", "Paying"
        CANCELLED = "cancelled", "Cancelled"
        # Set by ``expire_trials_task`` on trials that ended with no payment. Reads never wait
        # for it: an active trial is ``status == trial`` and ``trial_ends_at > now``.
        EXPIRED = "expired", "Trial ended"

    partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="referrals", db_index=False
    )  # an index below starts with it
    link = models.ForeignKey(Link, on_delete=models.PROTECT, related_name="referrals")
    # Null for a sign-up referred by its promo code alone (no click inside the window); its
    # link is then the partner's default link, so the link rollups still count the trial.
    click = models.ForeignKey(Click, null=True, blank=True, on_delete=models.PROTECT, related_name="referrals")
    promo_code = models.ForeignKey(PromoCode, null=True, blank=True, on_delete=models.PROTECT, related_name="referrals")
    customer_id = models.CharField(max_length=255, unique=True)
    email = models.EmailField(max_length=254, blank=True)
    is_self_referral = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRIAL)
    signed_up_at = models.DateTimeField()
    trial_days = models.PositiveSmallIntegerField()
    trial_ends_at = models.DateTimeField()
    first_paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The plan and seats of the latest payment ("now").
    plan = models.CharField(max_length=1, blank=True)
    seats = models.PositiveIntegerField(null=True, blank=True)
    # Denormalised sums, updated in the same transaction as the payment/refund that changes them.
    total_paid = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    total_commission = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    # The click's sub-IDs, for the sub-ID report: copied from the click by the database
    # (commissions/referralsubs.py), never set by the app; "" without a click.
    sub1 = models.CharField(max_length=100, blank=True, default="", db_default="", editable=False)
    sub2 = models.CharField(max_length=100, blank=True, default="", db_default="", editable=False)
    sub3 = models.CharField(max_length=100, blank=True, default="", db_default="", editable=False)

    class Meta:
        ordering = ["-signed_up_at"]
        constraints = [
            models.CheckConstraint(condition=Q(trial_days__in=(14, 30)), name="referral_trial_days_14_or_30"),
            models.CheckConstraint(
                condition=Q(trial_ends_at__gt=F("signed_up_at")), name="referral_trial_after_signup"
            ),
            # A refund never exceeds its payment, and a reversal or a void never takes more than is
            # left of the payment's commission (commissions.money.reversal_for, fraud.services);
            # the Referrals page's sorts by these totals rely on it (amount_sort_keys).
            models.CheckConstraint(condition=Q(total_paid__gte=0), name="referral_total_paid_not_negative"),
            models.CheckConstraint(condition=Q(total_commission__gte=0), name="referral_total_commission_not_negative"),
            # Every referral was brought by something: a click or a promo code.
            models.CheckConstraint(
                condition=Q(click__isnull=False) | Q(promo_code__isnull=False), name="referral_click_or_promo_code"
            ),
        ]
        indexes = [
            models.Index(fields=["partner", "status", "trial_ends_at"], name="referral_partner_status"),
            models.Index(fields=["partner", "-signed_up_at"], name="referral_partner_signed_up"),
        ]

    def __str__(self) -> str:
        return self.customer_id


class Payment(models.Model):
    payment_id = models.CharField(max_length=255, unique=True)
    referral = models.ForeignKey(Referral, on_delete=models.PROTECT, related_name="payments")
    partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="payments", db_index=False
    )  # an index below starts with it
    plan = models.CharField(max_length=1, choices=[("A", "Plan A"), ("B", "Plan B"), ("C", "Plan C")])
    seats = models.PositiveIntegerField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    paid_at = models.DateTimeField()
    refunded_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    event = models.ForeignKey(MerchantEvent, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-paid_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=Q(seats__gte=1), name="payment_seats_positive"),
            # Last line of defence: a refund can never exceed what was paid.
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
                name="payment_refund_within_amount",
            ),
        ]
        indexes = [models.Index(fields=["partner", "-paid_at"], name="payment_partner_paid")]

    def __str__(self) -> str:
        return self.payment_id


class Refund(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    refunded_at = models.DateTimeField()
    event = models.OneToOneField(MerchantEvent, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["refunded_at"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self) -> str:
        return f"{self.payment_id} -{self.amount}"


class CommissionEntry(models.Model):
    """The append-only commission ledger: a commission for each payment, a negative reversal
    for each refund. Corrections are new entries; rows are never edited."""

    class Kind(models.TextChoices):
        COMMISSION = "commission", "Commission"
        REVERSAL = "reversal", "Refund reversal"
        # Staff voided what was left of a commission, with a reason (commissions/fraud/services.py).
        VOID = "void", "Voided by staff"

    partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="commission_entries", db_index=False
    )  # an index below starts with it
    referral = models.ForeignKey(
        Referral, on_delete=models.PROTECT, related_name="commission_entries", db_index=False
    )  # an index below starts with it
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="commission_entries")
    refund = models.OneToOneField(Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="entry")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    # The rate the entry was computed with: the partner's rate in force when the payment happened
    # (0 for a self-referral); a reversal repeats its payment's rate, whatever the rate is today.
    # Required for these two kinds (constraint below); an entry of a kind not computed from a
    # payment at a rate leaves it empty.
    rate = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    # When the commission was earned (the payment's or refund's time): the hold counts from here.
    earned_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-earned_at", "-id"]
        verbose_name_plural = "commission entries"
        constraints = [
            # A payment earns commission once, whatever replays or races the code sees.
            models.UniqueConstraint(
                fields=["payment"], condition=Q(kind="commission"), name="commission_once_per_payment"
            ),
            models.CheckConstraint(
                condition=(Q(kind="commission", amount__gte=0, refund__isnull=True))
                | Q(kind="reversal", amount__lte=0, refund__isnull=False)
                | Q(kind="void", amount__lte=0, refund__isnull=True),
                name="commission_entry_sign_matches_kind",
            ),
            # A commission is voided once (a double click, a retry).
            models.UniqueConstraint(
                fields=["payment"], condition=Q(kind="void"), name="commission_void_once_per_payment"
            ),
            models.CheckConstraint(
                condition=Q(rate__gte=0, rate__lte=1)
                | (Q(rate__isnull=True) & ~Q(kind__in=["commission", "reversal"])),
                name="commission_entry_rate_recorded",
            ),
        ]
        indexes = [
            # The commissions page reads a page of ids from this index alone (ordered by
            # -earned_at, -id, from whichever end is nearer), then joins only those rows.
            models.Index(fields=["partner", "earned_at", "id"], name="commission_partner_earned_id"),
            # The admin's ledger changelist, newest first over every partner.
            models.Index(fields=["earned_at", "id"], name="commission_earned_id"),
            # A partner's reversals and voids alone (a few in a hundred rows): the commissions
            # page reads their fingerprint on every view (commissions/entrystates.py).
            models.Index(
                fields=["partner", "earned_at", "id"], condition=~Q(kind="commission"), name="commission_partner_debits"
            ),
            # A link's commission by sub-ID (tracking/dimensions.py): its referrals' entries in a
            # date range, read from the index alone instead of scanning the partner's ledger.
            models.Index(fields=["referral", "earned_at"], include=["amount"], name="commission_referral_earned"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount}"


class AwaitingClick(models.Model):
    """A sign-up naming a click this server issued (``tracking.ids.issued_here``) that is not in
    the database yet: it waits in a spool file or the Redis stream behind a backlog, or the
    flusher holding it is slow. The sign-up is stored as waiting instead of "not referred"; the
    moment the click lands (the flusher's ``tracking.click_writes.clicks_stored``, a beat sweep as
    the safety net) the referral is made as the sign-up would have made it, and the customer's
    payments, refunds and cancellations that arrived meanwhile (``MerchantEvent.awaiting``) are
    applied in order. The stored answers of all of them are updated, so a replay answers with
    what is true now."""

    click_id = models.UUIDField()
    # One waiting sign-up per customer: the first one in keeps the customer, as with referrals.
    customer_id = models.CharField(max_length=255, unique=True)
    event = models.OneToOneField(MerchantEvent, on_delete=models.PROTECT, related_name="awaiting_signup")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The flusher asks after every batch whether any sign-up waits, and for which clicks.
            models.Index(fields=["click_id"], condition=Q(resolved_at__isnull=True), name="awaiting_click_open"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} awaiting {self.click_id}"


class PartnerRate(models.Model):
    """A partner's own commission rate from a moment on. A change is a new row (the history is
    kept, and commissions already earned keep the rate they were computed with); a payment's
    commission uses the partner's row with the latest ``valid_from`` not after the payment, or
    ``COMMISSION_RATE`` when there is none."""

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="rates", db_index=False)
    rate = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="A fraction of each payment: 0.25 is 25 %.",
    )
    valid_from = models.DateTimeField(help_text="Payments made from this moment on earn at this rate.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["partner", "-valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "valid_from"], name="partner_rate_one_per_moment"),
            models.CheckConstraint(condition=Q(rate__gte=0, rate__lte=1), name="partner_rate_0_to_1"),
        ]

    def __str__(self) -> str:
        return f"{self.rate} from {self.valid_from:%Y-%m-%d %H:%M}"


class LedgerDay(models.Model):
    """The commissions page's totals per partner and program day: the sums of the ledger's rows
    of that day (payments behind its commissions, refunds behind its reversals, the commission,
    the row count), so totals and the page count read a few rows per day instead of the ledger.

    Kept on PostgreSQL by triggers on the ledger (commissions/ledgerdays.py), in the same
    transaction as every entry and without ever waiting for a lock: a day may have a few rows
    (one per events of that partner written at the same moment), to be summed.
    ``rebuild_ledger_days`` recomputes them from the ledger. Not kept on SQLite (demo and tests):
    totals read the ledger.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    payments = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    refunds = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    commission = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    entries = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["partner", "day"], name="ledger_day_partner_day")]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.day}"


class ReferralDay(models.Model):
    """The Referrals page's counts per partner, link, program day of sign-up and stored status,
    so its paginator reads a few rows per day instead of counting every referral.

    Kept on PostgreSQL by triggers on the referrals (commissions/referraldays.py), in the same
    transaction as every sign-up, status change, move or delete, without waiting for a lock (a
    key may have a few rows, to be summed). Not kept on SQLite: the page counts the referrals.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+", db_index=False)
    link = models.ForeignKey(Link, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    status = models.CharField(max_length=10)
    referrals = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["partner", "day"], name="referral_day_partner_day")]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.day} {self.status}"


class ReferralCount(models.Model):
    """The partner's referrals per stored status, for the dashboard's active subscriptions and
    trials (``tracking.reports.partner_summary``): a few rows instead of counting every referral.

    Kept on PostgreSQL by triggers on the referrals (commissions/referraldays.py, beside
    ``ReferralDay``'s), in the same transaction as every sign-up, status change, move or delete,
    without waiting for a lock (a status may have a few rows, to be summed). Not kept on SQLite:
    the summary counts the referrals.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+", db_index=False)
    status = models.CharField(max_length=10)
    referrals = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["partner", "status"], name="referral_count_partner_status")]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.status}: {self.referrals}"
