from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "clinic_ai.review"
    label = "review"
    verbose_name = "Radiologist review"
