"""The Stripe event log in the admin: the integration's health, held events, handling them again."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from commissions.models import Payment
from commissions.stripe_billing.models import StripeEvent
from commissions.stripe_billing.services import stripe_event_receive
from tests.factories import UserFactory
from tests.stripe_billing.conftest import customer_life
from tests.stripe_billing.stripe_world import post

pytestmark = pytest.mark.django_db

LIST = reverse("admin:stripe_billing_stripeevent_changelist")


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_event_list_shows_the_last_event_held_events_and_verification_failures(admin_client, click):
    life = customer_life(str(click.id))
    stripe_event_receive(payload=life.by_name["sub_created"])
    stripe_event_receive(payload=life.by_name["first_invoice"])  # held: no checkout yet
    post(admin_client, life.by_name["checkout"], secret="whsec_wrong")  # refused
    post(admin_client, life.by_name["checkout"], secret="whsec_wrong")

    page = admin_client.get(LIST).content.decode()

    assert "Stripe integration health" in page
    assert "customer.subscription.created" in page or "invoice.paid" in page
    assert '<a href="?status__exact=held">1 event</a>' in page
    assert "2 today, 2 in the last 7 days" in page
    assert "invalid_signature" in page


def test_the_event_list_costs_the_same_queries_for_many_events(admin_client, click):
    life = customer_life(str(click.id))
    for event in life.events[:3]:
        stripe_event_receive(payload=event)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(LIST).status_code == 200
    for event in life.events[3:]:
        stripe_event_receive(payload=event)
    with CaptureQueriesContext(connection) as many:
        assert admin_client.get(LIST).status_code == 200
    assert StripeEvent.objects.count() == len(life.events)

    # The event list's own queries (the session's bookkeeping, e.g. a staff session's expiry
    # being refreshed, is not the list's).
    def own(queries):
        return [q for q in queries if "django_session" not in q["sql"] and "SAVEPOINT" not in q["sql"]]

    assert len(own(many.captured_queries)) == len(own(few.captured_queries))


def test_an_event_is_viewable_and_not_editable(admin_client, click):
    life = customer_life(str(click.id))
    row = stripe_event_receive(payload=life.by_name["checkout"])
    url = reverse("admin:stripe_billing_stripeevent_change", args=[row.pk])

    page = admin_client.get(url).content.decode()

    assert "client_reference_id" in page
    assert admin_client.post(url, {"status": "ignored"}).status_code == 403


def test_handle_again_applies_a_held_invoice_once_its_plan_is_known(admin_client, click, settings):
    settings.STRIPE_PLAN_FROM = "metadata"  # the prices name their plan in lookup_key only
    life = customer_life(str(click.id))
    for name in ("checkout", "sub_created", "first_invoice"):
        stripe_event_receive(payload=life.by_name[name])
    held = StripeEvent.objects.get(stripe_id=life.by_name["first_invoice"]["id"])
    assert held.status == StripeEvent.Status.HELD
    settings.STRIPE_PLAN_FROM = "lookup_key"  # the operator fixes the setting
    stripe_event_receive(payload=life.by_name["sub_active"])  # teaches the price's plan

    held.refresh_from_db()
    assert held.status == StripeEvent.Status.APPLIED  # released by the subscription event
    assert Payment.objects.filter(payment_id="in_tfirst").exists()


def test_the_handle_again_action_handles_the_selected_held_events(admin_client, click, settings):
    life = customer_life(str(click.id))
    stripe_event_receive(payload=life.by_name["sub_created"])
    held = stripe_event_receive(payload=life.by_name["first_invoice"])
    assert held.status == StripeEvent.Status.HELD
    # The checkout arrived while the connector was down: stored, never handled.
    StripeEvent.objects.create(
        stripe_id=life.by_name["checkout"]["id"],
        type="checkout.session.completed",
        created=held.created,
        payload=life.by_name["checkout"],
        customer_id=life.customer,
    )
    checkout = StripeEvent.objects.get(stripe_id=life.by_name["checkout"]["id"])

    response = admin_client.post(LIST, {"action": "handle_again", "_selected_action": [checkout.pk, held.pk]})

    assert response.status_code == 302
    held.refresh_from_db()
    assert held.status == StripeEvent.Status.APPLIED
