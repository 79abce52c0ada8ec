"""Writes for uploads, studies and images.

The pipeline is a status per row with one task per step. Each step locks its
row, returns at once when the row is not in the status it starts from, and
queues the next step on commit, so a retried or duplicated task does nothing.
"""

import hashlib
import logging
import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinic_ai.accounts.models import Project, User
from clinic_ai.core.services import audit_record
from clinic_ai.deidentification.services import dicom_filing_identity, patient_link_touch
from clinic_ai.labelling.services import LabelRefused, label_from_upload, label_values_clean
from clinic_ai.studies import imaging, storage, upload_labels
from clinic_ai.studies.models import (
    Image,
    ImageKind,
    ImageStatus,
    PreviewStatus,
    Series,
    Study,
    UploadBatch,
    UploadedFile,
    UploadLabelMode,
    UploadLabelName,
    UploadLabelState,
    UploadStatus,
)

logger = logging.getLogger(__name__)


class UploadRefused(Exception):
    """The server will not take this file or chunk; `reason` is for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OffsetMismatch(Exception):
    """The client sent a chunk for the wrong offset; it resumes from `received`."""

    def __init__(self, received: int):
        super().__init__(f"expected offset {received}")
        self.received = received


_SIZE_UNITS = ("bytes", "KB", "MB", "GB", "TB", "PB")


def human_size(size: int) -> str:
    """ "1 GB", "2.5 MB", "300 bytes": integer arithmetic, so any size prints (no float overflow)."""
    size = max(0, int(size))
    if size >= 1024 ** len(_SIZE_UNITS):
        return f"more than 1024 {_SIZE_UNITS[-1]}"
    exponent = 0
    while exponent < len(_SIZE_UNITS) - 1 and size >= 1024 ** (exponent + 1):
        exponent += 1
    if exponent == 0:
        return f"{size} byte{'s' if size != 1 else ''}"
    scale = 1024**exponent
    whole, tenth = divmod((size * 10 + scale // 2) // scale, 10)
    return f"{whole}{f'.{tenth}' if tenth else ''} {_SIZE_UNITS[exponent]}"


# --- Receiving ------------------------------------------------------------------------------


@transaction.atomic
def upload_batch_create(
    *,
    user: User,
    project: Project,
    target_study: Study | None = None,
    label_mode: str = UploadLabelMode.NONE,
    label_values: list | None = None,
) -> UploadBatch:
    """`label_mode` says where the files' labels come from; `label_values` is the one label of a
    "batch" upload (None there means no label). A label not of the project's schema is refused."""
    if label_mode not in UploadLabelMode.values:
        raise UploadRefused("Unknown way of labelling an upload.")
    clean = None
    if label_mode == UploadLabelMode.BATCH and label_values is not None:
        try:
            clean = label_values_clean(project=project, values=label_values)
        except LabelRefused as exc:
            raise UploadRefused(f"The label for this upload is refused: {exc.reason}") from None
    if label_mode == UploadLabelMode.BATCH and clean is None:
        label_mode = UploadLabelMode.NONE
    batch = UploadBatch.objects.create(
        project=project, uploaded_by=user, target_study=target_study, label_mode=label_mode, label_values=clean
    )
    audit_record(
        action="upload.start",
        actor=user,
        project=project,
        obj=batch,
        data={"label_mode": label_mode, **({"label": clean} if clean else {})},
    )
    return batch


