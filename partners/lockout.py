"""django-axes's database handler with two lockout rules, each with its own limit.

AXES_LOCKOUT_PARAMETERS lists the rules: the account from one address (``["username",
"ip_address"]``, LOGIN_FAILURE_LIMIT failures) and the address alone (``"ip_address"``,
LOGIN_ADDRESS_FAILURE_LIMIT failures, for one client trying many emails: each failure costs a
PBKDF2 hash). django-axes compares the largest of the rules' counts with one limit; here each
rule's count is measured against its own limit and reported in units of AXES_FAILURE_LIMIT, so
axes's own comparison locks as soon as any rule reaches its limit.
"""

from __future__ import annotations

from fractions import Fraction

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.db.models import Sum


def _rule_limits() -> list[int]:
    return [settings.AXES_FAILURE_LIMIT, settings.LOGIN_ADDRESS_FAILURE_LIMIT]


class AccountAndAddressLockoutHandler(AxesDatabaseHandler):
    def get_failures(self, request, credentials: dict | None = None) -> Fraction:
        attempts_per_rule = self.get_user_attempts(request, credentials)
        worst = Fraction(0)
        for attempts, limit in zip(attempts_per_rule, _rule_limits(), strict=True):
            failures = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            worst = max(worst, Fraction(failures, max(limit, 1)) * settings.AXES_FAILURE_LIMIT)
        return worst

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        # A successful login clears this account's failures from this address only: logging in
        # to an account of one's own must not wipe the address's count of tries on others.
        account_rule = self.filter_user_attempts(request, credentials)[0]
        count, _ = account_rule.delete()
        return count
