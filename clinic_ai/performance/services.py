"""Writes of the performance app: only the audit of what an admin downloads (the figures and the
predictions list leave the application with pseudonymised identifiers only)."""

from clinic_ai.accounts.models import Project, User
from clinic_ai.core.services import audit_record
from clinic_ai.inference.models import Ensemble


def performance_export_record(*, actor: User, project: Project, ensemble: Ensemble, kind: str, rows: int) -> None:
    audit_record(
        action="performance.export",
        actor=actor,
        project=project,
        obj=ensemble,
        data={"kind": kind, "rows": rows},
    )
