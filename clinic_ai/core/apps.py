from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "clinic_ai.core"
    label = "core"
