"""PII masking in the pipeline: keys, patient links, the de-identification step, masking and release.

The decisions live in the pure `pipeline` module; this module adds the database, the files in
quarantine and the audit trail.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pydicom
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from PIL import ImageDraw

from clinic_ai.accounts.models import Project, User
from clinic_ai.core.services import audit_record
from clinic_ai.deid import process as pipeline
from clinic_ai.deid.errors import DeidentificationError
from clinic_ai.deid.ocr import OcrUnavailable, find_text_in_frames
from clinic_ai.deid.options import DeidOptions
from clinic_ai.deid.pixels import Box
from clinic_ai.deid.uids import map_uid
from clinic_ai.deidentification.models import DeidProfile, MaskTemplate, PatientLink
from clinic_ai.studies import imaging, storage
from clinic_ai.studies.models import Image, ImageKind, ImageStatus, Series, Study, UploadedFile, UploadStatus

logger = logging.getLogger(__name__)


class MaskRefused(Exception):
    """A masking request the server will not carry out; `reason` is for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- Keys -------------------------------------------------------------------------------------


def _derive(purpose: str, project: Project) -> bytes:
    return hmac.new(settings.DEID_SECRET.encode(), f"{purpose}:{project.pk}".encode(), hashlib.sha256).digest()


def uid_secret_for(project: Project) -> bytes:
    """Per project, so the same study in two projects cannot be linked through its new UIDs."""
    return _derive("uid", project)


def patient_secret_for(project: Project) -> bytes:
    return _derive("patient", project)


def profile_for(project: Project) -> DeidProfile:
    profile, _ = DeidProfile.objects.get_or_create(project=project)
    return profile


def options_for(profile: DeidProfile) -> DeidOptions:
    return DeidOptions(
        retain_modified_dates=profile.retain_modified_dates,
        retain_patient_characteristics=profile.retain_patient_characteristics,
        clean_descriptors=profile.clean_descriptors,
    )


# --- At upload: how a DICOM file is filed, in de-identified terms ------------------------------


def dicom_filing_identity(*, project: Project, path: Path, study_uid: str, series_uid: str, sop_uid: str, study_date):
    """New UIDs and the shifted study date for the Study/Series/Image rows, and the patient link.

    The rows never hold an original UID or date: they carry the values the released file will have.
    A file whose patient cannot be told apart from others is rejected (:class:`imaging.RejectedFile`).
    """
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
        key, pseudonym, shift = pipeline.keys_for(
            header, secret=patient_secret_for(project), project_key=str(project.pk)
        )
    except DeidentificationError as exc:
        raise imaging.RejectedFile(pipeline.rejection_reason(exc)) from None
    except Exception as exc:  # pydicom's messages can quote header values: keep only the type
        raise imaging.RejectedFile(
            f"The DICOM header could not be read to identify the patient ({type(exc).__name__})."
        ) from None
    profile = profile_for(project)
    uid_secret = uid_secret_for(project)
    shifted: date | None = None
    if study_date is not None and profile.retain_modified_dates:
        shifted = study_date + timedelta(days=shift)
    return {
        "study_uid": map_uid(uid_secret, study_uid) if study_uid else "",
        "series_uid": map_uid(uid_secret, series_uid) if series_uid else "",
        "sop_uid": map_uid(uid_secret, sop_uid) if sop_uid else "",
        "study_date": shifted,
        # Patient data: kept in memory until the image is filed, then in the link table only.
        "patient": (key, pseudonym),
    }


def patient_link_touch(*, project: Project, key: str, pseudonym: str) -> None:
    """Count one more image of this patient in the link table (a new file, not a duplicate)."""
    digest = hmac.new(patient_secret_for(project), key.encode(), hashlib.sha256).hexdigest()
    link, _ = PatientLink.objects.get_or_create(
        project=project, key_digest=digest, defaults={"original_key": key, "pseudonym": pseudonym}
    )
    PatientLink.objects.filter(pk=link.pk).update(image_count=F("image_count") + 1)


# --- The pipeline step ------------------------------------------------------------------------


def _deid_relative_path(image: Image) -> str:
    suffix = {"dicom": "dcm", "png": "png", "jpeg": "jpg"}[image.kind]
    return f"deid/{image.pk}.{suffix}"


