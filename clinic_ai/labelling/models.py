from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from clinic_ai.core.models import UUIDModel

# Every reader may say an image cannot be graded, whatever the project's classes are.
UNGRADABLE = "ungradable"
# Readers never see other readers' labels: agreement is only worth measuring between independent reads.
READERS_SEE_OTHERS_LABELS = False
# Time per label, as measured by the browser, is refused beyond this (a reader who walked away).
MAX_SECONDS_PER_LABEL = 600


class LabellingSettings(UUIDModel):
    """How a project is labelled. Made with defaults the first time it is read."""

    project = models.OneToOneField("accounts.Project", on_delete=models.CASCADE, related_name="labelling_settings")
    readers_per_image = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="Independent readers who label each image before it leaves the queue.",
    )
    readers_see_ai_result = models.BooleanField(
        default=False, help_text="Show readers the AI result while they label (it biases them: off by default)."
    )

    def __str__(self) -> str:
        return f"Labelling settings of {self.project}"


class LabelSource(models.TextChoices):
    READER = "reader", "Reader"
    UPLOAD = "upload", "Upload"
    REVIEW = "review", "Review"


class Label(UUIDModel):
    """One person's label of one image.

    A reader labels an image once: changing or undoing a label keeps the old row with
    `is_current=False` (the history), so at most one current row per image, reader and source
    (and, for source "review", one review decision and one adjudication).
    """

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="labels")
    image = models.ForeignKey("studies.Image", on_delete=models.CASCADE, related_name="labels")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="labels")
    values = models.JSONField(help_text='Class names, or ["ungradable"]')
    source = models.CharField(max_length=8, choices=LabelSource.choices, default=LabelSource.READER)
    adjudication = models.BooleanField(default=False, help_text="A radiologist's final word where readers disagreed")
    seconds = models.FloatField(null=True, blank=True, help_text="Time the reader spent, measured by the browser")
    is_current = models.BooleanField(default=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # The browser's id for one label attempt: a retried or repeated request stores the label once.
    request_id = models.UUIDField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["created"]
        constraints = [
            # A radiologist may hold both a review decision and an adjudication of one image.
            models.UniqueConstraint(
                fields=["image", "reader", "source", "adjudication"],
                condition=Q(is_current=True),
                name="one_current_label_per_reader",
            )
        ]
        indexes = [models.Index(fields=["project", "source", "is_current"])]

    def __str__(self) -> str:
        return f"{', '.join(self.values)} ({self.get_source_display()})"
