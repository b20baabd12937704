from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from config.celery_app import app as celery_app
from tests.factories import PartnerFactory


@pytest.fixture(autouse=True)
def _isolated_program(settings, request):
    """Every test starts from the contract's defaults, with Celery tasks run in-process and
    clicks written straight to the database; tests about workers and the Redis buffer opt in."""
    settings.COMMISSION_RATE = __import__("decimal").Decimal("0.20")
    settings.PAYOUT_MINIMUM = __import__("decimal").Decimal("50.00")
    settings.COMMISSION_HOLD_DAYS = 0
    settings.ATTRIBUTION_WINDOW_DAYS = 90
    settings.MERCHANT_ALLOWED_HOSTS = ("crazycall.com",)
    settings.DEFAULT_LANDING_URL = "https://crazycall.com/"
    settings.CLICK_BUFFER = False
    settings.SITE_URL = "http://testserver"
    # A fast hasher: the suite creates thousands of users; production keeps PBKDF2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = eager


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    from tracking import linkcache

    cache.clear()
    # The redirect's in-process link cache outlives a test's rolled-back rows.
    linkcache.clear()
    yield


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    if _is_postgres():
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (row locks / concurrent transactions); runs in CI via .ci/run")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


class VerifiedClient(Client):
    """The test client whose ``force_login`` also passes two-factor verification when the user
    has a confirmed TOTP device (as ``force_login`` passes the password): the payout 2FA gate's
    own tests verify through the real pages."""

    def force_login(self, user, backend=None):
        super().force_login(user, backend)
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice

        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is not None:
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()


@pytest.fixture
def client():
    return VerifiedClient()


def with_totp_device(user):
    """Give ``user`` a confirmed TOTP device (staff who decide payouts must have one)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.create(user=user, name="test authenticator", confirmed=True)
    return user


@pytest.fixture
def partner(db):
    return PartnerFactory()


@pytest.fixture
def partner_client(client, partner):
    client.force_login(partner.user)
    client.partner = partner
    return client


@pytest.fixture
def warm_terms_cache(db):
    """Panel pages and the withdrawal rule compare with the current program terms version, read
    from the cache (one query on a miss, every few minutes in production): warm it, so a query
    count is the page's own."""
    from partners.terms import current_terms

    current_terms()
