"""prune_clicks: raw clicks past the retention age go, every report stays exactly equal."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from commissions.models import Referral
from tests.factories import LinkFactory, ReferralFactory
from tracking.click_writes import ClickData, write_clicks
from tracking.models import Click, UniqueVisitor
from tracking.retention import RetentionError, clicks_prune
from tracking.services import LinkError, link_delete

NOW = timezone.now()


def _click(link, *, days_ago: float, visitor: str) -> ClickData:
    return ClickData(
        id=uuid.uuid4(),
        link_id=link.pk,
        partner_id=link.partner_id,
        visitor_id=visitor,
        created_at=NOW - timedelta(days=days_ago),
    )


def _reports(client) -> list:
    """What the partner sees through every report the JSON API serves, over the whole history."""
    start = (NOW - timedelta(days=500)).date().isoformat()
    end = NOW.date().isoformat()
    return [
        client.get("/api/v1/partner/summary").json(),
        client.get(f"/api/v1/partner/trends?start={start}&end={end}").json(),
        client.get(f"/api/v1/partner/links?start={start}&end={end}").json(),
        client.get(f"/api/v1/partner/trends?start={(NOW - timedelta(days=30)).date()}&end={end}").json(),
        client.get(f"/performance/?start={start}&end={end}").content.count(b"<tr"),
    ]


@pytest.fixture
def history(partner):
    """Clicks over 500 days on two links (repeat visitors included) and one referral on an old click."""
    custom = LinkFactory(partner=partner)
    default = partner.links.get(is_default=True)
    clicks = []
    for day in (1, 10, 95, 300, 401, 420, 450, 499):
        for n, link in enumerate((default, custom, custom)):
            clicks.append(_click(link, days_ago=day + n / 10, visitor=f"visitor-{day % 3}-{n % 2}"))
    write_clicks(clicks)
    old = Click.objects.filter(link=custom, created_at__lt=NOW - timedelta(days=420)).earliest("created_at")
    ReferralFactory(click=old, link=custom, partner=partner, signed_up_at=old.created_at + timedelta(hours=1))
    return custom


@pytest.mark.django_db
def test_pruning_deletes_old_clicks_and_leaves_every_report_equal(partner_client, history):
    before = _reports(partner_client)
    visitors = UniqueVisitor.objects.count()
    old = Click.objects.filter(created_at__lt=NOW - timedelta(days=400))
    referred = Referral.objects.get().click_id
    assert old.count() == 12

    deleted = clicks_prune(older_than=timedelta(days=400), batch_size=2, now=NOW)

    assert deleted == 11
    assert list(old.values_list("pk", flat=True)) == [referred]
    assert Click.objects.count() == 24 - 11
    assert UniqueVisitor.objects.count() == visitors
    assert _reports(partner_client) == before


@pytest.mark.django_db
def test_a_revisit_after_pruning_is_not_a_new_unique_click(partner, history):
    clicks_prune(older_than=timedelta(days=400), now=NOW)
    pair = UniqueVisitor.objects.filter(first_click_at__lt=NOW - timedelta(days=400)).first()
    link = pair.link
    result = write_clicks([_click(link, days_ago=0, visitor=pair.visitor_id)])
    assert result.unique_count == 0


@pytest.mark.django_db
def test_a_link_whose_clicks_were_all_pruned_still_cannot_be_deleted(partner):
    link = LinkFactory(partner=partner)
    write_clicks([_click(link, days_ago=450, visitor="v1")])
    assert clicks_prune(older_than=timedelta(days=400), now=NOW) == 1
    with pytest.raises(LinkError):
        link_delete(partner=partner, link_id=link.pk)


@pytest.mark.django_db
def test_a_retention_inside_the_attribution_window_is_refused(partner, settings):
    settings.ATTRIBUTION_WINDOW_DAYS = 90
    with pytest.raises(RetentionError):
        clicks_prune(older_than=timedelta(days=90))


@pytest.mark.django_db
def test_the_command_prunes_counts_in_dry_run_and_refuses_bad_ages(history, capsys):
    call_command("prune_clicks", "--older-than", "400d", "--dry-run")
    assert "Would delete 11 clicks" in capsys.readouterr().out
    assert Click.objects.count() == 24
    call_command("prune_clicks", "--older-than", "400d", "--batch-size", "3")
    assert "Deleted 11 clicks" in capsys.readouterr().out
    for bad in ("400", "30d", "-5d"):
        with pytest.raises(CommandError):
            call_command("prune_clicks", "--older-than", bad)