def _template_lookup(project: Project):
    def lookup(device: pipeline.Device):
        template = MaskTemplate.objects.filter(
            project=project,
            manufacturer=device.manufacturer,
            model_name=device.model,
            rows=device.rows,
            columns=device.columns,
        ).first()
        return [tuple(box) for box in template.boxes] if template else None

    return lookup


def detect_text(path: Path, kind: str) -> list[Box]:
    """Boxes of burned-in text, in image pixels, over every frame (their union).

    Frames are rendered as the preview is and decoded one at a time; each goes through the cheap
    pre-filter, and only its candidate regions are read by Tesseract (`ocr.find_text_in_frames`).
    Anything that stops the check (an undecodable frame, Tesseract missing or failing, a defect
    in the check itself) raises TextCheckFailed: the image is then held, never released unread.
    """
    try:
        width, height = _image_size(path, kind)
        rendered: list[tuple[int, int]] = []

        def frames():
            for picture in imaging.iter_frames(path, kind, max_size=4096):
                rendered.append(picture.size)
                yield np.asarray(picture)

        found = find_text_in_frames(frames(), timeout=settings.OCR_TIMEOUT)
    except imaging.RejectedFile as exc:
        raise pipeline.TextCheckFailed(exc.reason) from None
    except OcrUnavailable:
        raise pipeline.TextCheckFailed("OCR unavailable") from None
    except Exception as exc:  # fail closed; the type only: a message could quote a value of the file
        logger.warning("Text check failed (%s); the image is held", type(exc).__name__)
        raise pipeline.TextCheckFailed("The text check could not run") from None
    if not rendered:
        raise pipeline.TextCheckFailed("The image has no frame to check")
    # Every frame of one image renders at the same size (downscaled only past 4096 px).
    rendered_width, rendered_height = rendered[0]
    sx, sy = width / rendered_width, height / rendered_height
    return [
        (int(x0 * sx), int(y0 * sy), min(width, int(round(x1 * sx + 0.5))), min(height, int(round(y1 * sy + 0.5))))
        for x0, y0, x1, y1 in found
    ]


def _image_size(path: Path, kind: str) -> tuple[int, int]:
    if kind == "dicom":
        header = pydicom.dcmread(path, stop_before_pixels=True)
        return int(header.Columns), int(header.Rows)
    return pipeline.oriented_size(path, kind)


@dataclass(frozen=True)
class DeidContext:
    """Everything a file's de-identification depends on besides the file."""

    options: DeidOptions
    uid_secret: bytes
    patient_secret: bytes
    project_key: str
    template_for: Callable[[pipeline.Device], Sequence[Box] | None]
    detector: pipeline.TextDetector | None


def context_for_project(project: Project) -> DeidContext:
    profile = profile_for(project)
    return DeidContext(
        options=options_for(profile),
        uid_secret=uid_secret_for(project),
        patient_secret=patient_secret_for(project),
        project_key=str(project.pk),
        template_for=_template_lookup(project),
        detector=detect_text if profile.ocr_enabled else None,
    )


def context_standalone(*, ocr: bool = True) -> DeidContext:
    """For `manage.py deidentify` without a project: default options, deployment-wide keys."""
    base = settings.DEID_SECRET.encode()
    return DeidContext(
        options=DeidOptions(),
        uid_secret=hmac.new(base, b"uid:standalone", hashlib.sha256).digest(),
        patient_secret=hmac.new(base, b"patient:standalone", hashlib.sha256).digest(),
        project_key="standalone",
        template_for=lambda device: None,
        detector=detect_text if ocr else None,
    )


def deidentify_path(src: Path, dst: Path, *, kind: str, context: DeidContext) -> pipeline.Outcome:
    """The one path every file takes, from a browser upload or from `manage.py deidentify`."""
    if kind == "dicom":
        return pipeline.process_dicom(
            src,
            dst,
            options=context.options,
            uid_secret=context.uid_secret,
            patient_secret=context.patient_secret,
            project_key=context.project_key,
            template_for=context.template_for,
            detector=context.detector,
        )
    return pipeline.process_raster(src, dst, detector=context.detector)


