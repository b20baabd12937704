"""The admin's read-only views: ledgers, logs and audit trails are written by the code, never
edited by hand (superusers included)."""

from __future__ import annotations


class ReadOnlyAdminMixin:
    """No add, change or delete for anyone. For ModelAdmin and inlines alike (put it before
    the admin class)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
