"""The event log and the ledger in the admin: browsable, never editable."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from commissions.models import CommissionEntry, MerchantEvent, Payment, Referral, Refund
from tests.commissions.conftest import paid, refunded, signed_up
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MODELS = [MerchantEvent, Referral, Payment, Refund, CommissionEntry]


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def history(send, referral_of):
    referral_of("cus_1", email="jane@example.com")
    send(paid("pay_1", "cus_1", "49.00"))
    send(refunded("pay_1", "10.00"))


def _url(model, action, *args):
    return reverse(f"admin:commissions_{model._meta.model_name}_{action}", args=args)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_each_ledger_model_is_listed_and_viewable_in_the_admin(admin_client, history, model):
    assert admin_client.get(_url(model, "changelist")).status_code == 200
    obj = model.objects.first()
    response = admin_client.get(_url(model, "change", obj.pk))
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()  # view only


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_nothing_can_be_added_changed_or_deleted_through_the_admin(admin_client, history, model):
    obj = model.objects.first()
    count = model.objects.count()
    assert admin_client.get(_url(model, "add")).status_code == 403
    assert admin_client.post(_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    admin_client.post(_url(model, "change", obj.pk), {})
    admin_client.post(
        _url(model, "changelist"), {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
    )
    assert model.objects.count() == count


def test_the_event_log_shows_the_raw_body_and_filters_by_type_and_outcome(admin_client, send, click):
    body = signed_up("cus_1", click.id, event_id="evt_visible")
    send(body)
    send(paid("pay_x", "cus_stranger", event_id="evt_stranger"))
    event = MerchantEvent.objects.get(event_id="evt_visible")
    page = admin_client.get(_url(MerchantEvent, "change", event.pk)).content.decode()
    assert "evt_visible" in page and "customer.signed_up" in page
    assert json.dumps(body).replace('"', "&quot;") in page
    listed = admin_client.get(_url(MerchantEvent, "changelist"), {"outcome": "not_referred"})
    assert "evt_stranger" in listed.content.decode() and "evt_visible" not in listed.content.decode()
    by_type = admin_client.get(_url(MerchantEvent, "changelist"), {"type": "customer.signed_up"}).content.decode()
    assert "evt_visible" in by_type and "evt_stranger" not in by_type
    searched = admin_client.get(_url(MerchantEvent, "changelist"), {"q": "evt_stranger"}).content.decode()
    assert "evt_stranger" in searched and "evt_visible" not in searched


def test_self_referrals_are_flagged_and_filterable_in_the_admin(admin_client, send, click):
    owner_email = click.link.partner.user.email
    send(signed_up("cus_self", click.id, email=owner_email))
    send(signed_up("cus_other", click.id, email="someone@example.org"))
    page = admin_client.get(_url(Referral, "changelist")).content.decode()
    assert "SELF-REFERRAL" in page
    only_self = admin_client.get(_url(Referral, "changelist"), {"is_self_referral__exact": "1"}).content.decode()
    assert "cus_self" in only_self and "cus_other" not in only_self


def test_partners_cannot_open_the_admin(partner_client):
    response = partner_client.get(_url(MerchantEvent, "changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
