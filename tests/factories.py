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


# --- Clinical rows made directly, for tests of reads (dashboards, lists) that need no pipeline -----


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "studies.Study"

    project = factory.SubFactory(ProjectFactory)
    study_instance_uid = factory.Sequence(lambda n: f"2.25.{n + 1000}")


class SeriesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "studies.Series"

    study = factory.SubFactory(StudyFactory)
    series_instance_uid = factory.Sequence(lambda n: f"2.25.9{n + 1000}")


class ImageFactory(factory.django.DjangoModelFactory):
    """A released image row (no file behind it: enough for reads that never open the pixels)."""

    class Meta:
        model = "studies.Image"

    project = factory.SubFactory(ProjectFactory)
    study = factory.SubFactory(StudyFactory, project=factory.SelfAttribute("..project"))
    series = factory.SubFactory(SeriesFactory, study=factory.SelfAttribute("..study"))
    uploaded_by = factory.SubFactory(UserFactory)
    kind = "png"
    status = "released"
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    rows = 28
    columns = 28
    released_at = factory.LazyFunction(timezone.now)


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


class EnsembleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "inference.Ensemble"

    project = factory.SubFactory(ProjectFactory)
    slug = factory.Sequence(lambda n: f"ensemble-{n}")
    name = "Test ensemble"
    version = factory.Sequence(lambda n: str(n + 1))
    threshold = 0.5


class EnsembleMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "inference.EnsembleMember"

    ensemble = factory.SubFactory(EnsembleFactory)
    model_version = factory.SubFactory(ModelVersionFactory, project=factory.SelfAttribute("..ensemble.project"))
    position = factory.Sequence(lambda n: n)


class InferenceResultFactory(factory.django.DjangoModelFactory):
    """A finished result; pass `probabilities` (class -> p) and `labels` (the call)."""

    class Meta:
        model = "inference.InferenceResult"

    image = factory.SubFactory(ImageFactory)
    ensemble = factory.SubFactory(EnsembleFactory, project=factory.SelfAttribute("..image.project"))
    status = "done"
    finished_at = factory.LazyFunction(timezone.now)


class LabelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "labelling.Label"

    image = factory.SubFactory(ImageFactory)
    project = factory.SelfAttribute("image.project")
    reader = factory.SubFactory(UserFactory)
    values = factory.LazyFunction(lambda: ["normal"])
    source = "reader"
