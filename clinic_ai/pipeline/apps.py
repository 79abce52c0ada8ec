from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "clinic_ai.pipeline"
    label = "pipeline"
    verbose_name = "Pipeline"
