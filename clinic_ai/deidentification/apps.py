import logging

from django.apps import AppConfig


class DeidentificationConfig(AppConfig):
    name = "clinic_ai.deidentification"
    label = "deidentification"
    verbose_name = "De-identification"

    def ready(self) -> None:
        # pydicom's messages quote header values (patient data). settings.LOGGING silences its
        # logger, but importing pydicom resets the level to WARNING: silence it again, after.
        import pydicom.config  # noqa: F401 - runs pydicom's own logger set-up first

        logging.getLogger("pydicom").setLevel(logging.CRITICAL)
