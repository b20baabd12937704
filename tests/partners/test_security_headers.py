"""The Content-Security-Policy headers (config.middleware.CSPMiddleware caches django-csp's
policy string): the same header django-csp builds, on pages and on the click redirect, and
a changed setting takes effect."""

import pytest
from csp.utils import build_policy

from tests.factories import PartnerFactory


@pytest.mark.django_db
def test_pages_carry_the_policy_django_csp_builds(client):
    response = client.get("/accounts/login/")
    assert response["Content-Security-Policy"] == build_policy()
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "Content-Security-Policy-Report-Only" not in response


@pytest.mark.django_db
def test_the_click_redirect_carries_it_too(client):
    partner = PartnerFactory()
    response = client.get(f"/r/{partner.referral_code}")
    assert response.status_code == 302
    assert response["Content-Security-Policy"] == build_policy()


@pytest.mark.django_db
def test_a_changed_policy_setting_takes_effect(client, settings):
    client.get("/accounts/login/")  # the policy of the old settings is built and kept
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"img-src": ["'self'"]}}
    response = client.get("/accounts/login/")
    assert response["Content-Security-Policy"] == "default-src 'none'"
    assert response["Content-Security-Policy-Report-Only"] == build_policy(report_only=True)
    assert "img-src 'self'" in response["Content-Security-Policy-Report-Only"]


@pytest.mark.django_db
def test_excluded_prefixes_are_honoured(client, settings):
    settings.CONTENT_SECURITY_POLICY = {
        "EXCLUDE_URL_PREFIXES": ["/accounts/"],
        "DIRECTIVES": {"default-src": ["'self'"]},
    }
    assert "Content-Security-Policy" not in client.get("/accounts/login/")
    assert client.get("/healthz")["Content-Security-Policy"] == "default-src 'self'"
