"""Payout approval in the Django admin: who may act, once, from pending only, with an audit
trail nobody can edit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.admin import site as admin_site
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from commissions.balance import partner_balance, partner_balances_refresh
from payouts.admin import PayoutAdmin
from payouts.models import Payout, PayoutAudit
from payouts.services import PayoutError, PayoutPermissionError, payout_approve, payout_reject, payout_request
from tests.factories import PartnerFactory, PayoutFactory, UserFactory
from tests.payouts.conftest import add_commission, add_refund

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:payouts_payout_changelist")


def _approve_url(payout: Payout) -> str:
    return reverse("admin:payouts_payout_approve", args=[payout.pk])


def _reject_url(payout: Payout) -> str:
    return reverse("admin:payouts_payout_reject", args=[payout.pk])


def _change_url(payout: Payout) -> str:
    return reverse("admin:payouts_payout_change", args=[payout.pk])


@pytest.fixture
def pending(partner_with_balance):
    def make(amount: str = "80.00") -> Payout:
        return payout_request(partner=partner_with_balance(amount))

    return make


def _action(client, action: str, payouts, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [p.pk for p in payouts], **extra}
    return client.post(CHANGELIST, data, follow=True)


# --- approving ------------------------------------------------------------------------------------
def test_approve_and_send_action_approves_with_who_and_when(
    client, pending, payout_staff, fake_paypal, django_capture_on_commit_callbacks
):
    payout = pending()
    client.force_login(payout_staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = _action(client, "approve_and_send", [payout])
    assert "approved" in response.content.decode()
    payout.refresh_from_db()
    assert payout.decided_by == payout_staff
    assert payout.decided_at is not None
    assert payout.status == Payout.Status.PAID  # sent and settled against the fake PayPal
    approved = PayoutAudit.objects.get(payout=payout, action=PayoutAudit.Action.APPROVED)
    assert approved.actor == payout_staff


def test_approving_twice_is_refused(pending, payout_staff, client):
    payout = pending()
    payout_approve(payout_id=payout.pk, actor=payout_staff)
    with pytest.raises(PayoutError) as exc:
        payout_approve(payout_id=payout.pk, actor=payout_staff)
    assert exc.value.code == "not_pending"

    client.force_login(payout_staff)
    response = client.post(_approve_url(payout), follow=True)
    assert "only pending payouts can be approved" in response.content.decode()
    assert PayoutAudit.objects.filter(payout=payout, action=PayoutAudit.Action.APPROVED).count() == 1


def test_a_rejected_payout_cannot_be_approved_and_an_approved_one_cannot_be_rejected(pending, payout_staff):
    rejected, approved = pending(), pending()
    payout_reject(payout_id=rejected.pk, actor=payout_staff, reason="Fraudulent traffic")
    payout_approve(payout_id=approved.pk, actor=payout_staff)
    with pytest.raises(PayoutError):
        payout_approve(payout_id=rejected.pk, actor=payout_staff)
    with pytest.raises(PayoutError):
        payout_reject(payout_id=approved.pk, actor=payout_staff, reason="Changed my mind")


def test_approval_is_refused_when_a_refund_made_the_payout_exceed_what_is_owed(payout_staff):
    partner = PartnerFactory()
    entry = add_commission(partner, "90.00")
    payout = payout_request(partner=partner)
    add_refund(entry, "30.00")
    with pytest.raises(PayoutError) as exc:
        payout_approve(payout_id=payout.pk, actor=payout_staff)
    assert exc.value.code == "exceeds_balance"
    assert "30.00 USD more than the partner is owed" in str(exc.value)
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PENDING


# --- who may act -----------------------------------------------------------------------------------
def test_services_refuse_users_without_the_payout_permission(pending, plain_staff):
    payout = pending()
    partner_user = payout.partner.user
    for user in (plain_staff, partner_user, UserFactory()):
        with pytest.raises(PayoutPermissionError):
            payout_approve(payout_id=payout.pk, actor=user)
        with pytest.raises(PayoutPermissionError):
            payout_reject(payout_id=payout.pk, actor=user, reason="no")
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PENDING


def test_non_staff_cannot_reach_the_admin_or_its_payout_urls(client, pending):
    payout = pending()
    client.force_login(payout.partner.user)
    for response in (
        client.get(CHANGELIST),
        client.post(_approve_url(payout)),
        client.post(_reject_url(payout), {"reason": "x"}),
        _action(client, "approve_and_send", [payout]),
    ):
        assert response.status_code in (200, 302)
        final = response.redirect_chain[-1][0] if getattr(response, "redirect_chain", None) else response["Location"]
        assert reverse("admin:login") in final
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PENDING


def test_staff_without_the_permission_cannot_approve_through_the_url(client, pending, plain_staff):
    payout = pending()
    client.force_login(plain_staff)
    assert client.post(_approve_url(payout)).status_code == 403
    assert client.get(_reject_url(payout)).status_code == 403
    assert client.post(_reject_url(payout), {"reason": "Because"}).status_code == 403
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PENDING
    assert not PayoutAudit.objects.filter(payout=payout).exclude(action=PayoutAudit.Action.REQUESTED).exists()


def test_staff_without_the_permission_do_not_get_the_actions(client, pending, plain_staff):
    payout = pending()
    client.force_login(plain_staff)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "approve_and_send" not in page.content.decode()
    _action(client, "approve_and_send", [payout])
    _action(client, "reject", [payout], apply="1", reason="nope")
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PENDING
    change = client.get(_change_url(payout)).content.decode()
    assert _approve_url(payout) not in change


def test_the_approve_url_accepts_post_only(client, pending, payout_staff):
    payout = pending()
    client.force_login(payout_staff)
    assert client.get(_approve_url(payout)).status_code == 405
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PENDING


# --- rejecting ---------------------------------------------------------------------------------------
def test_reject_action_asks_for_a_reason_first(client, pending, payout_staff):
    payout = pending()
    client.force_login(payout_staff)
    form = _action(client, "reject", [payout])
    assert "payouts/admin/reject.html" in [t.name for t in form.templates]
    empty = _action(client, "reject", [payout], apply="1", reason="   ")
    assert "A reason is required." in empty.content.decode() or "This field is required." in empty.content.decode()
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PENDING


def test_reject_action_with_a_reason_rejects_tells_the_partner_and_returns_the_amount(
    client, pending, payout_staff, mailoutbox, django_capture_on_commit_callbacks
):
    from commissions.balance import partner_balance

    payout = pending("80.00")
    assert partner_balance(partner=payout.partner) == Decimal("0.00")
    client.force_login(payout_staff)
    with django_capture_on_commit_callbacks(execute=True):
        _action(client, "reject", [payout], apply="1", reason="Traffic from a coupon site")
    payout.refresh_from_db()
    assert payout.status == Payout.Status.REJECTED
    assert payout.rejection_reason == "Traffic from a coupon site"
    assert payout.decided_by == payout_staff
    assert partner_balance(partner=payout.partner) == Decimal("80.00")
    [mail] = [m for m in mailoutbox if m.to == [payout.partner.user.email]]
    assert "rejected" in mail.subject and "Traffic from a coupon site" in mail.body
    audit = PayoutAudit.objects.get(payout=payout, action=PayoutAudit.Action.REJECTED)
    assert audit.actor == payout_staff and audit.detail["reason"] == "Traffic from a coupon site"


def test_the_reject_page_of_one_payout_needs_a_reason(client, pending, payout_staff):
    payout = pending()
    client.force_login(payout_staff)
    assert client.get(_reject_url(payout)).status_code == 200
    assert client.post(_reject_url(payout), {"reason": ""}).status_code == 400
    response = client.post(_reject_url(payout), {"reason": "Duplicate account"})
    assert response.status_code == 302
    payout.refresh_from_db()
    assert payout.status == Payout.Status.REJECTED


def test_a_service_reject_without_reason_is_refused(pending, payout_staff):
    payout = pending()
    with pytest.raises(PayoutError) as exc:
        payout_reject(payout_id=payout.pk, actor=payout_staff, reason="  ")
    assert exc.value.code == "reason_required"


# --- what staff see, and what nobody can change -----------------------------------------------------
def test_the_list_shows_partner_amount_balance_check_and_paypal_email(client, pending, payout_staff):
    payout = pending("80.00")
    partner_balances_refresh(partner_ids=[payout.partner_id])
    client.force_login(payout_staff)
    html = client.get(CHANGELIST).content.decode()
    assert payout.partner.name in html
    assert "80.00\u00a0USD" in html  # commissions/display.py's format, never wrapped apart
    assert payout.paypal_email in html
    assert "✓ Matches: owed 80.00" in html


def test_the_balance_check_flags_a_payout_larger_than_what_is_owed(client, payout_staff):
    partner = PartnerFactory()
    entry = add_commission(partner, "90.00")
    payout = payout_request(partner=partner)
    add_refund(entry, "30.00")
    client.force_login(payout_staff)
    # The payout's page recomputes the balance from the ledger at once.
    change = reverse("admin:payouts_payout_change", args=[payout.pk])
    assert "✗ 30.00 more than owed (60.00)" in client.get(change).content.decode()
    # The list reads the maintained balance: once it is refreshed, the same check.
    partner_balances_refresh(partner_ids=[partner.pk])
    assert "✗ 30.00 more than owed (60.00)" in client.get(CHANGELIST).content.decode()


def test_the_lists_maintained_balance_equals_the_ledger_after_each_money_event(client, payout_staff):
    """The list's balance check (Partner.balance) says what the payout's page (the ledger) says,
    once the maintained balance is refreshed as every money event's task does."""
    partner = PartnerFactory()
    entry = add_commission(partner, "90.00")
    add_commission(partner, "15.00")
    payout = payout_request(partner=partner)
    client.force_login(payout_staff)
    change = reverse("admin:payouts_payout_change", args=[payout.pk])
    for event in (lambda: None, lambda: add_refund(entry, "30.00"), lambda: add_commission(partner, "7.00")):
        event()
        partner_balances_refresh(partner_ids=[partner.pk])
        partner.refresh_from_db()
        assert partner.balance == partner_balance(partner=partner)
        ledger = client.get(change).content.decode()
        listed = client.get(CHANGELIST).content.decode()
        expected = PayoutAdmin(Payout, admin_site)._balance_check(payout, partner_balance(partner=partner))[0]
        assert expected in ledger
        assert expected.replace("Ledger balance", "Balance") in listed


