"""Merchant events API (CONTRACT.md "Merchant events API")."""

from ninja import Router

router = Router(tags=["events"])
