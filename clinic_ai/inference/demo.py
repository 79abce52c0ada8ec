"""The demo ensemble: the trained files shipped in `demo/` registered, validated and activated.

Used by `manage.py demo_setup` (and so by `make run`): nothing is trained or downloaded. Validation
runs here, with the worker's own code, because the worker is not started yet when `make run` sets up.
"""

import json
from pathlib import Path

from django.db import transaction

from clinic_ai.accounts.models import Project
from clinic_ai.inference import services, worker
from clinic_ai.inference.models import Ensemble, ModelStatus, ModelVersion

DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_SPEC = DEMO_DIR / "ensemble.json"
DEMO_SLUG = "pneumonia-demo"


def demo_ensemble_install(*, project: Project) -> Ensemble:
    """Register the demo models in `project` and make their ensemble its active one (idempotent)."""
    existing = Ensemble.objects.filter(slug=DEMO_SLUG).first()
    if existing is not None:
        return existing
    spec = json.loads(DEMO_SPEC.read_text())
    version = str(spec.get("version", "1"))
    members = []
    for member in spec["members"]:
        model = ModelVersion.objects.filter(project=project, name=member["name"], version=version).first()
        if model is None:
            model = services.model_version_register(
                actor=None,
                project=project,
                source=DEMO_DIR / member["file"],
                name=member["name"],
                version=version,
                architecture=member.get("architecture", ""),
                preprocessing=spec["preprocessing"],
                class_names=spec["class_names"],
                task_type=spec.get("task", "binary"),
                last_conv_layer=member.get("last_conv_layer") or "",
                validation=member.get("validation") or {},
                model_card=member.get("model_card", ""),
            )
        if model.status == ModelStatus.VALIDATING:
            worker.model_version_validate(model_version_id=model.pk)
            model.refresh_from_db()
        members.append((model, float(member.get("weight", 1.0))))
    with transaction.atomic():
        ensemble = services.ensemble_create(
            actor=None,
            project=project,
            name=spec.get("name", "Pneumonia demo ensemble"),
            slug=DEMO_SLUG,
            version=version,
            members=members,
            temperature=float(spec.get("temperature", 1.0)),
            threshold=float(spec.get("threshold", 0.5)),
            combination=spec.get("combination", "mean_logit"),
            tta=bool(spec.get("tta", False)),
            validation=spec.get("validation") or {},
            model_card=spec.get("model_card", ""),
        )
        return services.ensemble_activate(actor=None, ensemble=ensemble)
