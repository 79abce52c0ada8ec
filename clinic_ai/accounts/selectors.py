"""Reads of projects and roles. Every clinical view starts here."""

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404

from clinic_ai.accounts.models import Membership, Project, Role, User


def projects_for_user(user: User) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_site_admin:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def role_in_project(user: User, project: Project) -> str | None:
    """The user's role in the project; site admins act as project admins everywhere."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_site_admin:
        return Role.ADMIN
    cache = getattr(user, "_project_roles", None)
    if cache is None:
        cache = user._project_roles = {}
    if project.pk not in cache:
        cache[project.pk] = Membership.objects.filter(user=user, project=project).values_list("role", flat=True).first()
    return cache[project.pk]


def require_role(user: User, project: Project, roles: Iterable[str] | None) -> str:
    """Outsiders get 404 (the project's existence is not theirs to know); members without the role get 403."""
    role = role_in_project(user, project)
    if role is None:
        raise Http404("No such project")
    if roles is not None and role not in set(roles):
        raise PermissionDenied("Your role in this project does not allow this.")
    return role


def get_project_for_user(user: User, project_id, *, roles: Iterable[str] | None = None) -> Project:
    try:
        project = Project.objects.get(pk=project_id)
    except (Project.DoesNotExist, ValueError, TypeError, ValidationError):
        raise Http404("No such project") from None
    require_role(user, project, roles)
    return project


UPLOAD_ROLES = (Role.ADMIN, Role.RADIOLOGIST)
MANAGE_ROLES = (Role.ADMIN,)
