"""The simulator is deterministic: the same seed on a fresh database gives the same story."""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.demo.test_simulation import _partners, _simulate, busy_merchant
from tracking.models import Click

pytestmark = pytest.mark.django_db


def _fresh_run(seed: int) -> dict:
    """Partners and a simulation in a savepoint that is then rolled back: a fresh database
    each time (new random default-link codes included)."""
    with transaction.atomic():
        _partners()
        summary = _simulate(seed, visitors_per_day=2).as_dict()
        transaction.set_rollback(True)
    return summary


def test_the_same_seed_gives_the_same_summary_on_a_fresh_database(monkeypatch):
    busy_merchant(monkeypatch)
    first = _fresh_run(3)
    assert not Click.objects.exists()
    assert _fresh_run(3) == first
    assert _fresh_run(4) != first
