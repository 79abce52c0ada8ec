from django.conf import settings
from django.db import models

from clinic_ai.core.models import UUIDModel


class DeidProfile(UUIDModel):
    """A project's de-identification options (PS3.15 Basic Profile plus these)."""

    project = models.OneToOneField("accounts.Project", on_delete=models.CASCADE, related_name="deid_profile")
    retain_modified_dates = models.BooleanField(
        default=True,
        help_text="Retain Longitudinal Temporal Information with Modified Dates: one secret shift per patient.",
    )
    retain_patient_characteristics = models.BooleanField(
        default=True, help_text="Keep sex, age, size and weight: models may use them."
    )
    clean_descriptors = models.BooleanField(
        default=False,
        help_text="Keep descriptions and comments, reduced to words from a clinical vocabulary. Off: removed.",
    )
    ocr_enabled = models.BooleanField(
        default=True, help_text="Look for burned-in text in the pixels of every image; hold images where text is found."
    )

    def __str__(self) -> str:
        return f"De-identification options of {self.project}"


class PatientLink(UUIDModel):
    """Original patient -> pseudonym, per project. The only table that holds patient identity.

    Read only by admins, and every read is audited. `original_key` is the patient's ID and issuer
    (or name and birth date when there is no usable ID); `key_digest` finds the row without it.
    """

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="patient_links")
    key_digest = models.CharField(max_length=64)
    original_key = models.TextField()
    pseudonym = models.CharField(max_length=64)
    image_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "key_digest"], name="one_link_per_patient_and_project")
        ]
        ordering = ["pseudonym"]


class MaskTemplate(UUIDModel):
    """A mask drawn once and applied to later images from the same device and image size."""

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="mask_templates")
    manufacturer = models.CharField(max_length=64, blank=True)
    model_name = models.CharField(max_length=64, blank=True)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    boxes = models.JSONField(help_text="[[x0, y0, x1, y1], ...] in image pixels")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "manufacturer", "model_name", "rows", "columns"], name="one_template_per_device"
            )
        ]

    def __str__(self) -> str:
        return f"{self.manufacturer} {self.model_name} {self.columns}×{self.rows}".strip()
