"""A radiologist's decision on an AI result, kept with its history.

Each decision writes a label with source "review" (the radiologist as reader): the label is what
training and the dashboards read; the review row says how it came about (agree, disagree, ungradable)
and which result was judged. A radiologist who changes their mind leaves the old row and its label
in place, no longer current, so at most one current review per image and radiologist.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from clinic_ai.core.models import UUIDModel

MAX_COMMENT_CHARS = 1000


class Decision(models.TextChoices):
    AGREE = "agree", "Agree"
    DISAGREE = "disagree", "Disagree"
    UNGRADABLE = "ungradable", "Ungradable"


class Review(UUIDModel):
    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="reviews")
    image = models.ForeignKey("studies.Image", on_delete=models.CASCADE, related_name="reviews")
    result = models.ForeignKey("inference.InferenceResult", on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    comment = models.CharField(max_length=MAX_COMMENT_CHARS, blank=True)
    # What the AI called when the radiologist judged it: a result run again may call something else.
    ai_labels = models.JSONField(default=list, blank=True)
    # RESTRICT, not PROTECT: deleting an image deletes its labels and reviews together.
    label = models.ForeignKey("labelling.Label", on_delete=models.RESTRICT, related_name="reviews")
    is_current = models.BooleanField(default=True)
    # The form's id for one decision: a double click or a resent form stores the decision once.
    request_id = models.UUIDField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["image", "reviewer"], condition=Q(is_current=True), name="one_current_review_per_reviewer"
            )
        ]
        indexes = [models.Index(fields=["result", "is_current"])]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.reviewer}"
