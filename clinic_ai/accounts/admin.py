from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from clinic_ai.accounts.forms import AdminLoginForm
from clinic_ai.accounts.models import Membership, Project, User
from clinic_ai.accounts.services import project_update

# The admin's log-in page counts failed log-ins like ours: both forms share the throttle.
admin.site.login_form = AdminLoginForm


class MembershipInline(admin.TabularInline):
    """Shown, not edited: roles change on the project page, through the audited membership services."""

    model = Membership
    extra = 0
    fields = ("user", "role", "created")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(User)
class ClinicUserAdmin(UserAdmin):
    pass


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    """Name and classes change through `project_update` (audited). No adding here (the project page
    makes its first admin too) and no deleting: it would cascade through studies and images, and
    leave their files behind."""

    list_display = ("name", "task_type", "created")
    search_fields = ("name",)
    fields = ("name", "description", "task_type", "class_names")
    inlines = [MembershipInline]

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        project_update(actor=request.user, project=obj, **{name: form.cleaned_data[name] for name in form.changed_data})
