from django.apps import AppConfig


class PerformanceConfig(AppConfig):
    name = "clinic_ai.performance"
    label = "performance"
    verbose_name = "Model performance"
