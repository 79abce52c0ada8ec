from django.contrib import admin

from clinic_ai.core.admin import ReadOnlyAdmin
from clinic_ai.deidentification import services
from clinic_ai.deidentification.models import DeidProfile, MaskTemplate


@admin.register(DeidProfile)
class DeidProfileAdmin(admin.ModelAdmin):
    """Options change through `deid_profile_update`, audited with old and new values, as on the project page."""

    list_display = ("project", *services.PROFILE_OPTIONS)
    fields = ("project", *services.PROFILE_OPTIONS)
    readonly_fields = ("project",)

    def has_add_permission(self, request, obj=None):
        return False  # made with its project (profile_for)

    def has_delete_permission(self, request, obj=None):
        return False  # deleting would reset the options to defaults, unaudited

    def save_model(self, request, obj, form, change):
        services.deid_profile_update(
            actor=request.user,
            project=obj.project,
            options={name: form.cleaned_data[name] for name in services.PROFILE_OPTIONS},
        )


@admin.register(MaskTemplate)
class MaskTemplateAdmin(ReadOnlyAdmin):
    """Boxes are applied to later uploads without a person: never edited here. Deleting one is
    allowed (its device's images are held for a person again) and goes through the audited service."""

    list_display = ("project", "manufacturer", "model_name", "columns", "rows", "created")
    list_filter = ("project",)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def delete_model(self, request, obj):
        services.mask_template_delete(actor=request.user, template_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for pk in queryset.values_list("pk", flat=True):
            services.mask_template_delete(actor=request.user, template_id=pk)


# PatientLink is deliberately not in the Django admin: its only reader is the audited page.