@transaction.atomic
def upload_labels_csv_set(*, batch: UploadBatch, data: bytes) -> dict:
    """The CSV of file name → label of a "csv" upload, sent before its files (their labels are
    worked out as they are declared). Returns the report: rows read, rows used, bad rows by line."""
    batch = UploadBatch.objects.select_for_update().select_related("project").get(pk=batch.pk)
    if batch.label_mode != UploadLabelMode.CSV:
        raise UploadRefused("This upload was not started with labels from a CSV.")
    if batch.finished_at is not None or batch.files.exists():
        raise UploadRefused("Send the CSV of labels before the files of the upload.")
    if len(data) > settings.UPLOAD_LABEL_CSV_MAX_SIZE:
        raise UploadRefused(f"The labels file is over the {human_size(settings.UPLOAD_LABEL_CSV_MAX_SIZE)} limit.")
    try:
        parsed = upload_labels.parse_label_csv(data, project=batch.project)
    except upload_labels.LabelCsvRefused as exc:
        raise UploadRefused(exc.reason) from None
    UploadLabelName.objects.filter(batch=batch).delete()
    UploadLabelName.objects.bulk_create(
        [
            UploadLabelName(batch=batch, name_hash=upload_labels.name_hash(key), values=values)
            for key, values in parsed.mapping.items()
        ],
        batch_size=1000,
    )
    batch.label_csv_report = parsed.report()
    batch.save(update_fields=["label_csv_report", "modified"])
    audit_record(
        action="upload.labels_csv",
        actor=batch.uploaded_by,
        project=batch.project,
        obj=batch,
        data={k: v for k, v in batch.label_csv_report.items() if k != "bad_rows"},
    )
    return batch.label_csv_report


def _intended_label(batch: UploadBatch, name: str) -> tuple[list | None, str]:
    """(label values, state) of a file from its batch's labelling mode and its name."""
    if batch.label_mode == UploadLabelMode.BATCH and batch.label_values:
        values = batch.label_values
    elif batch.label_mode == UploadLabelMode.FOLDERS:
        values = upload_labels.folder_label(name, batch.project)
    elif batch.label_mode == UploadLabelMode.CSV:
        values = _csv_label(batch, name)
    else:
        return None, UploadLabelState.NONE
    return (values, UploadLabelState.LABELLED) if values else (None, UploadLabelState.UNMATCHED)


def _csv_label(batch: UploadBatch, name: str) -> list | None:
    """The CSV's label for a file: its longest path tail the CSV names (one indexed query)."""
    hashes = [upload_labels.name_hash(key) for key in upload_labels.csv_candidates(name)]
    found = dict(UploadLabelName.objects.filter(batch=batch, name_hash__in=hashes).values_list("name_hash", "values"))
    return next((list(found[h]) for h in hashes if h in found), None)


@transaction.atomic
def upload_file_declare(*, batch: UploadBatch, name: str, size: int) -> UploadedFile:
    batch = UploadBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.finished_at is not None:
        raise UploadRefused("This upload is finished; start a new one.")
    if batch.label_mode == UploadLabelMode.CSV and not batch.label_csv_report:
        raise UploadRefused("Send the CSV of labels before the files of the upload.")
    if size < 0:
        raise UploadRefused("The file size is invalid.")
    if size > settings.UPLOAD_MAX_FILE_SIZE:
        limit = human_size(settings.UPLOAD_MAX_FILE_SIZE)
        # A declared size past a petabyte is no real file: the size is not worth repeating.
        said = f"The file is {human_size(size)}," if size < 1024**5 else "The file is"
        raise UploadRefused(f"{said} over the {limit} limit per file.")
    declared = batch.files.filter(parent=None)
    if declared.count() >= settings.UPLOAD_MAX_BATCH_FILES:
        raise UploadRefused(f"One upload takes at most {settings.UPLOAD_MAX_BATCH_FILES} files.")
    total = sum(declared.values_list("declared_size", flat=True)) + size
    if total > settings.UPLOAD_MAX_BATCH_SIZE:
        raise UploadRefused(
            f"This upload would be over the {human_size(settings.UPLOAD_MAX_BATCH_SIZE)} limit per upload."
        )
    name = name[:1024]
    label_values, label_state = _intended_label(batch, name)
    upload = UploadedFile.objects.create(
        batch=batch, client_name=name, declared_size=size, label_values=label_values, label_state=label_state
    )
    storage.ensure_parent(storage.quarantine_path(storage.upload_relative_path(upload.pk))).touch()
    return upload


