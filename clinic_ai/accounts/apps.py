from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "clinic_ai.accounts"
    label = "accounts"
