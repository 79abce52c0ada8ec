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


@transaction.atomic
def membership_set(*, actor: User | None, project: Project, user: User, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}")
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
    remaining_admins = project.memberships.filter(role=Role.ADMIN).exclude(pk=membership.pk)
    if membership.role == Role.ADMIN and not remaining_admins.exists():
        raise ValidationError("A project keeps at least one admin.")
    audit_record(
        action="membership.delete", actor=actor, project=project, obj=membership, data={"user_id": membership.user_id}
    )
    membership.delete()
