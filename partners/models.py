from __future__ import annotations

import secrets
from decimal import Decimal

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower

from partners.emails import normalize_email
from partners.validators import no_control_characters, no_control_characters_but_line_breaks

# Referral codes are the default link's code: URL-safe, unguessable, and within the contract's
# `[A-Za-z0-9_-]{3,40}`. 10 characters of a 32-letter alphabet give 50 bits.
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_referral_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, email: str) -> User:
        # Stored emails are normalised (User.save): an exact match on the unique column, never
        # the database's own case-insensitive match, which folds differently (partners/emails.py).
        return self.get(email=normalize_email(email))


class User(AbstractUser):
    """A person who logs in: a partner (with a ``Partner`` profile) or staff. Email is the login."""

    username = None
    email = models.EmailField("email address", unique=True)
    # Set when the partner follows the link sent at sign-up (partners/verification.py); needed
    # before the first withdrawal. Accounts older than the confirmation count as confirmed.
    email_verified_at = models.DateTimeField("email confirmed at", null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            # Emails are stored normalised (NFKC + casefold, partners/emails.py) and looked up
            # exactly; this index stays as a last line of defence against two spellings of one
            # address written around the model.
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)

    @classmethod
    def normalize_username(cls, username: str) -> str:
        # AbstractBaseUser.clean() calls this before a model form checks uniqueness, so the
        # admin finds a second spelling of a taken email as a form error, not an IntegrityError.
        return normalize_email(username)


class Partner(models.Model):
    class Status(models.TextChoices):
        # PARTNER_APPROVAL=manual signs partners up as PENDING; auto (the default) as APPROVED.
        PENDING = "pending", "Application under review"
        APPROVED = "approved", "Approved"
        DECLINED = "declined", "Declined"

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="partner")
    referral_code = models.CharField(max_length=40, unique=True, default=new_referral_code)
    name = models.CharField(max_length=200, validators=[no_control_characters])
    website = models.URLField(max_length=500, blank=True)
    paypal_email = models.EmailField(max_length=254, blank=True)
    billing_name = models.CharField(max_length=200, blank=True, validators=[no_control_characters])
    billing_address = models.TextField(max_length=1000, blank=True, validators=[no_control_characters_but_line_breaks])
    billing_country = models.CharField(max_length=2, blank=True, validators=[no_control_characters])
    tax_id = models.CharField(max_length=50, blank=True, validators=[no_control_characters])
    accepted_terms_at = models.DateTimeField()
    # The program terms version accepted last (the acceptances themselves are TermsAcceptance
    # rows); kept here so every panel page can compare it with the current version without a query.
    accepted_terms_version = models.PositiveIntegerField(null=True, blank=True)
    # Only APPROVED partners' links count clicks; see tracking.linkcache.
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.APPROVED)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        "partners.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Emails the partner chose in Settings (partners/notifications.py); each has an unsubscribe link.
    notify_new_referral = models.BooleanField("a new referral signs up", default=False)
    notify_new_commission = models.BooleanField("a new commission is earned", default=False)
    notify_payout_sent = models.BooleanField("a payout is sent", default=True)
    notify_monthly_statement = models.BooleanField("monthly statement", default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Denormalised for the dashboard; recalculated from the ledger by a Celery task after
    # every money event and hourly. Withdrawals never trust these: they re-read the ledger.
    commission_total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    balance = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    balance_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(Lower("paypal_email"), name="partner_paypal_email_ci")]

    def __str__(self) -> str:
        return f"{self.name} <{self.user.email}>"

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def is_approved(self) -> bool:
        return self.status == self.Status.APPROVED


class ProgramTerms(models.Model):
    """One version of the program terms (Markdown). Versions are never edited once published:
    a change is a new version, which every partner accepts at their next visit."""

    version = models.PositiveIntegerField(unique=True)
    text = models.TextField(help_text="Markdown. Raw HTML is stripped when the terms are shown.")
    summary_of_changes = models.CharField(max_length=300, blank=True)
    published_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey("partners.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-version"]
        verbose_name = "program terms version"
        verbose_name_plural = "program terms"
        constraints = [models.CheckConstraint(condition=models.Q(version__gte=1), name="terms_version_positive")]

    def __str__(self) -> str:
        return f"Terms v{self.version}"


class TermsAcceptance(models.Model):
    """A partner accepted one version of the terms, at this time (append-only)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="terms_acceptances")
    terms = models.ForeignKey(ProgramTerms, on_delete=models.PROTECT, related_name="acceptances")
    accepted_at = models.DateTimeField()

    class Meta:
        ordering = ["-accepted_at"]
        constraints = [
            # Accepting twice (a double submit, a retry) records the first acceptance only.
            models.UniqueConstraint(fields=["partner", "terms"], name="terms_accepted_once")
        ]

    def __str__(self) -> str:
        return f"{self.partner_id} accepted v{self.terms_id}"


class ApiToken(models.Model):
    """A partner's bearer token for the partner JSON API. Only a SHA-256 of the secret is
    stored; the secret is shown once, when created."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to tell tokens apart.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class NotificationCursor(models.Model):
    """How far the new-referral / new-commission emails have read their table (by id): each
    run of ``notify_new_activity_task`` emails what came after and moves the cursor on."""

    name = models.CharField(max_length=40, unique=True)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_id}"
