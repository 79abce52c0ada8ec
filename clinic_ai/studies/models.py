from django.conf import settings
from django.db import models
from django.urls import reverse

from clinic_ai.core.models import UUIDModel


class UploadLabelMode(models.TextChoices):
    """How the files of an upload get their labels at source (chosen on the upload page)."""

    NONE = "none", "No labels"
    BATCH = "batch", "One label for the whole upload"
    FOLDERS = "folders", "From folder names"
    CSV = "csv", "From a CSV of file names and labels"


class UploadBatch(UUIDModel):
    """One browser upload: many files, one progress view."""

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="upload_batches")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # PNG/JPEG files go to this study when the uploader picked one; else to one new study per batch.
    target_study = models.ForeignKey(
        "studies.Study", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    # The browser's file names are kept for UPLOAD_NAME_RETENTION_HOURS after the upload, then erased.
    names_erased_at = models.DateTimeField(null=True, blank=True)
    label_mode = models.CharField(max_length=8, choices=UploadLabelMode.choices, default=UploadLabelMode.NONE)
    # The one label of every file (mode "batch"), cleaned against the project's classes.
    label_values = models.JSONField(null=True, blank=True, default=None)
    # Mode "csv": what the CSV held, by line number only (no names): {"rows", "labelled", "bad_rows",
    # "bad_count"}; empty until the CSV arrives (files are refused until then). Its names and labels
    # are UploadLabelName rows.
    label_csv_report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created"]


class UploadStatus(models.TextChoices):
    RECEIVING = "receiving", "Uploading"
    RECEIVED = "received", "Waiting"
    PROCESSING = "processing", "Checking"
    UNPACKED = "unpacked", "Unpacked"
    ACCEPTED = "accepted", "Accepted"
    DUPLICATE = "duplicate", "Already uploaded"
    REJECTED = "rejected", "Rejected"


class UploadLabelName(models.Model):
    """One row of an upload's CSV of labels: a hash of the normalised name (or relative path) and its
    label. One indexed lookup per declared file, so a large CSV is not read again for each file; the
    names themselves are not kept, and the rows are deleted with the upload's file names."""

    batch = models.ForeignKey(UploadBatch, on_delete=models.CASCADE, related_name="label_names")
    name_hash = models.CharField(max_length=64)
    values = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "name_hash"], name="one_label_per_name_and_upload")]

    def __str__(self) -> str:
        return f"CSV label {', '.join(self.values)}"


class UploadLabelState(models.TextChoices):
    NONE = "", "No label asked"
    LABELLED = "labelled", "Labelled"
    # Mode "folders": no enclosing folder is a class; mode "csv": the CSV does not name the file.
    UNMATCHED = "unmatched", "No label found"


UPLOAD_DONE = (UploadStatus.UNPACKED, UploadStatus.ACCEPTED, UploadStatus.DUPLICATE, UploadStatus.REJECTED)


