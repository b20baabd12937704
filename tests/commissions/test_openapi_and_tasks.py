"""The published OpenAPI document, and the balance/trial Celery tasks."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commissions.tasks import recalculate_all_balances_task, recalculate_partner_balance_task
from tests.factories import CommissionEntryFactory, PartnerFactory, PayoutFactory

pytestmark = pytest.mark.django_db

D = Decimal


def test_the_openapi_document_describes_each_event_type_and_every_response(client):
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/events"]["post"]
    body = operation["requestBody"]["content"]["application/json"]
    variants = {v["properties"]["type"]["const"]: v for v in body["schema"]["oneOf"]}
    assert set(variants) == {"customer.signed_up", "payment.succeeded", "payment.refunded", "subscription.cancelled"}
    payment = variants["payment.succeeded"]["properties"]["data"]
    assert set(payment["required"]) == {"payment_id", "customer_id", "amount", "currency", "plan", "seats"}
    assert payment["properties"]["amount"]["type"] == "string"
    assert payment["additionalProperties"] is False
    assert set(body["examples"]) == set(variants)
    assert {"200", "201", "400", "401", "409"} <= set(operation["responses"])
    assert "422" not in operation["responses"]
    assert any(p["name"] == "X-Partner-Signature" and p["in"] == "header" for p in operation["parameters"])
    error = document["components"]["schemas"]["EventErrorDetail"]
    assert set(error["properties"]) == {"code", "message", "field"}


def test_recalculating_all_balances_is_one_update_whatever_the_number_of_partners(django_assert_num_queries):
    partners = PartnerFactory.create_batch(5)
    for partner in partners:
        CommissionEntryFactory(payment__referral__click__link__partner=partner, amount=D("12.00"))
    PayoutFactory(partner=partners[0], amount=D("5.00"))
    with django_assert_num_queries(1):
        recalculate_all_balances_task.delay()
    balances = {p.pk: (p.commission_total, p.balance) for p in type(partners[0]).objects.all()}
    assert balances[partners[0].pk] == (D("12.00"), D("7.00"))
    assert all(balances[p.pk] == (D("12.00"), D("12.00")) for p in partners[1:])


def test_recalculating_one_partner_leaves_the_others_alone():
    mine, other = PartnerFactory(), PartnerFactory()
    CommissionEntryFactory(payment__referral__click__link__partner=mine, amount=D("3.00"))
    CommissionEntryFactory(payment__referral__click__link__partner=other, amount=D("4.00"))
    recalculate_partner_balance_task.delay(partner_id=mine.pk)
    mine.refresh_from_db()
    other.refresh_from_db()
    assert (mine.balance, other.balance) == (D("3.00"), D("0.00"))
    assert other.balance_updated_at is None


def test_the_denormalised_balance_respects_the_hold(settings):
    settings.COMMISSION_HOLD_DAYS = 7
    partner = PartnerFactory()
    CommissionEntryFactory(payment__referral__click__link__partner=partner, amount=D("3.00"))
    CommissionEntryFactory(
        payment__referral__click__link__partner=partner, amount=D("5.00"), earned_at=timezone.now() - timedelta(days=8)
    )
    recalculate_all_balances_task.delay()
    partner.refresh_from_db()
    assert (partner.commission_total, partner.balance) == (D("8.00"), D("5.00"))
