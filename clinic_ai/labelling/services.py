"""Writes of labels and labelling settings. Each writes its audit row in the same transaction."""

import math
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from clinic_ai.accounts.models import Project, TaskType, User
from clinic_ai.core.services import audit_record
from clinic_ai.labelling.models import (
    MAX_SECONDS_PER_LABEL,
    UNGRADABLE,
    Label,
    LabellingSettings,
    LabelSource,
)
from clinic_ai.labelling.selectors import labelling_settings_for
from clinic_ai.studies.models import Image, ImageStatus


class LabelRefused(Exception):
    """A label the server will not store; `reason` is shown to the reader (no patient data in it)."""

    def __init__(self, reason: str, *, status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def label_values_clean(*, project: Project, values) -> list[str]:
    """The project's schema: one class (binary, multi-class) or one or more (multi-label), or
    "ungradable" alone. Returned in the project's class order, so equal labels compare equal."""
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise LabelRefused("A label is a non-empty list of class names.")
    chosen = set(values)
    if len(chosen) != len(values):
        raise LabelRefused("A class is named twice.")
    if UNGRADABLE in chosen:
        if len(chosen) > 1:
            raise LabelRefused("Ungradable cannot be combined with a class.")
        return [UNGRADABLE]
    unknown = chosen - set(project.class_names)
    if unknown:
        raise LabelRefused("Not a class of this project.")
    if project.task_type != TaskType.MULTILABEL and len(chosen) != 1:
        raise LabelRefused("Pick exactly one class.")
    return [name for name in project.class_names if name in chosen]


def _seconds_clean(seconds) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise LabelRefused("Time spent must be a number of seconds.")
    if not 0 <= seconds <= MAX_SECONDS_PER_LABEL:
        raise LabelRefused(f"Time spent must be between 0 and {MAX_SECONDS_PER_LABEL} seconds.")
    return round(float(seconds), 3)


def _locked_released_image(*, project: Project, image: Image) -> Image:
    # The row lock serialises readers of one image, so the N-readers limit holds under concurrency.
    locked = Image.objects.select_for_update().get(pk=image.pk)
    if locked.project_id != project.pk or locked.status != ImageStatus.RELEASED:
        raise LabelRefused("This image cannot be labelled.", status=409)
    return locked


@transaction.atomic
def labelling_settings_update(
    *, actor: User, project: Project, readers_per_image: int, readers_see_ai_result: bool
) -> LabellingSettings:
    settings, _ = LabellingSettings.objects.get_or_create(project=project)
    settings.readers_per_image = readers_per_image
    settings.readers_see_ai_result = readers_see_ai_result
    settings.full_clean()
    settings.save()
    audit_record(
        action="labelling.settings_update",
        actor=actor,
        project=project,
        obj=settings,
        data={"readers_per_image": readers_per_image, "readers_see_ai_result": readers_see_ai_result},
    )
    return settings


def label_create(
    *, actor: User, project: Project, image: Image, values, seconds, request_id: uuid.UUID | None = None
) -> tuple[Label, bool]:
    """A reader's label of an image from the queue: (label, created).

    The same request_id sent again (a retry after a lost answer, a double key press) returns the
    stored label instead of a second one. A reader who labels an image again changes their label:
    the old row stays as history.
    """
    clean = label_values_clean(project=project, values=values)
    seconds = _seconds_clean(seconds)
    if request_id is not None:
        stored = Label.objects.filter(request_id=request_id).first()
        if stored is not None:
            return _same_request(stored, actor=actor, image=image)
    try:
        with transaction.atomic():
            return _label_create(
                actor=actor, project=project, image=image, values=clean, seconds=seconds, request_id=request_id
            ), True
    except IntegrityError:
        # The same request raced itself (two connections): the first one stored it.
        stored = Label.objects.filter(request_id=request_id).first() if request_id else None
        if stored is None:
            raise
        return _same_request(stored, actor=actor, image=image)


def _same_request(stored: Label, *, actor: User, image: Image) -> tuple[Label, bool]:
    if stored.reader_id != actor.pk or stored.image_id != image.pk:
        raise LabelRefused("This request id was used for another label.", status=409)
    return stored, False


def _label_create(*, actor, project, image, values, seconds, request_id) -> Label:
    _locked_released_image(project=project, image=image)
    previous = Label.objects.filter(image=image, reader=actor, source=LabelSource.READER, is_current=True).first()
    if previous is None:
        readers = Label.objects.filter(image=image, source=LabelSource.READER, is_current=True).count()
        if readers >= labelling_settings_for(project).readers_per_image:
            raise LabelRefused("This image already has all its readers.", status=409)
    else:
        Label.objects.filter(pk=previous.pk).update(is_current=False)
    label = Label.objects.create(
        project=project,
        image=image,
        reader=actor,
        values=values,
        source=LabelSource.READER,
        seconds=seconds,
        request_id=request_id,
    )
    _audit_label_write(actor=actor, project=project, label=label, previous=previous)
    return label


def _audit_label_write(*, actor: User, project: Project, label: Label, previous: Label | None) -> None:
    """A new label, or a change of the reader's current one (the same source), as an audit event."""
    audit_record(
        action="label.change" if previous else "label.create",
        actor=actor,
        project=project,
        obj=label,
        data={
            "image_id": str(label.image_id),
            "values": label.values,
            "source": label.source,
            **({"replaces": str(previous.pk)} if previous else {}),
        },
    )


@transaction.atomic
def label_undo(*, actor: User, project: Project, image: Image) -> Label | None:
    """Withdraw the reader's current label of an image (the row stays, no longer current); None when
    there was none, so an undo sent twice is harmless."""
    _locked_released_image(project=project, image=image)
    label = Label.objects.filter(image=image, reader=actor, source=LabelSource.READER, is_current=True).first()
    if label is None:
        return None
    label.is_current = False
    label.withdrawn_at = timezone.now()
    label.save(update_fields=["is_current", "withdrawn_at", "modified"])
    audit_record(
        action="label.undo",
        actor=actor,
        project=project,
        obj=label,
        data={"image_id": str(image.pk), "values": label.values, "source": label.source},
    )
    return label


@transaction.atomic
def label_adjudicate(*, actor: User, project: Project, image: Image, values) -> Label:
    """A radiologist's final label where readers disagreed: source "review", flagged as adjudication.
    A later adjudication of the same image replaces the earlier one (kept as history)."""
    clean = label_values_clean(project=project, values=values)
    _locked_released_image(project=project, image=image)
    previous = list(
        Label.objects.filter(image=image, source=LabelSource.REVIEW, adjudication=True, is_current=True).values_list(
            "pk", flat=True
        )
    )
    Label.objects.filter(pk__in=previous).update(is_current=False)
    label = Label.objects.create(
        project=project, image=image, reader=actor, values=clean, source=LabelSource.REVIEW, adjudication=True
    )
    audit_record(
        action="label.adjudicate",
        actor=actor,
        project=project,
        obj=label,
        data={
            "image_id": str(image.pk),
            "values": clean,
            "source": LabelSource.REVIEW,
            "replaces": [str(pk) for pk in previous],
        },
    )
    return label


def label_export_record(*, actor: User, project: Project, fmt: str, count: int) -> None:
    audit_record(action="label.export", actor=actor, project=project, data={"format": fmt, "labels": count})


def label_from_upload(*, project: Project, image: Image, reader: User, values) -> Label:
    """The label an uploader gave a file at source, written when the file is filed as an image, in
    the transaction that links the two (the file's name, which chose the label, is erased later).

    Upload labels are a source of their own: they do not fill the queue's N readers, nor count in
    consensus or kappa (readers label blind, and an upload label is one claim about a whole folder
    or spreadsheet); they are exported with the other labels. Held images keep theirs until
    released. The same uploader sending the same bytes again with another label changes it (the old
    row stays as history); with the same label, nothing is written.
    """
    clean = label_values_clean(project=project, values=values)
    current = Label.objects.filter(image=image, reader=reader, source=LabelSource.UPLOAD, is_current=True)
    previous = current.first()
    if previous is not None and previous.values == clean:
        return previous
    try:
        with transaction.atomic():
            if previous is not None:
                Label.objects.filter(pk=previous.pk).update(is_current=False)
            label = Label.objects.create(
                project=project, image=image, reader=reader, values=clean, source=LabelSource.UPLOAD
            )
    except IntegrityError:
        # Two files of one upload with the same bytes, filed at once by two workers: one label.
        return current.get()
    _audit_label_write(actor=reader, project=project, label=label, previous=previous)
    return label
