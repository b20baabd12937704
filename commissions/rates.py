"""Which commission rate a partner's payment earns at (docs/reference.md, "Merchant events API": each partner's rate).

Staff give a partner its own rate from a moment on (``PartnerRate``, edited inline on the
partner in the admin); without one the program's ``COMMISSION_RATE`` applies. The general path
asks ``rate_in_force``; the SQL fast path reads the same rows in its statement
(``commissions.fastpath``) and both record the rate on the ledger entry.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Subquery
from django.utils import timezone

from commissions.models import PartnerRate


def rate_in_force(*, partner_id: int, at: datetime) -> Decimal:
    """The partner's rate for a payment made at ``at``."""
    own = (
        PartnerRate.objects.filter(partner_id=partner_id, valid_from__lte=at)
        .order_by("-valid_from")
        .values_list("rate", flat=True)
        .first()
    )
    return settings.COMMISSION_RATE if own is None else own


def current_rate(*, partner_id: int) -> Decimal:
    """The rate a payment made now earns (the panel shows it)."""
    return rate_in_force(partner_id=partner_id, at=timezone.now())


def own_rate_now(*, partner_id: int) -> Subquery:
    """The partner's own rate in force now, as a subquery to annotate a query the page makes
    anyway (NULL: the program's rate applies; ``rate_or_default``)."""
    own = PartnerRate.objects.filter(partner_id=partner_id, valid_from__lte=timezone.now()).order_by("-valid_from")
    return Subquery(own.values("rate")[:1])


def rate_or_default(own: Decimal | None) -> Decimal:
    return settings.COMMISSION_RATE if own is None else own
