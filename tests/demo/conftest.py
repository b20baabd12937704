from __future__ import annotations

import pytest

from tracking import linkcache


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The demo creates several accounts; the production hasher costs ~0.3 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def demo_media_root(tmp_path_factory):
    return tmp_path_factory.mktemp("demo-media")


@pytest.fixture(autouse=True)
def _media_root(settings, demo_media_root):
    settings.MEDIA_ROOT = demo_media_root


@pytest.fixture(autouse=True)
def _fresh_link_cache():
    # Simulations roll back the links they clicked; a cached code must never outlive its row.
    linkcache.clear()
    yield
    linkcache.clear()