class UploadedFile(UUIDModel):
    """A file as received, before we know what it is. Seen only by its uploader and admins.

    `client_name` is the browser's relative path, which may name a patient: it is shown on the
    upload page and never copied to a released object, a file name, a log line or a task argument.
    """

    batch = models.ForeignKey(UploadBatch, on_delete=models.CASCADE, related_name="files")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="members")
    client_name = models.CharField(max_length=1024)
    declared_size = models.BigIntegerField()
    received = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=UploadStatus.choices, default=UploadStatus.RECEIVING)
    reason = models.TextField(blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    image = models.ForeignKey("studies.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The label chosen at upload, worked out from the name while it is still known (declare or
    # unpack time) and written as a Label (source "upload") when the file is filed as an image.
    label_values = models.JSONField(null=True, blank=True, default=None)
    label_state = models.CharField(max_length=9, choices=UploadLabelState.choices, default="", blank=True)

    class Meta:
        ordering = ["created", "id"]

    @property
    def is_done(self) -> bool:
        return self.status in UPLOAD_DONE


_AGE_UNITS = {"Y": "y", "M": "m", "W": "w", "D": "d"}


def age_display(value: str) -> str:
    if len(value) == 4 and value[:3].isdigit() and value[3] in _AGE_UNITS:
        return f"{int(value[:3])} {_AGE_UNITS[value[3]]}"
    return ""


class Study(UUIDModel):
    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="studies")
    study_instance_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=64, blank=True, help_text="Modalities in the study, comma-separated")
    study_date = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # What the worklist shows, read from the released (de-identified) files at release, never from an
    # original: the pseudonym, and age and sex only when the project retains patient characteristics.
    patient_pseudonym = models.CharField(max_length=64, blank=True, db_index=True)
    patient_age = models.CharField(max_length=4, blank=True, help_text="DICOM age string, e.g. 045Y")
    patient_sex = models.CharField(max_length=1, blank=True, choices=[("M", "male"), ("F", "female"), ("O", "other")])
    body_part = models.CharField(max_length=128, blank=True, help_text="Body parts in the study, comma-separated")
    study_description = models.CharField(max_length=128, blank=True, help_text="Kept only with Clean Descriptors")

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "studies"
        constraints = [
            models.UniqueConstraint(fields=["project", "study_instance_uid"], name="one_study_per_uid_and_project")
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def age_display(self) -> str:
        """'45 y', '3 m', '10 d' from the DICOM age string; empty when not kept."""
        return age_display(self.patient_age)

    @property
    def label(self) -> str:
        when = self.study_date.isoformat() if self.study_date else f"uploaded {self.created:%Y-%m-%d}"
        return f"{self.modality or 'Images'} · {when} · {str(self.pk)[:8]}"

    def get_absolute_url(self) -> str:
        return reverse("studies:study_detail", kwargs={"study_id": self.pk})


class Series(UUIDModel):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=16, blank=True)
    series_number = models.IntegerField(null=True, blank=True)
    body_part = models.CharField(max_length=64, blank=True)
    series_description = models.CharField(max_length=128, blank=True, help_text="Kept only with Clean Descriptors")

    class Meta:
        ordering = ["series_number", "created"]
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(fields=["study", "series_instance_uid"], name="one_series_per_uid_and_study")
        ]


class ImageKind(models.TextChoices):
    DICOM = "dicom", "DICOM"
    PNG = "png", "PNG"
    JPEG = "jpeg", "JPEG"


class ImageStatus(models.TextChoices):
    QUARANTINED = "quarantined", "Quarantined"
    HELD = "held", "Needs masking"
    MASKING = "masking", "Being masked"
    RELEASED = "released", "Released"


class PreviewStatus(models.TextChoices):
    PENDING = "pending", "Rendering"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Image(UUIDModel):
    """One image file (a DICOM instance, single or multi-frame, or a PNG/JPEG).

    While quarantined (or held for masking) the original and the de-identified file live in the
    quarantine root and only the uploader and admins can reach them; at release the de-identified
    file is copied to `released_path` and the quarantined files are purged.
    """

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="images")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="images")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="images")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=ImageKind.choices)
    status = models.CharField(max_length=16, choices=ImageStatus.choices, default=ImageStatus.QUARANTINED)
    # Hash of the bytes as uploaded: recognises a file sent twice without keeping it twice.
    sha256 = models.CharField(max_length=64)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    rows = models.IntegerField()
    columns = models.IntegerField()
    frames = models.IntegerField(default=1)
    metadata = models.JSONField(default=dict, blank=True, help_text="Technical, non-identifying fields only")
    quarantine_path = models.CharField(max_length=255, blank=True)
    # The de-identified file before release (held images wait here to be masked); in quarantine.
    deid_path = models.CharField(max_length=255, blank=True)
    hold_reason = models.CharField(max_length=255, blank=True)
    suggested_boxes = models.JSONField(default=list, blank=True)
    # A person's mask waiting for a worker: {"boxes": [[x0, y0, x1, y1], ...], "save_template", "user_id"}.
    mask_request = models.JSONField(null=True, blank=True, default=None)
    device_manufacturer = models.CharField(max_length=64, blank=True)
    device_model = models.CharField(max_length=64, blank=True)
    released_path = models.CharField(max_length=255, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    preview_path = models.CharField(max_length=255, blank=True)
    preview_status = models.CharField(max_length=8, choices=PreviewStatus.choices, default=PreviewStatus.PENDING)
    preview_error = models.TextField(blank=True)

    class Meta:
        ordering = ["series__series_number", "created"]
        constraints = [models.UniqueConstraint(fields=["project", "sha256"], name="one_image_per_content_and_project")]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} image {str(self.pk)[:8]}"

    def get_absolute_url(self) -> str:
        return reverse("studies:image_detail", kwargs={"image_id": self.pk})
