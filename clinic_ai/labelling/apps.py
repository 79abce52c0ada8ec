from django.apps import AppConfig


class LabellingConfig(AppConfig):
    name = "clinic_ai.labelling"
    label = "labelling"
    verbose_name = "Labelling"
