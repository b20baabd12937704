"""Audit: every money-moving action — commission, reversal, payout request, approval,
rejection, PayPal's result — leaves a record that staff can read in the admin and that nobody
can add, change or delete through the app (superusers included)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral, Refund
from payouts.models import Payout, PayoutAudit
from tests.conftest import VerifiedClient
from tests.factories import ClickFactory, LinkFactory, PartnerFactory, UserFactory
from tests.reliability.conftest import paid, post_event, refunded, signed_up

pytestmark = pytest.mark.django_db

A = PayoutAudit.Action


@pytest.fixture
def story(fake_paypal, payout_staff, django_capture_on_commit_callbacks):
    """One partner's money, all of it through the public doors: signed events, the panel's
    withdrawal button, the admin's approve and reject buttons, and (fake) PayPal."""
    partner = PartnerFactory(paypal_email="story@example.com")
    merchant = Client()
    click = ClickFactory(link=LinkFactory(partner=partner))
    assert post_event(merchant, signed_up("cus_story", click.id, event_id="evt_story_signup")).status_code == 201
    for n, amount in enumerate(["400.00", "300.00", "500.00"], start=1):
        assert (
            post_event(merchant, paid(f"pay_story_{n}", "cus_story", amount, event_id=f"evt_story_pay_{n}")).status_code
            == 201
        )
    assert post_event(merchant, refunded("pay_story_1", "100.00", event_id="evt_story_refund")).status_code == 201

    panel = Client()
    panel.force_login(partner.user)
    staff = VerifiedClient()  # passes the payout 2FA gate (issue 22) for staff with a device
    staff.force_login(payout_staff)

    def withdraw() -> Payout:
        with django_capture_on_commit_callbacks(execute=True):
            assert panel.post("/payouts/request/").status_code == 302
        return Payout.objects.filter(partner=partner).latest("pk")

    rejected = withdraw()  # 80 + 60 + 100 − 20 = 220.00
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(f"/admin/payouts/payout/{rejected.pk}/reject/", {"reason": "Please confirm your PayPal email."})
    paid_out = withdraw()
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(f"/admin/payouts/payout/{paid_out.pk}/approve/")
    assert (
        post_event(merchant, paid("pay_story_4", "cus_story", "400.00", event_id="evt_story_pay_4")).status_code == 201
    )
    fake_paypal.script(create=["422"])
    failed = withdraw()
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(f"/admin/payouts/payout/{failed.pk}/approve/")
    for payout in (rejected, paid_out, failed):
        payout.refresh_from_db()
    return {"partner": partner, "staff": payout_staff, "rejected": rejected, "paid": paid_out, "failed": failed}


def _trail(payout: Payout) -> list[tuple[str, str | None]]:
    return [(audit.action, audit.actor.email if audit.actor else None) for audit in payout.audit.order_by("at", "id")]


def test_every_money_moving_action_leaves_a_record(story, tried):
    partner, staff = story["partner"], story["staff"]
    tried("5 events, 3 withdrawals, 3 staff decisions, 2 PayPal batches")
    # Commissions and the reversal: ledger rows, each tied to the stored merchant event.
    entries = CommissionEntry.objects.filter(partner=partner).select_related("payment", "refund")
    assert sorted((e.kind, e.amount) for e in entries) == [
        ("commission", Decimal("60.00")),
        ("commission", Decimal("80.00")),
        ("commission", Decimal("80.00")),
        ("commission", Decimal("100.00")),
        ("reversal", Decimal("-20.00")),
    ]
    events = {e.event_id: e for e in MerchantEvent.objects.all()}
    for entry in entries:
        source = entry.refund.event if entry.refund else entry.payment.event
        assert events[source.event_id].outcome == MerchantEvent.Outcome.APPLIED
    assert len(events) == 6
    # Payouts: who did what, when, and what PayPal said.
    assert story["rejected"].status == Payout.Status.REJECTED
    assert _trail(story["rejected"]) == [(A.REQUESTED, partner.user.email), (A.REJECTED, staff.email)]
    assert story["rejected"].audit.get(action=A.REJECTED).detail["reason"] == "Please confirm your PayPal email."
    assert story["paid"].status == Payout.Status.PAID
    assert _trail(story["paid"]) == [
        (A.REQUESTED, partner.user.email),
        (A.APPROVED, staff.email),
        (A.SENDING, None),
        (A.SENT, None),
        (A.PAID, None),
    ]
    assert story["paid"].audit.get(action=A.PAID).detail["batch_id"] == story["paid"].paypal_batch_id
    assert story["failed"].status == Payout.Status.FAILED
    assert _trail(story["failed"]) == [
        (A.REQUESTED, partner.user.email),
        (A.APPROVED, staff.email),
        (A.SENDING, None),
        (A.FAILED, None),
    ]
    assert (
        "Sender does not have sufficient funds" in story["failed"].audit.get(action=A.FAILED).detail["error"]["message"]
    )


