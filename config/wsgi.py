"""WSGI config: ``application`` is what gunicorn and granian serve (config.handlers)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from config.handlers import Application  # noqa: E402 (needs the apps loaded)

application = Application()
