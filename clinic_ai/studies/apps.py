from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "clinic_ai.studies"
    label = "studies"
