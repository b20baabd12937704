"""Partner JSON API (CONTRACT.md "Partner JSON API")."""

from ninja import Router

router = Router(tags=["partner"])
