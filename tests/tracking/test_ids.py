"""Click ids: UUID version 7, time-ordered (tracking/ids.py)."""

import time
import uuid

from tracking.ids import new_click_id


def test_click_ids_are_rfc_9562_version_7_uuids_carrying_the_millisecond():
    before = time.time_ns() // 1_000_000
    click_id = new_click_id()
    after = time.time_ns() // 1_000_000
    assert click_id.version == 7
    assert click_id.variant == uuid.RFC_4122
    assert before <= click_id.int >> 80 <= after
    assert uuid.UUID(str(click_id)) == click_id  # the aff_click cookie and parameter round-trip


def test_later_clicks_sort_after_earlier_ones_and_ids_never_repeat():
    first = [new_click_id() for _ in range(1000)]
    time.sleep(0.002)
    second = [new_click_id() for _ in range(1000)]
    assert max(first) < min(second)
    assert len(set(first + second)) == 2000
    # 42 random bits: ids made in the same millisecond still differ in their random part.
    same_ms = [i for i in first if i.int >> 80 == first[0].int >> 80]
    assert len({i.int & ((1 << 80) - 1) for i in same_ms}) == len(same_ms)


def test_a_click_through_the_redirect_gets_a_version_7_id(visit, db):
    from tests.factories import LinkFactory
    from tracking.models import Click

    visit(LinkFactory().code)
    assert Click.objects.get().id.version == 7


def test_ids_made_here_are_recognised_and_others_are_not():
    from tracking.ids import issued_here

    click_id = new_click_id()
    assert issued_here(click_id)
    assert not issued_here(uuid.uuid4())
    assert not issued_here(uuid.UUID(int=click_id.int ^ 1))  # one bit of the MAC
    assert not issued_here(uuid.UUID(int=click_id.int ^ (1 << 40)))  # one bit of the random part
    assert not issued_here(uuid.UUID(int=click_id.int ^ (1 << 100)))  # one bit of the time


def test_an_id_made_under_another_secret_key_is_not_recognised(settings):
    from tracking.ids import issued_here

    click_id = new_click_id()
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert not issued_here(click_id)


def test_an_id_tells_when_its_click_was_made():
    from datetime import UTC, datetime

    from tracking.ids import issued_at

    before = datetime.now(UTC)
    moment = issued_at(new_click_id())
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= moment <= datetime.now(UTC)
