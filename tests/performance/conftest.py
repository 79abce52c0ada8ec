from datetime import timedelta

import pytest
from django.utils import timezone

from clinic_ai.accounts.models import Role
from clinic_ai.review.services import review_decide
from tests.factories import (
    EnsembleFactory,
    EnsembleMemberFactory,
    ImageFactory,
    InferenceResultFactory,
    LabelFactory,
    ModelVersionFactory,
)

# The hand example of test_metrics.py: truth (1 = pneumonia) and the ensemble's p(pneumonia).
Y = [0, 0, 0, 0, 1, 1, 1, 1]
S = [0.1, 0.3, 0.65, 0.45, 0.85, 0.45, 0.95, 0.25]
CLASSES = ("normal", "pneumonia")


def add_result(ensemble, image, p: float, *, members=None, finished_at=None):
    """A finished result of `ensemble` for `image`: p(pneumonia), called at the ensemble's threshold;
    members as {name: p(pneumonia)}."""
    call = "pneumonia" if p >= ensemble.threshold else "normal"
    return InferenceResultFactory(
        image=image,
        ensemble=ensemble,
        labels=[call],
        target_class=call,
        probabilities={"normal": 1 - p, "pneumonia": p},
        members=[
            {"name": name, "weight": 0.5, "probabilities": {"normal": 1 - q, "pneumonia": q}}
            for name, q in (members or {}).items()
        ],
        finished_at=finished_at or timezone.now(),
    )


@pytest.fixture
def world(project, project_admin, member_of):
    """The hand example as ten results of the active ensemble (members "alpha" = the ensemble's
    probabilities, "beta" = their mirror image): cases 0–7 have truth (upload labels, and two
    radiologist reviews: case 4 agrees with the AI, case 2 corrects it), case 8 was labelled
    ungradable, case 9 has no label. An older ensemble has one result."""
    radiologist = member_of(project, Role.RADIOLOGIST)
    ensemble = EnsembleFactory(project=project, is_active=True, name="Pneumonia", version="2")
    for name in ("alpha", "beta"):
        EnsembleMemberFactory(ensemble=ensemble, model_version=ModelVersionFactory(project=project, name=name))
    old = EnsembleFactory(project=project, is_active=False, name="Pneumonia", version="1")
    now = timezone.now()
    images, results = [], []
    for i, p in enumerate([*S, 0.7, 0.2]):
        image = ImageFactory(project=project, uploaded_by=project_admin)
        results.append(
            add_result(ensemble, image, p, members={"alpha": p, "beta": 1 - p}, finished_at=now - timedelta(minutes=i))
        )
        images.append(image)
    for i, truth in enumerate(Y):
        if i not in (2, 4):
            LabelFactory(image=images[i], reader=project_admin, source="upload", values=[CLASSES[truth]])
    # The reviews through the review service, as the review page stores them.
    review_decide(actor=radiologist, project=project, image=images[4], result=results[4], decision="agree")
    review_decide(
        actor=radiologist, project=project, image=images[2], result=results[2], decision="disagree", values=["normal"]
    )
    LabelFactory(image=images[8], reader=project_admin, source="upload", values=["ungradable"])
    add_result(old, images[0], 0.9)
    return {"project": project, "ensemble": ensemble, "old": old, "images": images, "radiologist": radiologist}
