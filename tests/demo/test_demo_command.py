"""`manage.py demo`: the data `make demo` serves. One (smaller) demo is loaded for the module."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import call_command
from django.test.utils import override_settings
from django.urls import reverse

from commissions.balance import partner_balance
from commissions.models import CommissionEntry, Referral
from config.celery_app import app as celery_app
from devtools import simulator
from devtools.management.commands import demo
from payouts.models import Payout, PayoutAudit
from tracking import linkcache
from tracking.models import Creative, Link
from tracking.rebuild import rebuild_rollups
from tracking.rollups import program_day, program_today


def _row_counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model._meta.app_label in ("partners", "tracking", "commissions", "payouts")
    }


@pytest.fixture(scope="module")
def loaded(django_db_setup, django_db_blocker, demo_media_root):
    """The demo with a tenth of its traffic (and livelier visitors, so the money still adds up
    to every payout status), committed like the real command does, flushed afterwards."""
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    settings = override_settings(
        MEDIA_ROOT=demo_media_root,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        COMMISSION_RATE=Decimal("0.20"),
        PAYOUT_MINIMUM=Decimal("50.00"),
        COMMISSION_HOLD_DAYS=0,
        ATTRIBUTION_WINDOW_DAYS=90,
        MERCHANT_ALLOWED_HOSTS=("crazycall.com",),
        DEFAULT_LANDING_URL="https://crazycall.com/",
    )
    with pytest.MonkeyPatch.context() as patch, django_db_blocker.unblock(), settings:
        patch.setattr(demo, "VISITORS_PER_DAY", 2.0)
        patch.setattr(simulator, "SIGNUP_RATE", 0.2)
        patch.setattr(simulator, "REFUND_RATE", 0.3)
        linkcache.clear()
        call_command("demo", no_progress=True, stdout=io.StringIO())
        counts = _row_counts()
        call_command("demo", no_progress=True, stdout=io.StringIO())
        yield {"counts_after_first_run": counts, "counts_after_second_run": _row_counts()}
        call_command("flush", interactive=False, verbosity=0)
        linkcache.clear()
    celery_app.conf.task_always_eager = eager


pytestmark = pytest.mark.django_db


def test_running_the_demo_twice_adds_nothing(loaded):
    assert loaded["counts_after_second_run"] == loaded["counts_after_first_run"]
    assert loaded["counts_after_first_run"]["tracking.Click"] > 500


def test_the_admin_can_log_in_to_the_admin(loaded, client):
    response = client.post(reverse("admin:login"), {"username": "admin@example.com", "password": "admin"})
    assert response.status_code == 302
    assert client.get(reverse("admin:payouts_payout_changelist")).status_code == 200


def test_the_demo_partner_can_log_in_and_has_a_paypal_email(loaded, client):
    response = client.post(reverse("partners:login"), {"username": "demo@example.com", "password": "demo"})
    assert response.status_code == 302
    assert client.get(reverse("partners:dashboard")).status_code == 200
    partner = demo.Partner.objects.get(user__email="demo@example.com")
    assert partner.paypal_email
    assert demo.Partner.objects.filter(status="approved").count() == 1 + len(demo.OTHER_PARTNERS)


def test_the_demo_shows_an_application_under_review_and_a_declined_one(loaded, client):
    statuses = dict(
        demo.Partner.objects.filter(user__email__in=[demo.APPLICANT_EMAIL, demo.DECLINED_EMAIL]).values_list(
            "user__email", "status"
        )
    )
    assert statuses == {demo.APPLICANT_EMAIL: "pending", demo.DECLINED_EMAIL: "declined"}
    client.post(reverse("partners:login"), {"username": demo.APPLICANT_EMAIL, "password": demo.OTHER_PARTNER_PASSWORD})
    assert b"under review" in client.get(reverse("partners:application")).content


def test_creatives_of_every_kind_exist_with_real_images(loaded):
    assert set(Creative.objects.values_list("kind", flat=True)) == set(Creative.Kind.values)
    for creative in Creative.objects.filter(kind__in=Creative.IMAGE_KINDS):
        assert creative.image.storage.exists(creative.image.name)
        assert creative.width and creative.height
    sizes = {(c.width, c.height) for c in Creative.objects.filter(kind="banner")}
    assert sizes == {(728, 90), (300, 250)}


def test_the_demo_partner_has_described_links_on_creatives_one_to_pricing_with_30_days(loaded):
    links = Link.objects.filter(partner__user__email="demo@example.com", is_default=False)
    assert links.count() == len(demo.DEMO_PARTNER.links)
    assert not links.filter(description="").exists()
    assert not links.filter(creative=None).exists()
    assert links.filter(destination="https://crazycall.com/pricing", trial_days=30).exists()


def test_the_demo_partner_has_months_of_referrals_in_every_status_and_refunded_commissions(loaded):
    referrals = Referral.objects.filter(partner__user__email="demo@example.com")
    assert {"trial", "paying", "cancelled"} <= set(referrals.values_list("status", flat=True))
    first, last = min(r.signed_up_at for r in referrals), max(r.signed_up_at for r in referrals)
    assert (last - first).days > 120
    entries = CommissionEntry.objects.filter(partner__user__email="demo@example.com")
    assert entries.filter(kind="reversal").exists()


def test_the_demo_partner_has_payouts_in_every_status_and_exactly_one_pending(loaded):
    payouts = Payout.objects.filter(partner__user__email="demo@example.com")
    statuses = list(payouts.values_list("status", flat=True))
    assert statuses.count("paid") >= 2
    assert {"paid", "rejected", "failed", "pending"} <= set(statuses)
    assert statuses.count("pending") == 1
    assert not payouts.filter(status__in=["approved", "sending", "unknown", "attention", "sent"]).exists()
    # History, not work: the periodic job (the demo's poller) has nothing of it to look at again.
    assert not payouts.exclude(next_action_at=None).exists()
    assert payouts.filter(status="paid").exclude(paypal_batch_id="").count() == statuses.count("paid")
    assert payouts.get(status="rejected").rejection_reason
    assert "PayPal" in payouts.get(status="failed").failure_reason


def test_payouts_lie_in_the_past_in_order_and_the_pending_one_can_be_approved(loaded):
    partner = demo.Partner.objects.get(user__email="demo@example.com")
    payouts = list(Payout.objects.filter(partner=partner).order_by("requested_at"))
    assert payouts[-1].status == "pending"
    end = demo.demo_end(partner)
    for payout in payouts:
        assert payout.requested_at < end
        if payout.paid_at:
            assert payout.requested_at < payout.decided_at < payout.sent_at < payout.paid_at
        audit = list(PayoutAudit.objects.filter(payout=payout).order_by("at", "id").values_list("action", flat=True))
        assert audit[0] == "requested"
    # Approval refuses a payout above what the partner is owed; the demo's is within it.
    assert partner_balance(partner=partner) >= 0


def test_the_demo_rollups_equal_a_rebuild(loaded):
    partner = demo.Partner.objects.get(user__email="demo@example.com")
    start = program_day(demo.demo_end(partner)) - timedelta(days=demo.DAYS)
    assert rebuild_rollups(start, program_today(), dry_run=True).ok