def upload_chunk_append(*, upload: UploadedFile, offset: int, data: bytes) -> tuple[int, bool]:
    """Write one chunk at `offset`; returns (bytes received, complete).

    A chunk resent after its answer was lost is accepted without writing twice.
    """
    with transaction.atomic():
        upload = UploadedFile.objects.select_for_update().get(pk=upload.pk)
        if upload.status != UploadStatus.RECEIVING:
            if offset + len(data) == upload.received == upload.declared_size:
                return upload.received, True
            if upload.status == UploadStatus.REJECTED:
                # Abandoned (housekeeping, or its batch finished) while the browser was away: say so,
                # rather than a 409 the browser would resume from.
                raise UploadRefused(upload.reason or "This file was rejected.")
            raise OffsetMismatch(upload.received)
        if offset != upload.received:
            raise OffsetMismatch(upload.received)
        if offset + len(data) > upload.declared_size:
            raise UploadRefused("The file is larger than its declared size.")
        path = storage.quarantine_path(storage.upload_relative_path(upload.pk))
        with open(path, "r+b") as out:
            # Bytes beyond `received` come from a write whose transaction did not commit.
            out.seek(offset)
            out.write(data)
            out.truncate()
        upload.received = offset + len(data)
        complete = upload.received == upload.declared_size
        if complete:
            upload.status = UploadStatus.RECEIVED
        upload.save(update_fields=["received", "status", "modified"])
        return upload.received, complete


@transaction.atomic
def upload_batch_finish(*, batch: UploadBatch) -> UploadBatch:
    batch = UploadBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.finished_at is None:
        batch.finished_at = timezone.now()
        batch.save(update_fields=["finished_at", "modified"])
        # The browser finishes once every file is sent or given up: what is still arriving never will.
        for upload in (
            batch.files.select_for_update(of=("self",))
            .filter(status=UploadStatus.RECEIVING)
            .select_related("batch", "batch__project", "batch__uploaded_by")
        ):
            _reject(upload, ABANDONED_REASON)
        counts = {s: batch.files.filter(status=s).count() for s in UploadStatus.values}
        audit_record(
            action="upload.finish", actor=batch.uploaded_by, project=batch.project, obj=batch, data={"files": counts}
        )
    return batch


ABANDONED_REASON = "The upload of this file was not finished; send it again."


def uploads_abandoned_purge(*, now=None) -> int:
    """Files whose upload stopped part-way and was not resumed within UPLOAD_ABANDONED_MINUTES.

    Their partial bytes sit in quarantine and may hold patient data: rejected and deleted.
    Also removes unpack folders left by a worker that died unpacking an archive.
    """
    now = now or timezone.now()
    _unpack_dirs_remove_stale()
    cutoff = now - timedelta(minutes=settings.UPLOAD_ABANDONED_MINUTES)
    count = 0
    for upload_id in UploadedFile.objects.filter(status=UploadStatus.RECEIVING, modified__lte=cutoff).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            upload = (
                UploadedFile.objects.select_for_update(of=("self",))
                .select_related("batch", "batch__project", "batch__uploaded_by")
                .get(pk=upload_id)
            )
            if upload.status != UploadStatus.RECEIVING:
                continue
            _reject(upload, ABANDONED_REASON)
            count += 1
    return count


