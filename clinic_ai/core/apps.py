from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "clinic_ai.core"
    label = "core"

    def ready(self) -> None:
        # Tasks are declared with shared_task; loading the app here binds them to our broker
        # settings in every Django process, without `import clinic_ai` pulling Celery in.
        from clinic_ai import celery  # noqa: F401
