"""``manage.py demo``: the data `make demo` shows — six months of a partner program.

Creates the admin and the demo partner (plus a few other partners), creatives with real images,
the demo partner's campaign links, then plays six months of the merchant through the simulator
(real redirects, real signed events) and, along the way, the demo partner's withdrawals in every
status through the payout services and a local fake PayPal. Idempotent: a second run finds
everything in place and adds nothing.

The demo's "today" is pinned to the day the demo partner joined plus ``JOINED_DAYS_BEFORE_END``
(the partner is backdated on first run), so a re-run on a later day computes the same plan,
the same ids and the same moments, and finds them all already recorded.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings

from devtools.demo_assets import DEMO_IMAGES
from devtools.simulator import (
    Event,
    MerchantSimulator,
    Plan,
    Summary,
    build_plan,
    partner_event_prefix,
    partners_from_db,
    quiet_logger,
)
from partners.models import Partner, User

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "admin"
DEMO_EMAIL, DEMO_PASSWORD = "demo@example.com", "demo"
OTHER_PARTNER_PASSWORD = "partner"
SEED = 2018
DAYS = 180
VISITORS_PER_DAY = 11.0
JOINED_DAYS_BEFORE_END = 200


@dataclass(frozen=True)
class LinkSpec:
    description: str
    path: str  # on the merchant's first allowed host
    trial_days: int
    creative: str  # a CreativeSpec title
    code: str


@dataclass(frozen=True)
class PartnerSpec:
    email: str
    password: str
    name: str
    website: str
    traffic: float
    paypal_email: str = ""
    billing: dict[str, str] = field(default_factory=dict)
    links: tuple[LinkSpec, ...] = ()


@dataclass(frozen=True)
class CreativeSpec:
    kind: str
    title: str
    text: str = ""
    image: str = ""  # a DEMO_IMAGES filename


READY_TEXT_SHORT = (
    "Running a sales or support team? CrazyCall is the cloud call center that dials for you: power dialer, "
    "call recording and live reports, set up in minutes from your browser. Try it free for 14 days."
)
READY_TEXT_NEWSLETTER = (
    "Tool of the week: CrazyCall. Our team replaced three tools with it: a power dialer that skips busy "
    "signals and voicemail, every call recorded and searchable, and a live dashboard of who is talking to whom. "
    "Plans start at $25 per seat a month, and you can try it free first."
)

CREATIVES: tuple[CreativeSpec, ...] = (
    CreativeSpec("link", "Plain text link"),
    *(CreativeSpec(image.kind, image.title, image=image.filename) for image in DEMO_IMAGES),
    CreativeSpec("text", "Ready text: short intro", text=READY_TEXT_SHORT),
    CreativeSpec("text", "Ready text: newsletter blurb", text=READY_TEXT_NEWSLETTER),
)

DEMO_PARTNER = PartnerSpec(
    email=DEMO_EMAIL,
    password=DEMO_PASSWORD,
    name="Alex Morgan",
    website="https://callcenterinsider.example.net/",
    traffic=1.0,
    paypal_email="alex.morgan.payouts@example.com",
    billing={
        "billing_name": "Call Center Insider Ltd",
        "billing_address": "12 Harbour Street\nBristol BS1 4XX",
        "billing_country": "GB",
        "tax_id": "GB123456789",
    },
    links=(
        LinkSpec("Blog review — pricing page", "/pricing", 30, "Leaderboard banner 728×90", "cci-pricing-review"),
        LinkSpec("YouTube description", "/", 14, "Plain text link", "cci-youtube"),
        LinkSpec("Newsletter March", "/features/power-dialer", 14, "Ready text: newsletter blurb", "cci-newsletter"),
        LinkSpec("Sidebar banner — call center guide", "/", 14, "Rectangle banner 300×250", "cci-sidebar"),
        LinkSpec("Comparison article — screenshot", "/features", 30, "Agent console screenshot", "cci-comparison"),
        LinkSpec("Tools we use page — logo", "/", 14, "CrazyCall logo", "cci-logo"),
    ),
)

OTHER_PARTNERS: tuple[PartnerSpec, ...] = (
    PartnerSpec(
        email="priya@example.com",
        password=OTHER_PARTNER_PASSWORD,
        name="Priya Shah",
        website="https://salesopsweekly.example.org/",
        traffic=0.3,
        paypal_email="priya.shah@example.org",
        links=(
            LinkSpec("Sales tools roundup", "/features", 30, "Rectangle banner 300×250", "sow-roundup"),
            LinkSpec("Newsletter — April issue", "/pricing", 14, "Ready text: short intro", "sow-newsletter"),
        ),
    ),
    PartnerSpec(
        email="marco@example.com",
        password=OTHER_PARTNER_PASSWORD,
        name="Marco Bianchi",
        website="https://marcotalks.example.com/",
        traffic=0.2,
        paypal_email="marco.bianchi@example.com",
        links=(LinkSpec("YouTube — dialer tutorial", "/features/power-dialer", 14, "Plain text link", "marco-yt"),),
    ),
    PartnerSpec(
        email="lena@example.com",
        password=OTHER_PARTNER_PASSWORD,
        name="Lena Fischer",
        website="https://remotesupport.example.net/",
        traffic=0.12,
        paypal_email="lena.fischer@example.net",
    ),
    PartnerSpec(
        email="tom@example.com",
        password=OTHER_PARTNER_PASSWORD,
        name="Tom Okafor",
        website="https://startuppodcast.example.org/",
        traffic=0.1,
        links=(LinkSpec("Podcast show notes", "/", 30, "Plain text link", "tom-podcast"),),
    ),
)


@dataclass(frozen=True)
class PayoutOutcome:
    days_before_end: int  # when the partner asks; below the minimum that day, again a week later
    status: str  # paid, rejected, failed
    reason: str = ""
    # Optional withdrawals are dropped when a week late; the others wait for the money (so the
    # history always shows every status, whatever the dates do to the traffic).
    optional: bool = False


# The demo partner's withdrawal history, in order; the pending request comes last (see
# _pending_moment).
PAYOUT_OUTCOMES: tuple[PayoutOutcome, ...] = (
    PayoutOutcome(150, "paid"),
    PayoutOutcome(120, "paid", optional=True),
    PayoutOutcome(
        91,
        "rejected",
        "Part of this traffic came from ads bidding on the CrazyCall brand name, which section 4.2 of the "
        "program terms does not allow. Please pause those ads; the amount is back in your balance.",
    ),
    PayoutOutcome(84, "failed"),  # a mistyped PayPal email: PayPal cannot deliver, the money comes back
    PayoutOutcome(77, "paid"),
    PayoutOutcome(49, "paid", optional=True),
    PayoutOutcome(21, "paid", optional=True),
)
RETRY_AFTER = timedelta(days=7)
# Partners ask in the morning; staff decide the next day (see backdate_payout).
PAYOUT_TIME_OF_DAY = timedelta(hours=9, minutes=41)
MISTYPED_PAYPAL_EMAIL = "alex.morgan.payouts@exmaple.com"


class Command(BaseCommand):
    help = (
        "Load the demo: admin (admin@example.com / admin), demo partner (demo@example.com / demo), other "
        "partners, creatives, links, six months of simulated traffic and payouts in every status. Idempotent."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        admin = ensure_admin()
        creatives = ensure_creatives()
        ensure_terms()
        demo = ensure_partner(DEMO_PARTNER, creatives)
        for spec in OTHER_PARTNERS:
            ensure_partner(spec, creatives)
        ensure_applications(admin)
        self.stdout.write(f"Accounts, {len(creatives)} creatives and links ready.")

        result = load_history(demo=demo, admin=admin, progress=not options["no_progress"])
        if result.summary is not None:
            for line in result.summary.lines():
                self.stdout.write(line)
        else:
            self.stdout.write(f"Six months of demo traffic already loaded (run {result.plan.run_key}).")
        finish()
        self.stdout.write(self.style.SUCCESS(f"Demo ready in {time.monotonic() - started:.0f} s."))
        self.stdout.write(f"  Admin:        {ADMIN_EMAIL} / {ADMIN_PASSWORD}   (approve the pending payout)")
        self.stdout.write(f"  Demo partner: {DEMO_EMAIL} / {DEMO_PASSWORD}")
        others = ", ".join(spec.email for spec in OTHER_PARTNERS)
        self.stdout.write(f"  Other partners ({others}) use the password '{OTHER_PARTNER_PASSWORD}'.")
        self.stdout.write(
            f"  Applications: {APPLICANT_EMAIL} (under review) and {DECLINED_EMAIL} (declined), password "
            f"'{OTHER_PARTNER_PASSWORD}'. Staff set up two-factor (a QR code) before approving a payout."
        )


# --- Accounts, creatives, links -------------------------------------------------------------

APPLICANT_EMAIL = "applicant@example.com"
DECLINED_EMAIL = "declined@example.com"
DEMO_TERMS = """# Partner program terms

