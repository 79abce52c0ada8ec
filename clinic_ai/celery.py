import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic_ai.settings")

app = Celery("clinic_ai")
app.config_from_object("django.conf:settings", namespace="CELERY")
# "cpu": ingestion, previews, de-identification. "gpu": inference, consumed by
# GPU hosts when present, by the same worker otherwise.
app.conf.task_queues = tuple(Queue(name, Exchange(name), routing_key=name) for name in ("cpu", "gpu"))
app.conf.task_routes = ("clinic_ai.core.tasks.route_by_decorator",)
app.autodiscover_tasks()
