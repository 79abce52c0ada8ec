from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clinic_ai.accounts.forms import LoginForm, MemberForm, ProjectForm
from clinic_ai.accounts.models import Membership
from clinic_ai.accounts.selectors import MANAGE_ROLES, get_project_for_user, projects_for_user, role_in_project
from clinic_ai.accounts.services import membership_remove, membership_set, project_create, project_update
from clinic_ai.studies.models import ImageStatus


@login_required
def home(request):
    projects = projects_for_user(request.user).annotate(
        # A study whose images are all held is not shown to clinicians: not counted either.
        study_count=Count("studies", filter=Q(studies__images__status=ImageStatus.RELEASED), distinct=True),
        released_count=Count("images", filter=Q(images__status=ImageStatus.RELEASED), distinct=True),
    )
    return render(request, "accounts/home.html", {"projects": projects})


def _project_page(request, project, *, member_form=None, member_errors=(), status=200):
    memberships = project.memberships.select_related("user")
    return render(
        request,
        "accounts/project_detail.html",
        {
            "project": project,
            "role": role_in_project(request.user, project),
            "memberships": memberships,
            "member_form": member_form or MemberForm(),
            "member_errors": [*member_errors, *(member_form.non_field_errors() if member_form else [])],
        },
        status=status,
    )


@login_required
def project_detail(request, project_id):
    return _project_page(request, get_project_for_user(request.user, project_id))


@login_required
def project_create_view(request):
    if not request.user.is_site_admin:
        raise PermissionDenied("Only site admins create projects.")
    form = ProjectForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            project = project_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            membership_set(actor=request.user, project=project, user=request.user, role="admin")
            messages.success(request, "Project created.")
            return redirect(project)
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/project_form.html", {"form": form, "title": "New project"}, status=status)


@login_required
def project_update_view(request, project_id):
    project = get_project_for_user(request.user, project_id, roles=MANAGE_ROLES)
    form = ProjectForm(request.POST if request.method == "POST" else None, instance=project)
    if request.method == "POST" and form.is_valid():
        try:
            project_update(actor=request.user, project=project, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Project saved.")
            return redirect(project)
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/project_form.html", {"form": form, "title": f"Edit {project.name}"}, status=status)


@login_required
@require_POST
def member_set(request, project_id):
    project = get_project_for_user(request.user, project_id, roles=MANAGE_ROLES)
    form = MemberForm(request.POST)
    if form.is_valid():
        try:
            membership_set(
                actor=request.user, project=project, user=form.cleaned_data["username"], role=form.cleaned_data["role"]
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Member saved.")
            return redirect(project)
    return _project_page(request, project, member_form=form, status=400)


@login_required
@require_POST
def member_remove(request, project_id, membership_id):
    project = get_project_for_user(request.user, project_id, roles=MANAGE_ROLES)
    try:
        membership = Membership.objects.select_related("project").get(pk=membership_id, project=project)
    except (Membership.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such member") from None
    try:
        membership_remove(actor=request.user, membership=membership)
    except ValidationError as exc:
        return _project_page(request, project, member_errors=exc.messages, status=400)
    messages.success(request, "Member removed.")
    return redirect(project)


class LoginView(auth_views.LoginView):
    """Django's log-in page with the throttled form; a throttled attempt answers 429."""

    form_class = LoginForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, code="throttled"):
            response.status_code = 429
        return response
