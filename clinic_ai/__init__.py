"""clinic_ai: the Django project.

Importing this package loads nothing: the pure libraries under it (``clinic_ai.deid``) must stay
importable without Django or Celery. The Celery app is loaded by ``clinic_ai.core``'s AppConfig, so
every Django process (web, worker, manage.py) has it before a task is queued.
"""
