"""Signals the events app listens to (connected in ``CommissionsConfig.ready``)."""

from __future__ import annotations

import uuid
from typing import Any

from commissions.services import awaiting_clicks_resolve


def resolve_sign_ups_awaiting(sender: Any, *, click_ids: list[uuid.UUID], **kwargs: Any) -> None:
    """``tracking.click_writes.clicks_stored``: buffered clicks landed; sign-ups waiting for one of them
    become referrals now (one index probe when none waits)."""
    awaiting_clicks_resolve(click_ids=click_ids)
