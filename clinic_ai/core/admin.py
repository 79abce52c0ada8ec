from django.contrib import admin

from clinic_ai.core.models import AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the pipeline (or a service) writes: site admins may look, never add, change or delete.

    A status or path set by hand skips the audit trail, the release gate and the files that go
    with it (a held image "released" in the admin had no released file and no audit row), so
    every change goes through the service that owns it.
    """

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created", "action", "actor", "project", "object_type", "object_id")
    list_filter = ("action", "project")
    search_fields = ("object_id", "action")