def image_deidentify(*, image_id) -> ImageStatus | None:
    """Quarantined -> released, held for masking, or rejected (and then removed); returns the new
    status, or None when the step had already run.

    The file work (de-identification, OCR: seconds) runs before the row is locked, so no database
    lock is held meanwhile; the row is then locked and checked again. Its output is the same for
    the same input, so a second worker on the same image writes the same file.
    """
    image = Image.objects.select_related("project").filter(pk=image_id, status=ImageStatus.QUARANTINED).first()
    if image is None:
        return None
    source = storage.quarantine_path(image.quarantine_path)
    deid_relative = _deid_relative_path(image)
    target = storage.ensure_parent(storage.quarantine_path(deid_relative))
    outcome = deidentify_path(source, target, kind=image.kind, context=context_for_project(image.project))
    with transaction.atomic():
        image = (
            Image.objects.select_for_update(of=("self",))
            .select_related("project")
            .filter(pk=image_id, status=ImageStatus.QUARANTINED)
            .first()
        )
        if image is None:  # another worker finished it meanwhile; it purged or keeps its own copy
            _purge_unless_referenced(image_id, deid_relative)
            return None
        if outcome.status == "rejected":
            _reject_image(image, outcome.reason)
            return None
        image.deid_path = deid_relative
        if outcome.device is not None:
            image.device_manufacturer = outcome.device.manufacturer
            image.device_model = outcome.device.model
        audit_record(action="image.deidentify", project=image.project, obj=image, data=outcome.audit)
        if outcome.masked_by_template:
            audit_record(action="image.mask", project=image.project, obj=image, data={"by": "device template"})
        if outcome.status == "held":
            image.status = ImageStatus.HELD
            image.hold_reason = outcome.reason
            image.suggested_boxes = [list(box) for box in outcome.suggested_boxes]
            image.save()
            audit_record(
                action="image.hold",
                project=image.project,
                obj=image,
                data={"reason": outcome.reason, "suggested_boxes": len(outcome.suggested_boxes)},
            )
            return ImageStatus.HELD
        _release(image)
        return ImageStatus.RELEASED


def _purge_unless_referenced(image_id, relative: str) -> None:
    """Remove a file this worker wrote in quarantine if the image row no longer points to it."""
    if not Image.objects.filter(pk=image_id, deid_path=relative).exists():
        path = storage.quarantine_path(relative)
        transaction.on_commit(lambda: storage.purge(path))


def _reject_image(image: Image, reason: str) -> None:
    """De-identification refused the file: nothing of it is kept."""
    uploads = list(UploadedFile.objects.filter(image=image))
    for upload in uploads:
        upload.status = UploadStatus.REJECTED
        upload.reason = reason
        upload.image = None
        upload.save(update_fields=["status", "reason", "image", "modified"])
    audit_record(action="image.reject", project=image.project, obj=image, data={"reason": reason})
    paths = [storage.quarantine_path(p) for p in (image.quarantine_path, _deid_relative_path(image)) if p]
    study, series = image.study, image.series
    image.delete()
    if not series.images.exists():
        series.delete()
    if not study.images.exists():
        study.delete()
    transaction.on_commit(lambda: [storage.purge(p) for p in paths])


def _release(image: Image, *, actor: User | None = None) -> None:
    """Copy the de-identified file out of quarantine; purge the quarantined files (or keep the
    original for the retention period)."""
    deid = storage.quarantine_path(image.deid_path)
    released_relative = storage.released_relative_path(image)
    storage.atomic_copy(deid, storage.media_path(released_relative))
    original = storage.quarantine_path(image.quarantine_path) if image.quarantine_path else None
    keep_original = settings.QUARANTINE_RETENTION_DAYS > 0
    image.status = ImageStatus.RELEASED
    image.released_path = released_relative
    image.released_at = timezone.now()
    image.deid_path = ""
    image.hold_reason = ""
    image.suggested_boxes = []
    if not keep_original:
        image.quarantine_path = ""
    image.save()
    _record_display_fields(image)
    audit_record(action="image.release", actor=actor, project=image.project, obj=image)
    purged = [deid] + ([original] if original is not None and not keep_original else [])
    audit_record(
        action="quarantine.purge",
        project=image.project,
        obj=image,
        data={"files": len(purged), "original_kept_days": settings.QUARANTINE_RETENTION_DAYS},
    )
    for path in purged:
        transaction.on_commit(lambda p=path: storage.purge(p))


