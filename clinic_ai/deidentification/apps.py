from django.apps import AppConfig


class DeidentificationConfig(AppConfig):
    name = "clinic_ai.deidentification"
    label = "deidentification"
    verbose_name = "De-identification"
