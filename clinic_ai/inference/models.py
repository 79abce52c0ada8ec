"""The model registry, ensembles and one result row per image and ensemble version.

Model files live on the storage that holds released images (MEDIA_ROOT/models/...), never at a
public URL; heatmaps beside them (MEDIA_ROOT/heatmaps/...), served only through views that check
the user's role in the image's project.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from clinic_ai.core.models import UUIDModel


class ModelStatus(models.TextChoices):
    VALIDATING = "validating", "Being validated"
    VALID = "valid", "Valid"
    INVALID = "invalid", "Refused"


class ModelVersion(UUIDModel):
    """A Keras 3 `.keras` file with what is needed to run it the way it was trained."""

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="model_versions")
    name = models.CharField(max_length=100)
    version = models.CharField(max_length=32)
    architecture = models.CharField(max_length=100, blank=True)
    file_path = models.CharField(max_length=255, help_text="Relative to MEDIA_ROOT")
    sha256 = models.CharField(max_length=64)
    # The preprocessing is part of the version: input size, channels, scaling.
    preprocessing = models.JSONField(default=dict)
    class_names = models.JSONField(default=list)
    task_type = models.CharField(max_length=16)
    last_conv_layer = models.CharField(max_length=200, blank=True)
    validation = models.JSONField(default=dict, blank=True, help_text="Figures on validation data")
    model_card = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.VALIDATING)
    status_reason = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["project", "name", "-created"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name", "version"], name="one_model_version_per_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


class Ensemble(UUIDModel):
    """Members with weights, combined by the mean of temperature-scaled logits, decided at `threshold`."""

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="ensembles")
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    version = models.CharField(max_length=32, default="1")
    is_active = models.BooleanField(default=False)
    combination = models.CharField(max_length=32, default="mean_logit")
    temperature = models.FloatField(default=1.0)
    threshold = models.FloatField(default=0.5, help_text="Probability of the positive class at which it is called")
    tta = models.BooleanField(
        default=False, help_text="Test-time augmentation: average each member over the image and its 1-pixel shifts"
    )
    validation = models.JSONField(default=dict, blank=True)
    model_card = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["project", "-is_active", "-created"]
        constraints = [
            models.UniqueConstraint(fields=["project"], condition=Q(is_active=True), name="one_active_ensemble"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


class EnsembleMember(models.Model):
    ensemble = models.ForeignKey(Ensemble, on_delete=models.CASCADE, related_name="members")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    weight = models.FloatField(default=1.0)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["ensemble", "position"]
        constraints = [
            models.UniqueConstraint(fields=["ensemble", "model_version"], name="one_membership_per_model"),
        ]

    def __str__(self) -> str:
        return f"{self.model_version} × {self.weight:g}"


class ResultStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class InferenceResult(UUIDModel):
    """One image through one ensemble version. `claim` is the task that works on it: a task
    delivered again (its worker died) takes its own rows back, and only the claimant finishes a row."""

    image = models.ForeignKey("studies.Image", on_delete=models.CASCADE, related_name="inference_results")
    ensemble = models.ForeignKey(Ensemble, on_delete=models.CASCADE, related_name="results")
    status = models.CharField(max_length=16, choices=ResultStatus.choices, default=ResultStatus.QUEUED)
    reason = models.CharField(max_length=255, blank=True)
    claim = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    labels = models.JSONField(default=list, blank=True)
    target_class = models.CharField(max_length=100, blank=True)
    probabilities = models.JSONField(default=dict, blank=True)
    members = models.JSONField(default=list, blank=True)
    uncertainty = models.JSONField(default=dict, blank=True)
    heatmaps = models.JSONField(default=dict, blank=True, help_text="Name -> path relative to MEDIA_ROOT")
    timings = models.JSONField(default=dict, blank=True)
    versions = models.JSONField(default=dict, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(fields=["image", "ensemble"], name="one_result_per_image_and_ensemble"),
        ]
        indexes = [models.Index(fields=["ensemble", "status"])]

    @property
    def is_finished(self) -> bool:
        return self.status in (ResultStatus.DONE, ResultStatus.FAILED)