def _record_display_fields(image: Image) -> None:
    """Copy what the worklist shows of the image's study and series from the RELEASED file.

    Read from the released copy (after the gate), never from the original in quarantine: what is
    shown is exactly what left the quarantine. A study takes the values of its latest released
    image; its body parts are the union over its images, as its modalities are.
    """
    if image.kind != ImageKind.DICOM or not image.released_path:
        return
    try:
        fields = imaging.released_fields(storage.media_path(image.released_path))
    except imaging.RejectedFile:
        logger.warning("The worklist fields of image %s could not be read", image.pk)
        return
    Series.objects.filter(pk=image.series_id).update(
        body_part=fields.body_part, series_description=fields.series_description
    )
    study = Study.objects.select_for_update().get(pk=image.study_id)
    changed = []
    for name in ("patient_pseudonym", "patient_age", "patient_sex", "study_description", "study_date"):
        value = getattr(fields, name)
        if value and getattr(study, name) != value:
            setattr(study, name, value)
            changed.append(name)
    parts = [p for p in study.body_part.split(",") if p]
    if fields.body_part and fields.body_part.replace(",", " ") not in parts:
        study.body_part = ",".join(sorted([*parts, fields.body_part.replace(",", " ")]))[:128]
        changed.append("body_part")
    if changed:
        study.save(update_fields=[*changed, "modified"])


def released_display_fields_backfill() -> int:
    """Read the worklist fields of every released DICOM image again (rows released before the
    fields existed); returns how many images were read."""
    count = 0
    ids = Image.objects.filter(status=ImageStatus.RELEASED, kind=ImageKind.DICOM).values_list("pk", flat=True)
    for image_id in ids.iterator():
        with transaction.atomic():
            image = Image.objects.select_for_update(of=("self",)).filter(pk=image_id).first()
            if image is not None and image.status == ImageStatus.RELEASED:
                _record_display_fields(image)
                count += 1
    return count


def quarantine_purge_expired(*, now=None) -> int:
    """Purge originals kept past QUARANTINE_RETENTION_DAYS after release."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.QUARANTINE_RETENTION_DAYS)
    count = 0
    for image in Image.objects.filter(status=ImageStatus.RELEASED, released_at__lte=cutoff).exclude(quarantine_path=""):
        with transaction.atomic():
            locked = Image.objects.select_for_update(of=("self",)).select_related("project").get(pk=image.pk)
            if not locked.quarantine_path:
                continue
            path = storage.quarantine_path(locked.quarantine_path)
            locked.quarantine_path = ""
            locked.save(update_fields=["quarantine_path", "modified"])
            audit_record(action="quarantine.purge", project=locked.project, obj=locked, data={"files": 1})
            transaction.on_commit(lambda p=path: storage.purge(p))
            count += 1
    return count


# --- Masking by a person ----------------------------------------------------------------------


# No image is a million pixels wide (IMAGE_MAX_PIXELS): a coordinate past that is not a box edge.
_MAX_COORDINATE = 1_000_000


def _coordinate(value) -> bool:
    """A finite number of sane size (round() of NaN or Infinity raises); booleans are not coordinates."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    # abs() first: math.isfinite(10**400) raises OverflowError.
    return abs(value) <= _MAX_COORDINATE and math.isfinite(value)


def _clean_boxes(image: Image, boxes, width: int, height: int) -> list[Box]:
    if not isinstance(boxes, list) or len(boxes) > 200:
        raise MaskRefused("The boxes could not be read.")
    cleaned = []
    for box in boxes:
        if not (isinstance(box, list | tuple) and len(box) == 4 and all(_coordinate(v) for v in box)):
            raise MaskRefused("Each box must be four numbers of pixels (x0, y0, x1, y1).")
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        x0, x1 = sorted((max(0, min(width, x0)), max(0, min(width, x1))))
        y0, y1 = sorted((max(0, min(height, y0)), max(0, min(height, y1))))
        if x1 - x0 >= 1 and y1 - y0 >= 1:
            cleaned.append((x0, y0, x1, y1))
    return cleaned


