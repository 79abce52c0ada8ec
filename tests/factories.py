import math

import factory
from django.utils import timezone

from clinic_ai.accounts.models import Membership, Project, Role, TaskType, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    task_type = TaskType.BINARY
    class_names = factory.LazyFunction(lambda: ["normal", "pneumonia"])


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    project = factory.SubFactory(ProjectFactory)
    role = Role.RADIOLOGIST


# --- Rows of released images and AI results, made directly (no upload, no TensorFlow) ----------------
# For tests about what happens after the pipeline (review, dashboards): the preview file does not
# exist, so use the real pipeline (tests/conftest.py) where an image must be drawn.


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "studies.Study"

    project = factory.SubFactory(ProjectFactory)
    study_instance_uid = factory.Sequence(lambda n: f"2.25.{1000 + n}")
    modality = "CR"


class SeriesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "studies.Series"

    study = factory.SubFactory(StudyFactory)
    series_instance_uid = factory.Sequence(lambda n: f"2.25.{5000 + n}")
    modality = "CR"
    series_number = 1


class ImageFactory(factory.django.DjangoModelFactory):
    """A released image with a ready preview (as rows only)."""

    class Meta:
        model = "studies.Image"

    project = factory.SubFactory(ProjectFactory)
    study = factory.SubFactory(StudyFactory, project=factory.SelfAttribute("..project"))
    series = factory.SubFactory(SeriesFactory, study=factory.SelfAttribute("..study"))
    uploaded_by = factory.SubFactory(UserFactory)
    kind = "dicom"
    status = "released"
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    modality = "CR"
    rows = 64
    columns = 64
    released_at = factory.LazyFunction(timezone.now)
    preview_status = "ready"


class EnsembleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "inference.Ensemble"

    project = factory.SubFactory(ProjectFactory)
    slug = factory.Sequence(lambda n: f"ensemble-{n}")
    name = "Test ensemble"
    is_active = True


def _binary_result(p: float, spread: float) -> dict:
    """A binary result as the worker stores it: P(positive) = p, members p ± spread."""

    def probs(q):
        return {"normal": 1 - q, "pneumonia": q}

    entropy = -sum(q * math.log(q) for q in (p, 1 - p) if q > 0)
    return {
        "probabilities": probs(p),
        "labels": ["pneumonia"] if p >= 0.5 else ["normal"],
        "target_class": "pneumonia" if p >= 0.5 else "normal",
        "members": [
            {"name": "cnn-a", "weight": 1.0, "probabilities": probs(min(1.0, p + spread))},
            {"name": "cnn-b", "weight": 1.0, "probabilities": probs(max(0.0, p - spread))},
        ],
        "uncertainty": {"member_std": spread, "entropy": entropy, "mutual_information": spread / 10},
        "versions": {"ensemble": "Test ensemble v1", "cnn-a": "cnn-a v1", "cnn-b": "cnn-b v2"},
    }


class InferenceResultFactory(factory.django.DjangoModelFactory):
    """A finished result of a binary ensemble. `p` is the probability of the positive class ("pneumonia"),
    `spread` the members' disagreement."""

    class Meta:
        model = "inference.InferenceResult"
        exclude = ("p", "spread", "made")

    p = 0.8
    spread = 0.05
    made = factory.LazyAttribute(lambda o: _binary_result(o.p, o.spread))
    image = factory.SubFactory(ImageFactory)
    ensemble = factory.SubFactory(EnsembleFactory, project=factory.SelfAttribute("..image.project"))
    status = "done"
    probabilities = factory.LazyAttribute(lambda o: o.made["probabilities"])
    labels = factory.LazyAttribute(lambda o: o.made["labels"])
    target_class = factory.LazyAttribute(lambda o: o.made["target_class"])
    members = factory.LazyAttribute(lambda o: o.made["members"])
    uncertainty = factory.LazyAttribute(lambda o: o.made["uncertainty"])
    versions = factory.LazyAttribute(lambda o: o.made["versions"])


# --- The registry and labels, made directly (the performance dashboards' tests) ---------------------


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "inference.ModelVersion"

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"model{n}")
    version = "1"
    file_path = factory.LazyAttribute(lambda o: f"models/{o.name}.keras")
    sha256 = "0" * 64
    class_names = factory.LazyAttribute(lambda o: list(o.project.class_names))
    task_type = factory.LazyAttribute(lambda o: o.project.task_type)
    status = "valid"


class EnsembleMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "inference.EnsembleMember"

    ensemble = factory.SubFactory(EnsembleFactory)
    model_version = factory.SubFactory(ModelVersionFactory, project=factory.SelfAttribute("..ensemble.project"))
    position = factory.Sequence(lambda n: n)


class LabelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "labelling.Label"

    image = factory.SubFactory(ImageFactory)
    project = factory.SelfAttribute("image.project")
    reader = factory.SubFactory(UserFactory)
    values = factory.LazyFunction(lambda: ["normal"])
    source = "reader"