1. **Commission.** You earn the program's commission on every payment of the customers you refer, for as long as they keep paying. Refunds reverse the commission they paid.
2. **Honest promotion.** No self-referrals, no paid search on our brand, no cookie stuffing, no spam. Commissions earned against these terms are voided.
3. **Payouts.** You can withdraw your balance through PayPal once it reaches the payout minimum. Payouts are reviewed before they are sent.
4. **Changes.** When these terms change, you accept the new version before your next withdrawal.
"""


def ensure_terms() -> None:
    """The program terms, version 1 (the demo shows the page and the acceptance record)."""
    from partners.models import ProgramTerms
    from partners.services import terms_publish

    if not ProgramTerms.objects.exists():
        terms_publish(text=DEMO_TERMS, summary_of_changes="First version")


def ensure_applications(admin: User) -> None:
    """One partner whose application is under review and one declined (PARTNER_APPROVAL=manual's
    two outcomes), whatever PARTNER_APPROVAL the demo runs with."""
    from partners.services import partner_signup

    for email, name, status in (
        (APPLICANT_EMAIL, "Avery Applicant", Partner.Status.PENDING),
        (DECLINED_EMAIL, "Dana Declined", Partner.Status.DECLINED),
    ):
        partner = Partner.objects.filter(user__email__iexact=email).first()
        if partner is None:
            partner = partner_signup(
                email=email, password=OTHER_PARTNER_PASSWORD, name=name, website="https://example.org/blog"
            )
        if partner.status != status:
            changed_by = admin if status == Partner.Status.DECLINED else None
            Partner.objects.filter(pk=partner.pk).update(status=status, status_changed_by=changed_by)


def ensure_admin() -> User:
    user = User.objects.filter(email__iexact=ADMIN_EMAIL).first()
    if user is None:
        user = User.objects.create_superuser(email=ADMIN_EMAIL, password=ADMIN_PASSWORD, first_name="Admin")
    elif not (user.is_staff and user.is_superuser and user.is_active):
        user.is_staff = user.is_superuser = user.is_active = True
        user.save(update_fields=["is_staff", "is_superuser", "is_active"])
    return user


def ensure_creatives() -> dict[str, object]:
    from tracking.models import Creative

    images = {image.filename: image for image in DEMO_IMAGES}
    joined = _demo_end_estimate() - timedelta(days=JOINED_DAYS_BEFORE_END + 10)
    creatives = {}
    for spec in CREATIVES:
        creative, created = Creative.objects.get_or_create(
            kind=spec.kind, title=spec.title, defaults={"text": spec.text, "is_active": True}
        )
        if created:
            Creative.objects.filter(pk=creative.pk).update(created_at=joined)
        if spec.image and not (creative.image and creative.image.storage.exists(creative.image.name)):
            # Drawn by the project (devtools/demo_assets.py) and stored through the model's
            # ImageField, so width/height are filled and the file lands in MEDIA_ROOT.
            creative.image.save(spec.image, ContentFile(images[spec.image].draw()), save=True)
        creatives[spec.title] = creative
    return creatives


def _demo_end_estimate() -> datetime:
    """The demo's end before the demo partner exists: the start of today."""
    from tracking.rollups import day_start, program_today

    return day_start(program_today())


