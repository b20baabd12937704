from __future__ import annotations

import re

import pytest

from tests.factories import ClickFactory, CreativeFactory, LinkFactory, PartnerFactory
from tracking.models import Link
from tracking.services import (
    LinkError,
    link_create,
    link_delete,
    link_disable,
    link_enable,
)

pytestmark = pytest.mark.django_db


def test_a_partner_has_a_default_link_with_the_referral_code(partner):
    link = Link.objects.get(partner=partner)
    assert (link.code, link.is_default, link.destination, link.trial_days) == (partner.referral_code, True, "", 14)


def test_a_custom_link_gets_a_generated_code_and_the_default_landing_page(partner):
    link = link_create(partner=partner)
    assert re.fullmatch(r"[a-z2-9]{10}", link.code)
    assert (link.destination, link.trial_days, link.is_default, link.is_active) == ("", 14, False, True)


def test_a_custom_link_keeps_destination_trial_description_and_creative(partner):
    creative = CreativeFactory()
    link = link_create(
        partner=partner,
        destination="  https://crazycall.com/pricing  ",
        trial_days=30,
        description="  Spring newsletter ",
        creative=creative,
    )
    link.refresh_from_db()
    assert link.destination == "https://crazycall.com/pricing"
    assert link.trial_days == 30
    assert link.description == "Spring newsletter"
    assert link.creative == creative


@pytest.mark.parametrize("days", [0, 7, 15, 31, 60])
def test_only_fourteen_or_thirty_day_trials_are_offered(partner, days):
    with pytest.raises(LinkError) as exc:
        link_create(partner=partner, trial_days=days)
    assert exc.value.field == "trial_days"


def test_a_partner_may_choose_the_code(partner):
    assert link_create(partner=partner, code="spring-sale_2025").code == "spring-sale_2025"


@pytest.mark.parametrize("code", ["ab", "a" * 41, "has space", "dot.ted", "slash/x", "ünï", "<script>"])
def test_a_chosen_code_must_have_the_contract_shape(partner, code):
    with pytest.raises(LinkError) as exc:
        link_create(partner=partner, code=code)
    assert exc.value.field == "code"


def test_a_chosen_code_must_be_unique_ignoring_case(partner):
    LinkFactory(code="Summer")
    for code in ("Summer", "summer", "SUMMER"):
        with pytest.raises(LinkError) as exc:
            link_create(partner=partner, code=code)
        assert exc.value.code == "code_taken"


def test_another_partners_referral_code_cannot_be_taken(partner):
    other = PartnerFactory()
    with pytest.raises(LinkError):
        link_create(partner=partner, code=other.referral_code)


def test_an_inactive_creative_cannot_be_chosen(partner):
    with pytest.raises(LinkError) as exc:
        link_create(partner=partner, creative=CreativeFactory(is_active=False))
    assert exc.value.field == "creative"


def test_a_link_can_be_disabled_and_enabled(partner):
    link = link_create(partner=partner)
    assert link_disable(partner=partner, link_id=link.pk).is_active is False
    assert Link.objects.get(pk=link.pk).is_active is False
    assert link_enable(partner=partner, link_id=link.pk).is_active is True


def test_the_default_link_cannot_be_disabled(partner):
    default = Link.objects.get(partner=partner, is_default=True)
    with pytest.raises(LinkError):
        link_disable(partner=partner, link_id=default.pk)
    assert Link.objects.get(pk=default.pk).is_active


def test_a_link_without_clicks_can_be_deleted(partner):
    link = link_create(partner=partner)
    link_delete(partner=partner, link_id=link.pk)
    assert not Link.objects.filter(pk=link.pk).exists()


def test_a_link_with_clicks_is_never_deleted(partner):
    link = link_create(partner=partner)
    ClickFactory(link=link)
    with pytest.raises(LinkError) as exc:
        link_delete(partner=partner, link_id=link.pk)
    assert exc.value.code == "link_has_clicks"
    assert Link.objects.filter(pk=link.pk).exists()


def test_the_default_link_cannot_be_deleted(partner):
    default = Link.objects.get(partner=partner, is_default=True)
    with pytest.raises(LinkError):
        link_delete(partner=partner, link_id=default.pk)


def test_a_partner_cannot_change_another_partners_link(partner):
    theirs = LinkFactory()
    for action in (link_disable, link_enable, link_delete):
        with pytest.raises(Link.DoesNotExist):
            action(partner=partner, link_id=theirs.pk)
    assert Link.objects.get(pk=theirs.pk).is_active
