"""customer.signed_up with a promo code (docs/reference.md, "Merchant events API")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.urls import reverse
from django.utils import timezone

from commissions.models import Referral
from tests.commissions.conftest import signed_up
from tests.factories import ClickFactory, LinkFactory, PartnerFactory, PromoCodeFactory
from tracking.models import DailyLinkStats, Link

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def with_code(customer_id: str, click_id, code: str | None, **kw) -> dict:
    body = signed_up(customer_id, click_id, **kw)
    body["data"]["promo_code"] = code
    return body


def test_a_promo_code_without_a_click_refers_the_customer_to_the_codes_partner(send):
    promo = PromoCodeFactory(code="PODCAST", trial_days=14)
    response = send(with_code("cus_p1", None, "PODCAST"))
    assert response.status_code == 201, response.content
    body = response.json()["referral"]
    assert body["partner"] == promo.partner.referral_code
    assert body["trial_days"] == 14
    referral = Referral.objects.get(customer_id="cus_p1")
    assert referral.promo_code == promo
    assert referral.click is None
    assert referral.link == Link.objects.get(partner=promo.partner, is_default=True)


def test_a_promo_code_matches_whatever_its_case(send):
    promo = PromoCodeFactory(code="Podcast30", trial_days=30)
    response = send(with_code("cus_p2", None, " podCAST30 "))
    assert response.status_code == 201
    assert response.json()["referral"]["partner"] == promo.partner.referral_code
    assert response.json()["referral"]["trial_days"] == 30


def test_a_click_inside_the_window_wins_over_a_promo_code(send):
    PromoCodeFactory(code="PODCAST")
    click = ClickFactory(created_at=timezone.now() - timedelta(days=3), link=LinkFactory(trial_days=30))
    response = send(with_code("cus_p3", click.id, "PODCAST"))
    referral = Referral.objects.get(customer_id="cus_p3")
    assert response.json()["referral"]["partner"] == click.link.partner.referral_code
    assert referral.click == click and referral.promo_code is None
    assert referral.trial_days == 30


def test_a_click_outside_the_window_leaves_the_sign_up_to_the_promo_code(send, settings):
    settings.ATTRIBUTION_WINDOW_DAYS = 90
    promo = PromoCodeFactory(code="PODCAST")
    old = ClickFactory(created_at=timezone.now() - timedelta(days=91))
    send(with_code("cus_p4", old.id, "PODCAST"))
    referral = Referral.objects.get(customer_id="cus_p4")
    assert referral.partner == promo.partner and referral.click is None


def test_a_promo_code_sign_up_counts_a_trial_on_the_partners_default_link(send):
    promo = PromoCodeFactory(code="PODCAST")
    send(with_code("cus_p5", None, "PODCAST"))
    stats = DailyLinkStats.objects.get(partner=promo.partner)
    assert stats.link.is_default and stats.new_trials == 1


@pytest.mark.parametrize("code", ["NOSUCHCODE", "", None])
def test_an_unknown_or_empty_promo_code_is_not_a_referral(send, code):
    PromoCodeFactory(code="PODCAST")
    response = send(with_code("cus_p6", None, code))
    assert response.status_code == 201
    assert response.json() == {"referral": None}
    assert not Referral.objects.exists()


def test_an_inactive_promo_code_refers_nobody(send):
    PromoCodeFactory(code="PODCAST", is_active=False)
    response = send(with_code("cus_p7", None, "PODCAST"))
    assert response.json() == {"referral": None}


def test_a_promo_code_of_a_deactivated_partner_refers_nobody(send):
    partner = PartnerFactory()
    partner.user.is_active = False
    partner.user.save()
    PromoCodeFactory(code="PODCAST", partner=partner)
    response = send(with_code("cus_p8", None, "PODCAST"))
    assert response.json() == {"referral": None}


def test_a_promo_code_sign_up_with_the_partners_own_email_is_a_self_referral(send):
    promo = PromoCodeFactory(code="PODCAST")
    send(with_code("cus_p9", None, "PODCAST", email=promo.partner.user.email.upper()))
    assert Referral.objects.get(customer_id="cus_p9").is_self_referral


def test_a_replayed_promo_code_sign_up_answers_as_before_and_writes_nothing_new(send):
    PromoCodeFactory(code="PODCAST")
    body = with_code("cus_p10", None, "PODCAST")
    first = send(body)
    again = send(body)
    assert again.status_code == 200 and again.json() == first.json()
    assert Referral.objects.count() == 1


def test_a_promo_code_longer_than_255_characters_is_refused(send):
    response = send(with_code("cus_p11", None, "x" * 256))
    assert response.status_code == 400
    assert response.json()["error"]["field"].endswith("promo_code")


def test_two_codes_differing_only_in_case_cannot_exist():
    PromoCodeFactory(code="PODCAST")
    with pytest.raises(IntegrityError):
        PromoCodeFactory(code="podcast")


def test_a_referral_needs_a_click_or_a_promo_code():
    link = LinkFactory()
    with pytest.raises(IntegrityError):
        Referral.objects.create(
            partner=link.partner,
            link=link,
            customer_id="cus_none",
            signed_up_at=timezone.now(),
            trial_days=14,
            trial_ends_at=timezone.now() + timedelta(days=14),
        )


def test_a_promo_code_referral_shows_the_code_in_its_timeline(partner_client, send):
    PromoCodeFactory(code="PODCAST", partner=partner_client.partner)
    send(with_code("cus_t1", None, "PODCAST"))
    referral = Referral.objects.get(customer_id="cus_t1")
    response = partner_client.get(reverse("commissions:referral_detail", args=[referral.pk]))
    assert response.status_code == 200
    assert [item.kind for item in response.context["timeline"]][:2] == ["promo_code", "signed_up"]
    assert "PODCAST" in response.content.decode()


@pytest.mark.parametrize("status", ["pending", "declined"])
def test_a_promo_code_of_a_partner_whose_application_is_not_approved_refers_nobody(send, status):
    PromoCodeFactory(code="PODCAST", partner=PartnerFactory(status=status))
    response = send(with_code("cus_p9", None, "PODCAST"))
    assert response.json() == {"referral": None}