def ensure_partner(spec: PartnerSpec, creatives: dict[str, object]) -> Partner:
    from partners.services import partner_set_paypal_email, partner_signup, partner_update_profile
    from tracking.models import Link
    from tracking.services import LinkError, link_create

    partner = Partner.objects.select_related("user").filter(user__email__iexact=spec.email).first()
    if partner is None:
        partner = partner_signup(
            email=spec.email, password=spec.password, name=spec.name, website=spec.website, email_confirmed=True
        )
        if spec.billing:
            partner_update_profile(partner=partner, **spec.billing)
        if spec.paypal_email:
            partner_set_paypal_email(partner=partner, paypal_email=spec.paypal_email)
        # Backdated: the partner joined before the six simulated months.
        joined = _demo_end_estimate() - timedelta(days=JOINED_DAYS_BEFORE_END) + timedelta(hours=9)
        User.objects.filter(pk=partner.user_id).update(date_joined=joined)
        Partner.objects.filter(pk=partner.pk).update(created_at=joined, accepted_terms_at=joined)
        Link.objects.filter(partner=partner, is_default=True).update(created_at=joined)
        partner.refresh_from_db()

    host = settings.MERCHANT_ALLOWED_HOSTS[0]
    for index, link_spec in enumerate(spec.links):
        if Link.objects.filter(partner=partner, description=link_spec.description).exists():
            continue
        fields = {
            "partner": partner,
            "destination": f"https://{host}{link_spec.path}",
            "trial_days": link_spec.trial_days,
            "description": link_spec.description,
            "creative": creatives.get(link_spec.creative),
        }
        try:
            link = link_create(code=link_spec.code, **fields)
        except LinkError:
            link = link_create(**fields)  # the chosen code is taken: a generated one
        Link.objects.filter(pk=link.pk).update(created_at=partner.created_at + timedelta(days=2 + index * 3))
    return partner


