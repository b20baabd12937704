"""Celery application. Without REDIS_URL every task runs in-process (eager), so the demo
needs no broker; with it, the same tasks go to real workers and beat."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("partner_panel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
