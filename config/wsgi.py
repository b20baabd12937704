"""WSGI config: ``application`` is what gunicorn and granian serve (config.handlers), with the
request id and access log of config/logs.py around it."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402

from config.handlers import Application  # noqa: E402 (needs the apps loaded)
from config.logs import RequestLog  # noqa: E402

application = RequestLog(Application(), access_log=settings.ACCESS_LOG)