# --- Six months of traffic and the payout history ------------------------------------------


def demo_end(demo: Partner) -> datetime:
    """The demo's "today": fixed by when the demo partner joined, so re-runs replay the same plan."""
    from tracking.rollups import day_start, program_day

    return day_start(program_day(demo.created_at) + timedelta(days=JOINED_DAYS_BEFORE_END))


def demo_plan(demo: Partner) -> Plan:
    traffic = {spec.email: spec.traffic for spec in (DEMO_PARTNER, *OTHER_PARTNERS)}
    emails = list(traffic)
    return build_plan(
        partners=partners_from_db(emails, traffic=traffic),
        seed=SEED,
        days=DAYS,
        end=demo_end(demo),
        visitors_per_day=VISITORS_PER_DAY,
        currency=settings.PROGRAM_CURRENCY,
    )


@dataclass
class LoadResult:
    plan: Plan
    summary: Summary | None  # None: everything was already loaded


def _pending_moment(plan: Plan, demo: Partner) -> datetime:
    """When the demo partner asks for the withdrawal that is left pending: three days before the
    end, or after the partner's last refund if that is later, so that what follows the request
    only adds commission and the balance after it never goes negative (the admin can approve it)."""
    prefix = partner_event_prefix(plan, demo.user.email)
    refunds = [
        a.moment
        for a in plan.actions
        if isinstance(a, Event) and a.type == "payment.refunded" and a.event_id.startswith(prefix)
    ]
    moment = plan.end - timedelta(days=3) + PAYOUT_TIME_OF_DAY
    if refunds and refunds[-1] >= moment:
        moment = refunds[-1] + timedelta(minutes=30)
    return min(moment, plan.end - timedelta(minutes=1))


