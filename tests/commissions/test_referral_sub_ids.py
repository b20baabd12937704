"""A referral keeps a copy of its click's sub-IDs (commissions/referralsubs.py), written by the
database whatever wrote the referral, for the sub-ID report."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from commissions import referralsubs
from commissions.models import Referral
from tests.commissions.conftest import signed_up
from tests.factories import ClickFactory, LinkFactory, PromoCodeFactory, ReferralFactory

pytestmark = pytest.mark.django_db


def _subs(referral: Referral) -> tuple[str, str, str]:
    return tuple(Referral.objects.values_list("sub1", "sub2", "sub3").get(pk=referral.pk))


def _click(link=None, **subs):
    return ClickFactory(
        link=link or LinkFactory(), sub1=subs.get("sub1", ""), sub2=subs.get("sub2", ""), sub3=subs.get("sub3", "")
    )


def test_a_referral_written_by_the_orm_has_its_clicks_sub_ids():
    referral = ReferralFactory(click=_click(sub1="yt", sub2="video-7", sub3="x" * 100))
    assert _subs(referral) == ("yt", "video-7", "x" * 100)


def test_a_sign_up_event_copies_the_sub_ids_of_its_click(partner, send):
    click = _click(LinkFactory(partner=partner), sub1="newsletter", sub3="dec")
    assert send(signed_up("cus_subs", click.id)).status_code == 201
    assert _subs(Referral.objects.get(customer_id="cus_subs")) == ("newsletter", "", "dec")


def test_a_promo_code_referral_has_no_sub_ids(partner, send):
    PromoCodeFactory(partner=partner, code="PODCAST")
    body = signed_up("cus_promo", None)
    body["data"]["promo_code"] = "PODCAST"
    assert send(body).status_code == 201
    assert _subs(Referral.objects.get(customer_id="cus_promo")) == ("", "", "")


def test_the_app_cannot_overwrite_the_copy_and_a_new_click_brings_its_own():
    referral = ReferralFactory(click=_click(sub1="yt"))
    # An instance whose copy is stale (or set by mistake): a whole-row save writes it.
    referral.sub1 = ""
    referral.status = Referral.Status.PAYING
    referral.save()
    assert _subs(referral) == ("yt", "", "")
    Referral.objects.filter(pk=referral.pk).update(sub1="typed by hand")
    assert _subs(referral) == ("yt", "", "")
    other = _click(referral.link, sub2="moved")
    Referral.objects.filter(pk=referral.pk).update(click=other)
    assert _subs(referral) == ("", "moved", "")


def test_recompute_restores_copies_written_with_the_triggers_off(db):
    referral = ReferralFactory(click=_click(sub1="yt"))
    untouched = ReferralFactory(click=_click(sub2="kept"))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("UPDATE commissions_referral SET sub1 = 'stale' WHERE id = %s", [referral.pk])
            cursor.execute("SET session_replication_role = origin")
        else:
            cursor.execute("DROP TRIGGER commissions_referral_subs_update")
            cursor.execute("UPDATE commissions_referral SET sub1 = 'stale' WHERE id = %s", [referral.pk])
            cursor.execute(referralsubs.SQLITE_FORWARD[1])
    assert _subs(referral) == ("stale", "", "")
    referralsubs.recompute(partner_ids=[referral.partner_id])
    assert _subs(referral) == ("yt", "", "")
    assert _subs(untouched) == ("", "kept", "")


@pytest.mark.postgres
def test_rebuild_ledger_days_restores_the_copies_too(db):
    referral = ReferralFactory(click=_click(sub3="q4"))
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE commissions_referral SET sub3 = '' WHERE id = %s", [referral.pk])
        cursor.execute("SET session_replication_role = origin")
    call_command("rebuild_ledger_days", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert _subs(referral) == ("", "", "q4")
