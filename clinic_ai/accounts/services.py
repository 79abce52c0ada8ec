"""Writes to users, projects and memberships. Each writes its audit event."""

from django.core.exceptions import ValidationError
from django.db import transaction

from clinic_ai.accounts.models import Membership, Project, Role, User
from clinic_ai.core.services import audit_record


@transaction.atomic
def project_create(
    *, actor: User | None, name: str, description: str = "", task_type: str, class_names: list[str]
) -> Project:
    project = Project(name=name, description=description, task_type=task_type, class_names=class_names)
    project.full_clean()
    project.save()
    audit_record(action="project.create", actor=actor, project=project, obj=project)
    return project


@transaction.atomic
def project_update(*, actor: User, project: Project, **fields) -> Project:
    for name, value in fields.items():
        setattr(project, name, value)
    project.full_clean()
    project.save()
    audit_record(action="project.update", actor=actor, project=project, obj=project, data={"fields": sorted(fields)})
    return project


def _lock_project(project: Project) -> None:
    """Membership changes of one project run one at a time, so two admins demoting each other
    at the same moment cannot leave the project without one."""
    Project.objects.select_for_update().filter(pk=project.pk).first()


def _is_last_admin(project: Project, *, user_id) -> bool:
    admins = set(project.memberships.filter(role=Role.ADMIN).values_list("user_id", flat=True))
    return admins == {user_id}


@transaction.atomic
def membership_set(*, actor: User | None, project: Project, user: User, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError("Unknown role.")
    _lock_project(project)
    if role != Role.ADMIN and _is_last_admin(project, user_id=user.pk):
        raise ValidationError("A project keeps at least one admin: make another member admin first.")
    membership, created = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    audit_record(
        action="membership.create" if created else "membership.update",
        actor=actor,
        project=project,
        obj=membership,
        data={"user_id": user.pk, "role": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: User, membership: Membership) -> None:
    project = membership.project
    _lock_project(project)
    if _is_last_admin(project, user_id=membership.user_id):
        raise ValidationError("A project keeps at least one admin: make another member admin first.")
    audit_record(
        action="membership.delete", actor=actor, project=project, obj=membership, data={"user_id": membership.user_id}
    )
    membership.delete()
