"""checkout.session.completed carrying a promotion code refers the customer to the code's partner."""

from __future__ import annotations

import pytest

from commissions.models import Referral
from commissions.stripe_billing.models import StripeEvent
from tests.factories import PromoCodeFactory
from tests.stripe_billing.conftest import SECRET, T0
from tests.stripe_billing.fake_stripe import FakeStripe
from tests.stripe_billing.stripe_world import StripeWorld, fixture, post

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

KEY = "sk_test_fake"


@pytest.fixture
def fake(settings):
    fake = FakeStripe(api_key=KEY)
    settings.STRIPE_API_BASE = fake.start()
    settings.STRIPE_API_KEY = KEY
    yield fake
    fake.stop()


def _promotion_code(code: str, promo_id: str = "promo_1") -> dict:
    promo = fixture("promotion_code")
    promo.update(id=promo_id, code=code, active=True)
    return promo


def _checkout_with(promotion, *, customer: str, click_id: str | None = None, where: str = "discounts") -> dict:
    w = StripeWorld(prefix=customer)
    event = w.checkout(customer=customer, click_id=click_id, at=T0)
    session = event["data"]["object"]
    if where == "discounts":
        session["discounts"] = [{"coupon": "co_1", "promotion_code": promotion}]
    else:
        session["total_details"]["breakdown"] = {
            "discounts": [{"amount": 500, "discount": {"id": "di_1", "promotion_code": promotion}}],
            "taxes": [],
        }
    return event


def _post(client, event):
    response = post(client, event, secret=SECRET)
    assert response.status_code == 200, response.content
    return response.json()


def test_an_expanded_promotion_code_refers_the_customer_to_the_codes_partner(client):
    promo = PromoCodeFactory(code="PODCAST", trial_days=30)
    _post(client, _checkout_with(_promotion_code("podcast"), customer="cus_x1"))
    referral = Referral.objects.get(customer_id="cus_x1")
    assert referral.promo_code == promo and referral.trial_days == 30


def test_a_promotion_code_in_the_expanded_breakdown_is_read_too(client):
    promo = PromoCodeFactory(code="PODCAST")
    _post(client, _checkout_with(_promotion_code("PODCAST"), customer="cus_x2", where="breakdown"))
    assert Referral.objects.get(customer_id="cus_x2").partner == promo.partner


def test_a_promotion_code_id_is_looked_up_through_the_stripe_api(client, fake):
    promo = PromoCodeFactory(code="VIDEO30", trial_days=30)
    fake.add("promotion_codes", _promotion_code("VIDEO30", promo_id="promo_abc"))
    _post(client, _checkout_with("promo_abc", customer="cus_x3"))
    assert Referral.objects.get(customer_id="cus_x3").promo_code == promo
    assert any(path.startswith("/v1/promotion_codes/promo_abc") for path in fake.requests)


def test_a_promotion_code_stripe_cannot_find_holds_the_sign_up_with_a_note(client, fake):
    PromoCodeFactory(code="VIDEO30")
    answer = _post(client, _checkout_with("promo_missing", customer="cus_x4"))
    assert answer["status"] == StripeEvent.Status.HELD
    assert "promo_missing" in answer["note"]
    assert answer["note"].endswith("handle this event again once Stripe answers.")
    assert StripeEvent.objects.get(stripe_id=answer["id"]).waiting_for == "promotion_code:promo_missing"
    assert not Referral.objects.exists()


def test_a_click_in_the_session_wins_over_its_promotion_code(client, click):
    PromoCodeFactory(code="PODCAST")
    _post(client, _checkout_with(_promotion_code("PODCAST"), customer="cus_x5", click_id=str(click.id)))
    referral = Referral.objects.get(customer_id="cus_x5")
    assert referral.click == click and referral.promo_code is None


def test_a_promotion_code_no_partner_owns_is_not_a_referral(client):
    answer = _post(client, _checkout_with(_promotion_code("SPRING"), customer="cus_x6"))
    assert answer["status"] == StripeEvent.Status.NOT_REFERRED
    assert not Referral.objects.exists()