def load_history(*, demo: Partner, admin: User, progress: bool = False) -> LoadResult:
    from commissions.models import MerchantEvent

    plan = demo_plan(demo)
    pending_at = _pending_moment(plan, demo)
    events = [a for a in plan.actions if isinstance(a, Event)]
    # Loaded when the plan's last event is in. An interrupted load is resumed (what is in is
    # replayed without change). Data loaded by an earlier version of the simulator (another
    # run key) counts as loaded too: a second six months would double it.
    events_of_run = MerchantEvent.objects.filter(event_id__startswith=f"sim{plan.run_key}_")
    complete = bool(events) and events_of_run.filter(event_id=events[-1].event_id).exists()
    loaded_by_older_version = demo.referrals.exists() and demo.payouts.exists() and not events_of_run.exists()
    if complete or loaded_by_older_version:
        return LoadResult(plan, None)

    history = PayoutHistory(demo=demo, admin=admin)
    # A withdrawal below the payout minimum is not made that day: the partner tries again a
    # week later (see PayoutOutcome.optional), until ten days before the end.
    attempts = {
        history.due(outcome) + k * RETRY_AFTER
        for outcome in PAYOUT_OUTCOMES
        for k in range(DAYS // RETRY_AFTER.days)
        if history.due(outcome) + k * RETRY_AFTER < plan.end - timedelta(days=10)
    }
    hooks: list[tuple[datetime, Callable[[datetime], None]]] = [(moment, history.withdraw) for moment in attempts]
    hooks.append((pending_at, history.pending))
    # Below the minimum at that moment (a quiet fortnight): the partner asks on the last evening.
    hooks.append((plan.end - timedelta(minutes=1), history.pending))
    simulator = MerchantSimulator(progress=progress)
    # Eager Celery connects its in-memory broker once, with a harmless warning about it.
    with history.paypal(), override_settings(CLICK_BUFFER=False), quiet_logger("kombu.connection"):
        summary = simulator.run(plan, hooks=hooks)
    return LoadResult(plan, summary)


class PayoutHistory:
    """The demo partner's withdrawals, made at their moment of the simulation (so each one pays
    out the balance of that day) through the real services: request, then approve (the send and
    poll tasks run in-process against a local fake PayPal) or reject. Afterwards each payout and
    its audit trail are moved to that moment, the one field the services cannot set."""

    def __init__(self, *, demo: Partner, admin: User) -> None:
        from payouts.models import Payout

        self.demo = demo
        self.admin = admin
        self.fake = None
        self.end = demo_end(demo)
        # Resuming an interrupted load: outcomes due before the last one written are not
        # written again.
        last = (
            Payout.objects.filter(partner=demo)
            .exclude(status=Payout.Status.PENDING)
            .order_by("-requested_at")
            .values_list("requested_at", flat=True)
            .first()
        )
        self.outcomes = deque(o for o in PAYOUT_OUTCOMES if last is None or self.due(o) > last)

    def due(self, outcome: PayoutOutcome) -> datetime:
        return self.end - timedelta(days=outcome.days_before_end) + PAYOUT_TIME_OF_DAY

    def paypal(self):
        """A local fake PayPal for the history only; historical notifications go to memory
        (they are about the past: nobody is to be emailed now)."""
        from contextlib import contextmanager

        from devtools.fake_paypal import FakePayPal

        @contextmanager
        def running():
            # Throwaway credentials: this fake lives only while the history is written.
            client_id, secret = "demo-history", secrets.token_urlsafe(16)
            self.fake = FakePayPal(client_id=client_id, client_secret=secret, settle_after=0.0)
            base = self.fake.start()
            try:
                with override_settings(
                    PAYPAL_API_BASE=base,
                    PAYPAL_CLIENT_ID=client_id,
                    PAYPAL_CLIENT_SECRET=secret,
                    EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
                ):
                    yield
            finally:
                self.fake.stop()
                self.fake = None

        return running()

    def _done(self, moment: datetime) -> bool:
        from payouts.models import Payout

        return Payout.objects.filter(partner=self.demo, requested_at=moment).exists()

    def _request(self):
        from payouts.services import PayoutError, payout_request

        try:
            return payout_request(partner=self.demo)
        except PayoutError:
            return None  # below the minimum on that day: the partner tries again later

    def withdraw(self, moment: datetime) -> None:
        """The next withdrawal of the history, if there is one left and the balance allows it."""
        from partners.services import partner_set_paypal_email
        from payouts.services import payout_approve, payout_reject

        if self._done(moment):
            return
        while self.outcomes and self.outcomes[0].optional and moment > self.due(self.outcomes[0]) + RETRY_AFTER:
            self.outcomes.popleft()
        if not self.outcomes or moment < self.due(self.outcomes[0]):
            return
        outcome = self.outcomes[0]
        if outcome.status == "failed":
            # The partner mistyped the PayPal email; PayPal cannot deliver and the money comes
            # back. The partner then corrects it.
            partner_set_paypal_email(partner=self.demo, paypal_email=MISTYPED_PAYPAL_EMAIL)
            self.fake.deny_receivers({MISTYPED_PAYPAL_EMAIL}, status="FAILED")
        try:
            payout = self._request()
            if payout is None:
                return
            if outcome.status == "rejected":
                payout_reject(payout_id=payout.pk, actor=self.admin, reason=outcome.reason)
            else:
                payout_approve(payout_id=payout.pk, actor=self.admin)
        finally:
            if outcome.status == "failed":
                partner_set_paypal_email(partner=self.demo, paypal_email=DEMO_PARTNER.paypal_email)
        self.outcomes.popleft()
        backdate_payout(payout.pk, requested_at=moment, decided_at=moment + timedelta(hours=20))

    def pending(self, moment: datetime) -> None:
        from payouts.models import Payout

        if Payout.objects.filter(partner=self.demo, status=Payout.Status.PENDING).exists():
            return
        payout = self._request()
        if payout is not None:
            backdate_payout(payout.pk, requested_at=moment, decided_at=None)


@transaction.atomic
def backdate_payout(payout_id: int, *, requested_at: datetime, decided_at: datetime | None) -> None:
    """Move a payout made "now" by the services, and its audit trail, to its demo moment,
    keeping the order of its steps."""
    from payouts.models import Payout, PayoutAudit

    payout = Payout.objects.select_for_update().get(pk=payout_id)
    sent_at = decided_at + timedelta(minutes=2) if decided_at else None
    settled_at = decided_at + timedelta(minutes=7) if decided_at else None
    # A past payout is settled history: the periodic job has nothing to look at again.
    updates: dict[str, datetime | None] = {"requested_at": requested_at, "next_action_at": None}
    if payout.decided_at and decided_at:
        updates["decided_at"] = decided_at
    if payout.sent_at and sent_at:
        updates["sent_at"] = sent_at
    if payout.paid_at and settled_at:
        updates["paid_at"] = settled_at
    Payout.objects.filter(pk=payout_id).update(**updates)
    moments = {
        PayoutAudit.Action.REQUESTED: requested_at,
        PayoutAudit.Action.APPROVED: decided_at,
        PayoutAudit.Action.REJECTED: decided_at,
        PayoutAudit.Action.SENDING: sent_at,
        PayoutAudit.Action.SENT: sent_at,
        PayoutAudit.Action.PAID: settled_at,
        PayoutAudit.Action.FAILED: settled_at,
    }
    for action, at in moments.items():
        if at is not None:
            PayoutAudit.objects.filter(payout_id=payout_id, action=action).update(at=at)


def finish() -> None:
    """Statuses and denormalised figures the periodic tasks would keep current."""
    from commissions.services import partner_balances_recalculate, referrals_expire_trials

    referrals_expire_trials()
    partner_balances_recalculate()