def held_image_size(image: Image) -> tuple[int, int]:
    """(width, height) of the held image as the mask is drawn on it."""
    return _image_size(storage.quarantine_path(image.deid_path), image.kind)


def held_image_preview(
    *, user: User, image: Image, boxes=None, frame: int = 0, max_size: int = 1600, thumbnail: bool = False
):
    """One frame of the held (unmasked) image rendered for its reviewer, with `boxes` blacked out if
    given (the same boxes on every frame, as the release masks them).

    Shows pixels that may carry patient data: every call is audited as a view of the quarantine
    (a thumbnail in the masking queue too: small, but it may still show a burned-in name).
    """
    path = storage.quarantine_path(image.deid_path)
    picture = imaging.render_preview(path, image.kind, max_size=max_size, frame=frame).convert("RGB")
    if boxes is not None:
        width, height = held_image_size(image)
        sx, sy = picture.width / width, picture.height / height
        draw = ImageDraw.Draw(picture)
        for x0, y0, x1, y1 in _clean_boxes(image, boxes, width, height):
            draw.rectangle([x0 * sx, y0 * sy, max(x0 * sx, x1 * sx - 1), max(y0 * sy, y1 * sy - 1)], fill=(0, 0, 0))
    audit_record(
        action="quarantine.view",
        actor=user,
        project=image.project,
        obj=image,
        data={"masked": boxes is not None, "frame": frame, **({"thumbnail": True} if thumbnail else {})},
    )
    return picture


def image_mask_request(*, user: User, image_id, boxes, save_template: bool, confirm_no_text: bool) -> Image:
    """Accept a person's mask for a held image; a worker applies it (:func:`image_mask_apply`,
    queued by the caller through the pipeline).

    The image leaves the "needs masking" queue at once (status MASKING), so a second click finds
    it taken. Masking a long multi-frame object takes seconds and memory: not the web process's.
    """
    with transaction.atomic():
        image = Image.objects.select_for_update(of=("self",)).select_related("project").filter(pk=image_id).first()
        if image is None or image.status != ImageStatus.HELD:
            raise MaskRefused("This image is not waiting to be masked (it may have been released already).")
        width, height = held_image_size(image)
        cleaned = _clean_boxes(image, boxes, width, height)
        if not cleaned and not confirm_no_text:
            raise MaskRefused("Draw at least one box, or confirm that the image carries no identifying text.")
        image.status = ImageStatus.MASKING
        image.mask_request = {
            "boxes": [list(b) for b in cleaned],
            "save_template": bool(save_template),
            "user_id": str(user.pk),
        }
        image.save(update_fields=["status", "mask_request", "modified"])
        audit_record(
            action="image.mask_request", actor=user, project=image.project, obj=image, data={"boxes": len(cleaned)}
        )
        return image