def test_the_list_is_filterable_by_status(client, pending, payout_staff):
    first, second = pending(), pending()
    payout_reject(payout_id=second.pk, actor=payout_staff, reason="no")
    client.force_login(payout_staff)
    response = client.get(CHANGELIST, {"status__exact": "pending"})
    assert [p.pk for p in response.context["cl"].result_list] == [first.pk]


def test_the_list_makes_the_same_number_of_queries_for_more_payouts(client, pending, payout_staff):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    pending()
    client.force_login(payout_staff)
    client.get(CHANGELIST)
    with CaptureQueriesContext(connection) as few:
        client.get(CHANGELIST)
    for _ in range(5):
        pending()
    with CaptureQueriesContext(connection) as many:
        client.get(CHANGELIST)
    assert len(many) == len(few)


def test_the_change_page_shows_recent_commissions_and_the_audit_trail(client, pending, payout_staff):
    payout = pending("80.00")
    add_commission(payout.partner, "4.20")
    client.force_login(payout_staff)
    html = client.get(_change_url(payout)).content.decode()
    assert "Partner&#x27;s recent commissions" in html or "Partner's recent commissions" in html
    assert "4.20 USD" in html and "80.00\u00a0USD" in html
    assert "Audit trail" in html and "Requested" in html
    assert _approve_url(payout) in html and _reject_url(payout) in html


