from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from clinic_ai.core.models import UUIDModel


class User(AbstractUser):
    """Site admins are superusers; every other right comes from a project role."""

    @property
    def is_site_admin(self) -> bool:
        return self.is_active and self.is_superuser


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    RADIOLOGIST = "radiologist", "Radiologist"
    CLINICIAN = "clinician", "Clinician (annotator)"


class TaskType(models.TextChoices):
    BINARY = "binary", "Binary"
    MULTICLASS = "multiclass", "Multi-class"
    MULTILABEL = "multilabel", "Multi-label"


class Project(UUIDModel):
    """One clinical question, with its label schema, members and (later) ensemble."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    task_type = models.CharField(max_length=16, choices=TaskType.choices, default=TaskType.BINARY)
    class_names = models.JSONField(default=list, help_text="Ordered class names")
    members = models.ManyToManyField("accounts.User", through="Membership", related_name="projects")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("accounts:project_detail", kwargs={"project_id": self.pk})

    def clean(self) -> None:
        names = self.class_names
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValidationError({"class_names": "Class names must be a list of non-empty names."})
        if len({n.strip().lower() for n in names}) != len(names):
            raise ValidationError({"class_names": "Class names must be unique."})
        if self.task_type == TaskType.BINARY and len(names) != 2:
            raise ValidationError({"class_names": "A binary project has exactly two classes."})
        if self.task_type != TaskType.BINARY and len(names) < 2:
            raise ValidationError({"class_names": "Give at least two classes."})


class Membership(UUIDModel):
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="one_role_per_user_and_project")]
        ordering = ["project__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} · {self.project} · {self.get_role_display()}"
