from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "clinic_ai.inference"
    label = "inference"
    verbose_name = "Inference"