def test_amounts_and_statuses_cannot_be_edited_by_hand(client, pending, payout_staff):
    from django.contrib.auth.models import Permission

    payout = pending("80.00")
    payout_staff.user_permissions.add(Permission.objects.get(codename="change_payout"))
    client.force_login(payout_staff)
    response = client.post(_change_url(payout), {"amount": "5000.00", "status": "paid"})
    assert response.status_code == 403
    payout.refresh_from_db()
    assert (payout.amount, payout.status) == (Decimal("80.00"), Payout.Status.PENDING)


def test_the_audit_trail_cannot_be_edited_or_deleted_even_by_a_superuser(client, pending):
    from tests.factories import UserFactory

    payout = pending()
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    audit = PayoutAudit.objects.get(payout=payout)
    change = reverse("admin:payouts_payoutaudit_change", args=[audit.pk])
    delete = reverse("admin:payouts_payoutaudit_delete", args=[audit.pk])
    assert client.get(change).status_code == 200  # readable
    assert client.post(change, {"action": "paid"}).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.post(reverse("admin:payouts_payout_delete", args=[payout.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:payouts_payoutaudit_add")).status_code == 403
    audit.refresh_from_db()
    assert audit.action == PayoutAudit.Action.REQUESTED


def test_audit_entries_cannot_be_changed_or_deleted_through_the_models(pending):
    audit = PayoutAudit.objects.get(payout=pending())
    audit.action = PayoutAudit.Action.PAID
    with pytest.raises(ValueError):
        audit.save()
    with pytest.raises(ValueError):
        audit.delete()
    audit.refresh_from_db()
    assert audit.action == PayoutAudit.Action.REQUESTED


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["status__exact=%00", "q=a%00b", "o=1%00", "st%00atus=pending"])
def test_admin_query_strings_with_nul_are_a_400_not_a_database_error(admin_client, query):
    # PostgreSQL text cannot hold NUL: the admin changelist used to pass it on (a 500).
    response = admin_client.get(f"/admin/payouts/payout/?{query}")
    assert response.status_code == 400
    assert b"NUL" in response.content
    assert admin_client.get("/admin/payouts/payout/?status__exact=pending").status_code == 200


@pytest.mark.django_db
def test_no_one_adds_edits_or_deletes_ledger_payout_or_audit_rows_by_hand(admin_client, pending):
    # Superusers included: these rows are written by the code (config.admin_readonly).
    payout = pending()
    for name in ("payouts_payout", "payouts_payoutaudit", "commissions_commissionentry", "commissions_payment"):
        assert admin_client.get(reverse(f"admin:{name}_add")).status_code == 403, name
    assert (
        admin_client.post(reverse("admin:payouts_payout_delete", args=[payout.pk]), {"post": "yes"}).status_code == 403
    )
    assert Payout.objects.filter(pk=payout.pk).exists()


def test_the_list_opens_on_the_payouts_that_need_a_decision(client, pending, payout_staff):
    waiting = pending("80.00")
    done = PayoutFactory(status=Payout.Status.PAID)
    client.force_login(payout_staff)
    shown = list(client.get(CHANGELIST).context["cl"].result_list)
    assert shown == [waiting]
    everything = client.get(CHANGELIST, {"status": "all"}).context["cl"].result_list
    assert {p.pk for p in everything} == {waiting.pk, done.pk}
    paid = client.get(CHANGELIST, {"status": "paid"}).context["cl"].result_list
    assert [p.pk for p in paid] == [done.pk]


def test_a_payouts_page_does_not_grow_with_the_ledger(client, payout_staff):
    """The payout's page (exact balance check, recent commissions): a fixed number of queries
    however many ledger entries the partner has."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    partner = PartnerFactory()
    entry = add_commission(partner, "90.00")
    payout = payout_request(partner=partner)
    client.force_login(payout_staff)
    urls = [reverse("admin:payouts_payout_change", args=[payout.pk])]

    def counts() -> list[int]:
        result = []
        for url in urls:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200, url
            result.append(len(queries))
        return result

    few = counts()
    for n in range(12):
        add_commission(partner, f"{n + 1}.00")
    add_refund(entry, "5.00")
    assert counts() == few
