"""Queue decorators: every task in the project is declared through one of these.

Tasks are acknowledged late and re-queued when a worker dies mid-task, so each
task must take primary keys only, lock its row, check the row's status and do
nothing when the step has already run.
"""

from celery import shared_task  # noqa: TID251 - the one place allowed to use it
from django.db import OperationalError

_COMMON = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    # A lost connection or a lock timeout is worth another try; steps are safe to run twice.
    "autoretry_for": (OperationalError,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "max_retries": 8,
}


def cpu_task(*args, **kwargs):
    """Ingestion, de-identification and preview work."""
    return shared_task(*args, clinic_queue="cpu", **_COMMON, **kwargs)


def gpu_task(*args, **kwargs):
    """Inference: consumed by GPU hosts when there are any, by every worker otherwise."""
    return shared_task(*args, clinic_queue="gpu", **_COMMON, **kwargs)


def route_by_decorator(name, args, kwargs, options, task=None, **kw):
    """Celery router: the queue named by the task's decorator."""
    return {"queue": getattr(task, "clinic_queue", "cpu")}
