from django.contrib import admin

from clinic_ai.deidentification.models import DeidProfile, MaskTemplate


@admin.register(DeidProfile)
class DeidProfileAdmin(admin.ModelAdmin):
    list_display = (
        "project",
        "retain_modified_dates",
        "retain_patient_characteristics",
        "clean_descriptors",
        "ocr_enabled",
    )


@admin.register(MaskTemplate)
class MaskTemplateAdmin(admin.ModelAdmin):
    list_display = ("project", "manufacturer", "model_name", "columns", "rows", "created")
    list_filter = ("project",)


# PatientLink is deliberately not in the Django admin: its only reader is the audited page.
