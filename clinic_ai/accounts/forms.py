from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from clinic_ai.accounts import throttle
from clinic_ai.accounts.models import Project, Role, TaskType, User


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    task_type = forms.ChoiceField(choices=TaskType.choices)
    class_names = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One class per line, in order (a binary project has two, negative first).",
    )

    def __init__(self, *args, instance: Project | None = None, **kwargs):
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": instance.name,
                    "description": instance.description,
                    "task_type": instance.task_type,
                    "class_names": "\n".join(instance.class_names),
                },
            )
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", "Save"))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        clash = Project.objects.filter(name__iexact=name)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("A project with this name exists.")
        return name

    def clean_class_names(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["class_names"].splitlines() if line.strip()]


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_class = "row row-cols-lg-auto g-2 align-items-end"
        self.helper.add_input(Submit("submit", "Add or change"))

    def clean_username(self) -> User:
        try:
            return User.objects.get(username=self.cleaned_data["username"].strip(), is_active=True)
        except User.DoesNotExist:
            raise forms.ValidationError("No active user with this username.") from None


class ThrottledLoginMixin:
    """Log-in forms (ours and the admin's) count failures and refuse while a limit is reached."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return self.cleaned_data
        ip = throttle.client_ip(self.request)
        if throttle.login_blocked(username=username, ip=ip):
            raise _throttled()
        try:
            super().clean()
        except forms.ValidationError as exc:
            if getattr(self, "user_cache", None) is None:
                if throttle.login_failure_record(username=username, ip=ip):
                    raise _throttled() from None
            raise exc from None
        throttle.login_success_record(username=username, ip=ip)
        return self.cleaned_data


def _throttled() -> forms.ValidationError:
    # The same words for every username, known or not: the answer tells nothing about accounts.
    minutes = max(1, round(settings.LOGIN_THROTTLE_WINDOW / 60))
    return forms.ValidationError(
        "Too many failed log-ins for this username or from this computer's network address. "
        "Log-in is paused: try again in %(minutes)d minutes, or ask a site admin for help.",
        code="throttled",
        params={"minutes": minutes},
    )


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
