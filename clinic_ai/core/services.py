from typing import Any

from django.db import models

from clinic_ai.core.models import AuditEvent


def audit_record(
    *,
    action: str,
    actor=None,
    project=None,
    obj: models.Model | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit event. Callers pass ids and counts only, never patient data."""
    return AuditEvent.objects.create(
        action=action,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        project=project,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        data=data or {},
    )
