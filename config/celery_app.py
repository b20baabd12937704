"""Celery application. Without REDIS_URL every task runs in-process (eager), so the demo
needs no broker; with it, the same tasks go to real workers and beat."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("partner_panel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# A task's log lines carry its task id where a request's carry the request id (config/logs.py).
@signals.task_prerun.connect
def _task_log_id(task_id=None, task=None, **kwargs):
    from config.logs import set_request_id

    if task.request.is_eager:  # runs inside a request (no broker): its lines keep the request's id
        return
    task.request.log_id_token = set_request_id(f"task-{task_id}")


@signals.task_postrun.connect
def _task_log_id_done(task=None, **kwargs):
    from config.logs import reset_request_id

    token = getattr(task.request, "log_id_token", None)
    if token is not None:
        reset_request_id(token)