def _unpack_dirs_remove_stale() -> None:
    """An unpack folder is only needed while its archive is being unpacked (status RECEIVED or
    PROCESSING, row locked by the worker); one left behind by a dead worker holds extracted files."""
    root = storage.quarantine_path("unpack")
    if not root.is_dir():
        return
    names = {entry.name: entry for entry in root.iterdir()}
    busy = {
        str(pk)
        for pk in UploadedFile.objects.filter(
            pk__in=[n for n in names if _is_uuid(n)], status__in=[UploadStatus.RECEIVED, UploadStatus.PROCESSING]
        ).values_list("pk", flat=True)
    }
    for name, entry in names.items():
        if name not in busy:
            _remove_tree(entry)


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def upload_names_erase_expired(*, now=None) -> int:
    """Erase the browser's file names of uploads finished more than UPLOAD_NAME_RETENTION_HOURS ago.

    Names are shown to the uploader while the upload runs; they can carry patient names, so they
    are not kept longer than that.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.UPLOAD_NAME_RETENTION_HOURS)
    batches = UploadBatch.objects.filter(finished_at__lte=cutoff, names_erased_at=None).select_related("project")
    count = 0
    for batch in batches:
        with transaction.atomic():
            erased = UploadedFile.objects.filter(batch=batch).update(client_name="")
            # The CSV of labels is a list of the same names (hashed, but a name is easily guessed).
            UploadLabelName.objects.filter(batch=batch).delete()
            UploadBatch.objects.filter(pk=batch.pk).update(names_erased_at=now)
            audit_record(action="upload.names_erase", project=batch.project, obj=batch, data={"files": erased})
            count += 1
    return count


# --- Checking what arrived -------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Identity:
    kind: str
    study_uid: str
    series_uid: str
    sop_uid: str
    modality: str
    study_date: object
    series_number: int | None
    rows: int
    columns: int
    frames: int
    metadata: dict
    patient: tuple[str, str] | None = field(default=None, repr=False)  # (key, pseudonym): patient data


def _identify(path: Path, kind: str, project: Project) -> _Identity:
    if kind == ImageKind.DICOM:
        info = imaging.inspect_dicom(path, max_pixels=settings.IMAGE_MAX_PIXELS)
        filed = dicom_filing_identity(
            project=project,
            path=path,
            study_uid=info.study_instance_uid,
            series_uid=info.series_instance_uid,
            sop_uid=info.sop_instance_uid,
            study_date=info.study_date,
        )
        return _Identity(
            kind=kind,
            study_uid=filed["study_uid"],
            series_uid=filed["series_uid"],
            sop_uid=filed["sop_uid"],
            modality=info.modality,
            study_date=filed["study_date"],
            patient=filed["patient"],
            series_number=info.series_number,
            rows=info.rows,
            columns=info.columns,
            frames=info.frames,
            metadata=dict(info.display_metadata),
        )
    info = imaging.inspect_raster(path, max_pixels=settings.IMAGE_MAX_PIXELS)
    return _Identity(
        kind=info.format,
        study_uid="",
        series_uid="",
        sop_uid="",
        modality="",
        study_date=None,
        series_number=None,
        rows=info.height,
        columns=info.width,
        frames=1,
        metadata={"Format": info.format.upper(), "Width": str(info.width), "Height": str(info.height)},
    )


def _reject(upload: UploadedFile, reason: str) -> None:
    upload.status = UploadStatus.REJECTED
    upload.reason = reason
    upload.save(update_fields=["status", "reason", "modified"])
    path = storage.quarantine_path(storage.upload_relative_path(upload.pk))
    transaction.on_commit(lambda: storage.purge(path))
    audit_record(
        action="upload.reject",
        actor=upload.batch.uploaded_by,
        project=upload.batch.project,
        obj=upload,
        data={"reason": reason},
    )


@dataclass(frozen=True)
class ProcessOutcome:
    """What the next steps work on: the members of an unpacked zip, or the image filed."""

    members: tuple = ()
    image_id: object = None


def uploaded_file_process(*, upload_id) -> ProcessOutcome:
    """Validate one received file by its content and file it as an image, a duplicate, or a rejection."""
    with transaction.atomic():
        upload = (
            UploadedFile.objects.select_for_update(of=("self",))
            .select_related("batch", "batch__project", "batch__uploaded_by")
            .filter(pk=upload_id)
            .first()
        )
        # PROCESSING is accepted too: that is a worker that died mid-step and whose task came back.
        if upload is None or upload.status not in (UploadStatus.RECEIVED, UploadStatus.PROCESSING):
            return ProcessOutcome()
        upload.status = UploadStatus.PROCESSING
        path = storage.quarantine_path(storage.upload_relative_path(upload.pk))
        try:
            kind = imaging.detect_kind(path)
            if kind == "zip":
                return ProcessOutcome(members=_unpack(upload, path))
            identity = _identify(path, kind, upload.batch.project)
        except imaging.RejectedFile as exc:
            _reject(upload, exc.reason)
            return ProcessOutcome()
        upload.sha256 = _sha256(path)
        return ProcessOutcome(image_id=_file_image(upload, identity))


def _unpack(upload: UploadedFile, path: Path) -> tuple:
    """Unpack a zip into one received upload per member; returns their ids."""
    if upload.parent_id is not None:
        raise imaging.RejectedFile("Zip files inside zip files are not accepted.")
    workdir = storage.quarantine_path(f"unpack/{upload.pk}")
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        results = imaging.safe_extract_zip(
            path,
            workdir,
            max_members=settings.ZIP_MAX_MEMBERS,
            max_total_size=settings.ZIP_MAX_TOTAL_SIZE,
            max_ratio=settings.ZIP_MAX_RATIO,
            max_file_size=settings.UPLOAD_MAX_FILE_SIZE,
        )
    except BaseException:
        # A rejected archive (a bomb found half-way) leaves what it extracted so far: patient data.
        _remove_tree(workdir)
        raise
    accepted = []
    for member in results:
        name = f"{upload.client_name}/{member.name}"[:1024]
        if isinstance(member, imaging.RejectedMember):
            UploadedFile.objects.create(
                batch=upload.batch,
                parent=upload,
                client_name=name,
                declared_size=0,
                status=UploadStatus.REJECTED,
                reason=member.reason,
            )
            continue
        size = member.path.stat().st_size
        # The member's path inside the archive, after the archive's own: class folders in either count.
        label_values, label_state = _intended_label(upload.batch, name)
        child = UploadedFile.objects.create(
            batch=upload.batch,
            parent=upload,
            client_name=name,
            declared_size=size,
            received=size,
            status=UploadStatus.RECEIVED,
            label_values=label_values,
            label_state=label_state,
        )
        member.path.replace(storage.quarantine_path(storage.upload_relative_path(child.pk)))
        accepted.append(child.pk)
    upload.status = UploadStatus.UNPACKED
    upload.reason = f"{len(accepted)} of {len(results)} files taken from the archive."
    upload.save(update_fields=["status", "reason", "modified"])
    transaction.on_commit(lambda: (storage.purge(path), _remove_tree(workdir)))
    return tuple(accepted)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _study_for(upload: UploadedFile, identity: _Identity) -> tuple[Study, Series]:
    batch = upload.batch
    if identity.kind == ImageKind.DICOM and identity.study_uid and identity.series_uid:
        study_uid, series_uid = identity.study_uid, identity.series_uid
    elif batch.target_study_id is not None:
        study_uid = batch.target_study.study_instance_uid
        series_uid = f"2.25.{batch.pk.int}"
    else:
        # One study per upload for photos, screenshots and DICOM files without UIDs: derived from
        # the batch id, so two workers filing two such files of one batch land in the same study.
        study_uid = series_uid = f"2.25.{batch.pk.int}"
    study, _ = Study.objects.get_or_create(
        project=batch.project,
        study_instance_uid=study_uid,
        defaults={"study_date": identity.study_date, "created_by": batch.uploaded_by},
    )
    series, _ = Series.objects.get_or_create(
        study=study,
        series_instance_uid=series_uid,
        defaults={"modality": identity.modality, "series_number": identity.series_number},
    )
    modality = identity.modality or identity.kind.upper()
    modalities = [m for m in study.modality.split(",") if m]
    if modality not in modalities:
        study = Study.objects.select_for_update().get(pk=study.pk)
        modalities = [m for m in study.modality.split(",") if m]
        if modality not in modalities:
            study.modality = ",".join(sorted([*modalities, modality]))
            study.save(update_fields=["modality", "modified"])
    return study, series


def _file_image(upload: UploadedFile, identity: _Identity):
    """File the upload as a new image (its id is returned: it goes on to de-identification) or a duplicate."""
    batch = upload.batch
    existing = Image.objects.filter(project=batch.project, sha256=upload.sha256).first()
    if existing is None:
        study, series = _study_for(upload, identity)
        try:
            with transaction.atomic():
                image = Image.objects.create(
                    project=batch.project,
                    study=study,
                    series=series,
                    uploaded_by=batch.uploaded_by,
                    kind=identity.kind,
                    sha256=upload.sha256,
                    sop_instance_uid=identity.sop_uid,
                    modality=identity.modality,
                    rows=identity.rows,
                    columns=identity.columns,
                    frames=identity.frames,
                    metadata=identity.metadata,
                    # The original stays where it was received, inside the quarantine root.
                    quarantine_path=storage.upload_relative_path(upload.pk),
                )
        except IntegrityError:
            # The same bytes were filed by another worker a moment ago.
            existing = Image.objects.get(project=batch.project, sha256=upload.sha256)
    if existing is not None:
        upload.status = UploadStatus.DUPLICATE
        upload.image = existing
        upload.reason = "This file was uploaded to this project before."
        upload.save(update_fields=["status", "image", "reason", "sha256", "modified"])
        _label_from_upload(upload, existing)
        path = storage.quarantine_path(storage.upload_relative_path(upload.pk))
        transaction.on_commit(lambda: storage.purge(path))
        return None
    upload.status = UploadStatus.ACCEPTED
    upload.image = image
    upload.save(update_fields=["status", "image", "sha256", "modified"])
    _label_from_upload(upload, image)
    if identity.patient is not None:
        patient_link_touch(project=batch.project, key=identity.patient[0], pseudonym=identity.patient[1])
    audit_record(
        action="image.quarantine",
        actor=batch.uploaded_by,
        project=batch.project,
        obj=image,
        data={"upload_id": str(upload.pk), "kind": image.kind, "frames": image.frames},
    )
    return image.pk


def _label_from_upload(upload: UploadedFile, image: Image) -> None:
    """The label chosen at upload goes on the image in the transaction that links file and image.
    A duplicate gets it too: sending the same images again with labels is how a set is labelled."""
    if not upload.label_values:
        return
    try:
        label_from_upload(
            project=upload.batch.project, image=image, reader=upload.batch.uploaded_by, values=upload.label_values
        )
    except LabelRefused:
        # The project's classes changed while the upload ran: the file stays, without that label.
        upload.label_values, upload.label_state = None, UploadLabelState.UNMATCHED
        upload.save(update_fields=["label_values", "label_state", "modified"])


# --- Previews ------------------------------------------------------------------------------


def image_preview_render(*, image_id) -> None:
    image = Image.objects.filter(pk=image_id, status=ImageStatus.RELEASED).first()
    if image is None or image.preview_status == PreviewStatus.READY:
        return
    source = storage.media_path(image.released_path)
    relative = storage.preview_relative_path(image)
    try:
        picture = imaging.render_preview(source, image.kind, max_size=settings.PREVIEW_MAX_SIZE)
    except imaging.RejectedFile as exc:
        Image.objects.filter(pk=image.pk).update(preview_status=PreviewStatus.FAILED, preview_error=exc.reason)
        return
    storage.atomic_save_image(picture, storage.media_path(relative))
    Image.objects.filter(pk=image.pk).update(
        preview_status=PreviewStatus.READY, preview_path=relative, preview_error=""
    )


def image_frame_preview_path(*, image: Image, frame: int) -> Path:
    """A preview of one frame of a released multi-frame image, rendered on first request."""
    if frame == 0 and image.preview_status == PreviewStatus.READY:
        return storage.media_path(image.preview_path)
    path = storage.media_path(storage.preview_relative_path(image, frame))
    if not path.exists():
        picture = imaging.render_preview(
            storage.media_path(image.released_path), image.kind, max_size=settings.PREVIEW_MAX_SIZE, frame=frame
        )
        storage.atomic_save_image(picture, path)
    return path


def image_frame_pixels(*, image: Image, frame: int) -> imaging.FramePixels:
    """One frame of a released image at full bit depth, read from the released (de-identified)
    file only: the quarantined original is never an input here."""
    if image.status != ImageStatus.RELEASED or not image.released_path:
        raise imaging.RejectedFile("The image is not released.")
    return imaging.frame_pixels(
        storage.media_path(image.released_path), image.kind, frame=frame, max_pixels=settings.IMAGE_MAX_PIXELS
    )


def image_frame_voi_lut(*, image: Image, frame: int, index: int) -> imaging.VoiLut:
    """Item ``index`` of a released frame's VOI LUT Sequence, from the released file only."""
    if image.status != ImageStatus.RELEASED or not image.released_path:
        raise imaging.RejectedFile("The image is not released.")
    return imaging.frame_voi_lut(
        storage.media_path(image.released_path),
        image.kind,
        frame=frame,
        index=index,
        max_pixels=settings.IMAGE_MAX_PIXELS,
    )


def image_original_open(*, user: User, image: Image):
    """Open a quarantined original for its uploader or an admin; every read is audited."""
    audit_record(action="quarantine.view", actor=user, project=image.project, obj=image)
    return open(storage.quarantine_path(image.quarantine_path), "rb")