def image_mask_apply(*, image_id) -> ImageStatus | None:
    """Mask a MASKING image on every frame as its reviewer asked, release it, and keep the mask
    as its device's template if asked. If the file cannot be masked, the image is held again.

    As in :func:`image_deidentify`, the masking (every frame: seconds) runs before the row is
    locked; the MASKING status is the claim, checked again under the lock."""
    image = Image.objects.select_related("project").filter(pk=image_id, status=ImageStatus.MASKING).first()
    if image is None or not image.mask_request:
        return None
    request, deid_relative = image.mask_request, image.deid_path
    boxes = [tuple(int(v) for v in box) for box in request.get("boxes", [])]
    source = storage.quarantine_path(deid_relative)
    masked_relative = deid_relative.replace("deid/", "deid/masked-", 1)
    target = storage.quarantine_path(masked_relative)
    failure = None
    try:
        width, height = held_image_size(image)
        original = storage.quarantine_path(image.quarantine_path) if image.quarantine_path else None
        options = context_for_project(image.project).options
        pipeline.apply_mask(source, target, kind=image.kind, boxes=boxes, original=original, options=options)
    except Exception as exc:  # noqa: BLE001 - whatever it was, the image goes back to the queue
        target.unlink(missing_ok=True)
        if not isinstance(exc, DeidentificationError | OSError | ValueError):
            logger.warning("Masking image %s failed (%s)", image.pk, type(exc).__name__)
        failure = str(exc) if isinstance(exc, DeidentificationError) else "its pixels could not be rewritten"
        if isinstance(exc, pipeline.ReleaseRefused):
            failure = str(exc).rstrip(".")  # the gate's own sentence, as the hold reason
    with transaction.atomic():
        image = Image.objects.select_for_update(of=("self",)).select_related("project").filter(pk=image_id).first()
        if image is None or image.status != ImageStatus.MASKING or image.deid_path != deid_relative:
            _purge_unless_referenced(image_id, masked_relative)  # another worker finished it meanwhile
            return None
        user = User.objects.filter(pk=request.get("user_id")).first()
        if failure is not None:
            image.status = ImageStatus.HELD
            image.hold_reason = f"The image could not be masked: {failure}."[:255]
            image.mask_request = None
            image.save(update_fields=["status", "hold_reason", "mask_request", "modified"])
            audit_record(action="image.mask_failed", actor=user, project=image.project, obj=image)
            return ImageStatus.HELD
        audit_record(action="image.mask", actor=user, project=image.project, obj=image, data={"boxes": len(boxes)})
        if request.get("save_template") and boxes and image.kind == "dicom":
            if image.device_manufacturer or image.device_model:
                template, _ = MaskTemplate.objects.update_or_create(
                    project=image.project,
                    manufacturer=image.device_manufacturer,
                    model_name=image.device_model,
                    rows=height,
                    columns=width,
                    defaults={"boxes": [list(b) for b in boxes], "created_by": user},
                )
                audit_record(
                    action="template.save", actor=user, project=image.project, obj=template, data={"boxes": len(boxes)}
                )
        transaction.on_commit(lambda: storage.purge(source))
        image.deid_path = masked_relative
        image.mask_request = None
        _release(image, actor=user)
        return ImageStatus.RELEASED


@transaction.atomic
def patient_links_read(*, user: User, project: Project):
    """The link table of a project, for an admin; the read is audited."""
    links = list(PatientLink.objects.filter(project=project).order_by("pseudonym"))
    audit_record(action="patient_link.view", actor=user, project=project, data={"rows": len(links)})
    return links


def audit_export_record(*, actor: User, project: Project, filters: list[str]) -> None:
    """A download of the audit trail is itself in the trail (it names who did what, and pseudonyms)."""
    audit_record(action="audit.export", actor=actor, project=project, data={"filters": sorted(filters)})


# --- Options and templates, changed by people -------------------------------------------------

PROFILE_OPTIONS = ("retain_modified_dates", "retain_patient_characteristics", "clean_descriptors", "ocr_enabled")


@transaction.atomic
def deid_profile_update(*, actor: User, project: Project, options: dict[str, bool]) -> DeidProfile:
    """Change a project's de-identification options; the only writer (project page and Django admin).

    They decide what leaves the quarantine from now on, so the audit row keeps old and new values.
    """
    unknown = set(options) - set(PROFILE_OPTIONS)
    if unknown:
        raise ValueError(f"Unknown de-identification options: {sorted(unknown)}")
    profile_for(project)
    profile = DeidProfile.objects.select_for_update().get(project=project)
    old = {name: getattr(profile, name) for name in PROFILE_OPTIONS}
    new = {**old, **{name: bool(value) for name, value in options.items()}}
    if new != old:
        for name, value in new.items():
            setattr(profile, name, value)
        profile.save()
        audit_record(
            action="deid_profile.update",
            actor=actor,
            project=project,
            obj=profile,
            data={"old": old, "new": new, "changed": sorted(n for n in PROFILE_OPTIONS if old[n] != new[n])},
        )
    return profile


@transaction.atomic
def mask_template_delete(*, actor: User, template_id) -> None:
    """Forget a device's mask; later images from it are held for a person again (never released unmasked)."""
    template = MaskTemplate.objects.select_for_update().filter(pk=template_id).first()
    if template is None:
        return
    audit_record(
        action="mask_template.delete",
        actor=actor,
        project=template.project,
        obj=template,
        data={"rows": template.rows, "columns": template.columns, "boxes": len(template.boxes or [])},
    )
    template.delete()
