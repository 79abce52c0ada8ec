from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from clinic_ai.accounts.forms import AdminLoginForm
from clinic_ai.accounts.models import Membership, Project, User

# The admin's log-in page counts failed log-ins like ours: both forms share the throttle.
admin.site.login_form = AdminLoginForm


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ("user",)


@admin.register(User)
class ClinicUserAdmin(UserAdmin):
    pass


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "task_type", "created")
    search_fields = ("name",)
    inlines = [MembershipInline]