def test_staff_read_every_record_in_the_admin(story, support_staff, tried):
    client = Client()
    client.force_login(support_staff)
    pages = {
        "/admin/commissions/merchantevent/": ["evt_story_signup", "evt_story_pay_1", "evt_story_refund"],
        "/admin/commissions/commissionentry/": ["pay_story_1", "-20.00", "100.00"],
        "/admin/commissions/refund/": ["pay_story_1", "100.00"],
        "/admin/payouts/payoutaudit/": ["Requested", "Approved", "Rejected", "Sent to PayPal", "Paid", "Failed"],
        reverse("admin:payouts_payout_change", args=[story["paid"].pk]): [
            story["paid"].paypal_batch_id,
            "Audit trail",
            "Paid",
        ],
        reverse("admin:payouts_payout_change", args=[story["rejected"].pk]): ["Please confirm your PayPal email."],
        reverse("admin:payouts_payout_change", args=[story["failed"].pk]): ["Sender does not have sufficient funds"],
    }
    missing = []
    for path, expected in pages.items():
        response = client.get(path)
        assert response.status_code == 200, path
        text = response.content.decode()
        missing += [f"{path}: {needle}" for needle in expected if needle not in text]
    tried(f"{len(pages)} admin pages as staff without the payout permission")
    assert missing == []


_AUDIT_MODELS = [MerchantEvent, CommissionEntry, Payment, Refund, Referral, PayoutAudit]


def _urls(model, obj) -> dict[str, str]:
    opts = model._meta
    base = f"admin:{opts.app_label}_{opts.model_name}"
    return {
        "add": reverse(f"{base}_add"),
        "change": reverse(f"{base}_change", args=[obj.pk]),
        "delete": reverse(f"{base}_delete", args=[obj.pk]),
        "changelist": reverse(f"{base}_changelist"),
    }


def _snapshot() -> dict:
    return {model.__name__: list(model._default_manager.order_by("pk").values()) for model in [*_AUDIT_MODELS, Payout]}


def test_no_one_can_add_change_or_delete_audit_records_in_the_admin_not_even_a_superuser(story, tried):
    superuser = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    everything = UserFactory(email="allperms@example.com", is_staff=True)
    everything.user_permissions.add(*Permission.objects.all())
    before = _snapshot()
    refusals = []
    sent = 0
    for user in (superuser, everything):
        client = Client()
        client.force_login(user)
        for model in [*_AUDIT_MODELS, Payout]:
            obj = model._default_manager.order_by("pk").first()
            urls = _urls(model, obj)
            attempts = {
                "GET add": client.get(urls["add"]),
                "POST add": client.post(urls["add"], {"amount": "1000.00"}),
                "POST change": client.post(urls["change"], {"amount": "1000.00", "status": "paid", "detail": "{}"}),
                "GET delete": client.get(urls["delete"]),
                "POST delete": client.post(urls["delete"], {"post": "yes"}),
                "bulk delete": client.post(
                    urls["changelist"], {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
                ),
            }
            sent += len(attempts)
            for what, response in attempts.items():
                allowed = response.status_code == 403 or (
                    # The bulk action is not offered: the list answers "No action selected".
                    what == "bulk delete" and response.status_code in (200, 302)
                )
                if not allowed:
                    refusals.append(f"{user.email} {model.__name__} {what}: {response.status_code}")
            page = client.get(urls["change"]).content.decode()
            assert 'name="_save"' not in page, f"{model.__name__} change page offers Save"
            assert "deletelink" not in page, f"{model.__name__} change page offers Delete"
    tried(f"{sent} add/change/delete attempts on {len(_AUDIT_MODELS) + 1} models")
    assert refusals == []
    assert _snapshot() == before


def test_partners_have_no_route_to_the_audit_records(story, tried):
    client = Client()
    client.force_login(story["partner"].user)
    answers = {
        model.__name__: client.get(_urls(model, model.objects.first())["changelist"]).status_code
        for model in _AUDIT_MODELS
    }
    tried(f"{len(answers)} admin lists as a partner")
    assert set(answers.values()) == {302}  # to the admin login
