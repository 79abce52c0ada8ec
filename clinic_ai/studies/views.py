import math
import re
from collections import Counter
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from clinic_ai.accounts.models import TaskType
from clinic_ai.accounts.selectors import UPLOAD_ROLES, get_project_for_user, projects_for_user, role_in_project
from clinic_ai.core.http import RequestRefused, json_body, json_endpoint, json_int, request_body
from clinic_ai.labelling.models import UNGRADABLE
from clinic_ai.labelling.selectors import may_see_ai_result
from clinic_ai.pipeline import tasks as pipeline
from clinic_ai.review.selectors import REVIEW_ROLES, current_reviews, image_has_reviewable_result
from clinic_ai.studies import imaging, services, upload_labels
from clinic_ai.studies.forms import WorklistFilterForm
from clinic_ai.studies.models import (
    ImageStatus,
    PreviewStatus,
    UploadedFile,
    UploadLabelMode,
    UploadLabelState,
    UploadStatus,
)
from clinic_ai.studies.selectors import (
    can_see_quarantine,
    get_batch_for_user,
    get_image_for_user,
    get_study_for_user,
    studies_for_user,
    study_images_for_user,
    worklist_annotate,
    worklist_studies,
)

PAGE_SIZE = 25


@login_required
def worklist(request):
    projects = projects_for_user(request.user)
    form = WorklistFilterForm(request.GET or None, projects=projects)
    filters = form.cleaned_data if form.is_valid() else {}
    studies = worklist_studies(request.user, **{k: v for k, v in filters.items() if v})
    page = Paginator(studies, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = worklist_annotate(request.user, list(page.object_list))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "studies/worklist.html", {"form": form, "page": page, "query": query.urlencode()})


@login_required
def study_detail(request, study_id):
    study = get_study_for_user(request.user, study_id)
    images = list(study_images_for_user(request.user, study))
    worklist_annotate(request.user, [study])
    study.image_count = len(images)
    return render(request, "studies/study_detail.html", {"study": study, "images": images})


@login_required
def image_detail(request, image_id):
    image = get_image_for_user(request.user, image_id)
    frame = _frame_param(request, image)
    released = image.status == ImageStatus.RELEASED
    can_review = released and role_in_project(request.user, image.project) in REVIEW_ROLES
    show_ai = released and may_see_ai_result(request.user, image.project)
    return render(
        request,
        "studies/image_detail.html",
        {
            "image": image,
            "show_ai": show_ai,
            "reviews": current_reviews([image.pk]).get(image.pk, []) if show_ai else [],
            "review_url": reverse("review:review_image", args=[image.project_id, image.pk])
            if can_review and image_has_reviewable_result(image)
            else None,
            "metadata": sorted(image.metadata.items()),
            "frame": frame,
            "frames": range(image.frames),
            "can_see_original": bool(image.quarantine_path) and can_see_quarantine(request.user, image),
        },
    )


def _frame_param(request, image) -> int:
    try:
        frame = int(request.GET.get("frame", 0))
    except ValueError:
        raise Http404("No such frame") from None
    if not 0 <= frame < image.frames:
        raise Http404("No such frame")
    return frame


@login_required
@require_GET
def image_preview(request, image_id):
    image = get_image_for_user(request.user, image_id)
    frame = _frame_param(request, image)
    if image.status != ImageStatus.RELEASED or image.preview_status != PreviewStatus.READY:
        raise Http404("No preview yet")
    try:
        path = services.image_frame_preview_path(image=image, frame=frame)
    except imaging.RejectedFile:
        raise Http404("This frame cannot be shown") from None
    response = FileResponse(open(path, "rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


# The viewer's pixels: one frame per request, so a 300-frame series is never sent (or decoded) whole.
VIEWER_MAX_FRAME_VALUES = 64 * 1024 * 1024  # rows x columns x samples of one frame (128 MB at 16 bits)
_MODALITY_SAFE = re.compile(r"[^A-Z0-9]")
_VOI_FUNCTION_SAFE = re.compile(r"[^A-Z_]")
_VOI_INDEX = re.compile(r"[0-7]")  # imaging offers at most 8 VOI LUT items


@login_required
@require_GET
def image_pixels(request, image_id, frame):
    """One frame of a released image at full bit depth, for static/js/viewer.js.

    The body is the frame's values, little-endian, row by row (RGB interleaved), with no header;
    the response headers describe it:

    * ``X-Pixel-Type``: ``uint8``, ``uint16``, ``int16`` (greyscale DICOM: the stored values, as the
      file stores them) or ``float32`` (values already through the modality transform: a Modality
      LUT, or stored values that do not fit 16 bits).
    * ``X-Pixel-Shape``: ``rows,columns,samples`` (samples 1 or 3); ``X-Pixel-Frames``: frame count.
    * ``X-Pixel-Photometric``: ``MONOCHROME1`` (the viewer inverts), ``MONOCHROME2`` or ``RGB``.
      RGB (colour DICOM, PNG and JPEG) and 8-bit grey PNG/JPEG are the 8-bit display rendering
      (EXIF orientation, alpha flattened, palette applied), as the preview shows them; a 16-bit grey
      PNG is its ``uint16`` values (EXIF orientation applied), windowed like DICOM.
    * ``X-Pixel-Rescale``: ``slope,intercept,applied``: modality value = stored * slope + intercept;
      ``applied`` 1 when the values are modality values already (slope 1, intercept 0 then).
    * ``X-Pixel-Range``: ``min,max`` of the frame in modality values.
    * ``X-Pixel-Windows``: the header's ``center/width`` pairs in modality values, ``;``-separated.
    * ``X-Pixel-Modality``: the DICOM modality (letters and digits only), empty for PNG/JPEG.
    * ``X-Pixel-VOI-Function``: the VOILUTFunction of the header's windows: ``LINEAR``,
      ``LINEAR_EXACT`` or ``SIGMOID`` (PS3.3 C.11.2.1.2-3); the viewer draws them with it.
    * ``X-Pixel-VOI-LUTs``: the usable items of the VOI LUT Sequence, as ``,``-separated item numbers
      from 0 (empty when there are none); item 0 is what the preview shows, and so does the viewer first.

    ``?voi=<item>`` answers with that item's LUT instead of the frame (404 when it is missing or
    damaged): uint16 entries, ``X-Pixel-Shape`` ``entries,1,1``, ``X-Pixel-VOI-First`` the input value
    of the first entry (inputs are modality values rounded half to even; below the first entry or
    past the last they take the end entries) and ``X-Pixel-Range`` the entries' ``min,max``, which is
    black..white. The viewer maps the frame through it itself, so the frame is sent once.
    """
    image = get_image_for_user(request.user, image_id)
    if image.status != ImageStatus.RELEASED:
        raise Http404("Not released")
    if not 0 <= frame < image.frames:
        raise Http404("No such frame")
    if image.rows * image.columns * 3 > VIEWER_MAX_FRAME_VALUES:
        raise Http404("Too large for the viewer")
    if "voi" in request.GET:
        return _voi_lut_response(image, frame, request.GET["voi"])
    try:
        pixels = services.image_frame_pixels(image=image, frame=frame)
    except imaging.RejectedFile:
        raise Http404("This frame cannot be shown") from None
    values = pixels.values
    if values.size > VIEWER_MAX_FRAME_VALUES:
        raise Http404("Too large for the viewer")
    samples = 3 if values.ndim == 3 else 1
    if values.size:
        lo, hi = float(values.min()), float(values.max())
    else:
        lo = hi = 0.0
    if not pixels.rescaled and samples == 1:
        lo, hi = sorted((lo * pixels.slope + pixels.intercept, hi * pixels.slope + pixels.intercept))
    if not (math.isfinite(lo) and math.isfinite(hi)):  # a huge slope overflows: the viewer then auto-windows
        lo = hi = 0.0
    body = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes()
    response = HttpResponse(body, content_type="application/octet-stream")
    response["X-Pixel-Type"] = values.dtype.name
    response["X-Pixel-Shape"] = f"{values.shape[0]},{values.shape[1]},{samples}"
    response["X-Pixel-Frames"] = str(pixels.frames)
    response["X-Pixel-Photometric"] = pixels.photometric
    response["X-Pixel-Rescale"] = f"{pixels.slope!r},{pixels.intercept!r},{int(pixels.rescaled)}"
    response["X-Pixel-Range"] = f"{lo!r},{hi!r}"
    response["X-Pixel-Windows"] = ";".join(f"{c!r}/{w!r}" for c, w in pixels.windows)
    response["X-Pixel-Modality"] = _MODALITY_SAFE.sub("", pixels.modality.upper())[:16]
    response["X-Pixel-VOI-Function"] = _VOI_FUNCTION_SAFE.sub("", pixels.voi_function.upper())[:16]
    response["X-Pixel-VOI-LUTs"] = ",".join(str(i) for i in pixels.voi_luts)
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _voi_lut_response(image, frame: int, voi: str) -> HttpResponse:
    if not _VOI_INDEX.fullmatch(voi):
        raise Http404("No such VOI LUT")
    try:
        lut = services.image_frame_voi_lut(image=image, frame=frame, index=int(voi))
    except imaging.RejectedFile:
        raise Http404("No such VOI LUT") from None
    response = HttpResponse(lut.table.astype("<u2").tobytes(), content_type="application/octet-stream")
    response["X-Pixel-Type"] = "uint16"
    response["X-Pixel-Shape"] = f"{lut.table.size},1,1"
    response["X-Pixel-VOI-First"] = str(lut.first)
    response["X-Pixel-Range"] = f"{lut.lo},{lut.hi}"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_GET
def image_original(request, image_id):
    image = get_image_for_user(request.user, image_id)
    if not image.quarantine_path or not can_see_quarantine(request.user, image):
        raise Http404("No original")
    suffix = {"dicom": "dcm", "png": "png", "jpeg": "jpg"}[image.kind]
    response = FileResponse(
        services.image_original_open(user=request.user, image=image),
        as_attachment=True,
        filename=f"original-{image.pk}.{suffix}",
        content_type="application/octet-stream",
    )
    response["Cache-Control"] = "private, no-store"
    return response


# --- Upload ---------------------------------------------------------------------------------


@login_required
def upload_create(request, project_id):
    project = get_project_for_user(request.user, project_id, roles=UPLOAD_ROLES)
    config = {
        "create_url": reverse("studies:upload_batch_create", kwargs={"project_id": project.pk}),
        "chunk_size": settings.UPLOAD_CHUNK_SIZE,
        "max_file_size": settings.UPLOAD_MAX_FILE_SIZE,
        "max_files": settings.UPLOAD_MAX_BATCH_FILES,
        "label_csv_max_size": settings.UPLOAD_LABEL_CSV_MAX_SIZE,
    }
    studies = studies_for_user(request.user, project=project)[:200]
    return render(
        request,
        "studies/upload_create.html",
        {
            "project": project,
            "studies": studies,
            "uploader_config": config,
            "classes": [*project.class_names, UNGRADABLE],
            "multilabel": project.task_type == TaskType.MULTILABEL,
        },
    )


def _batch_urls(batch) -> dict:
    kwargs = {"batch_id": batch.pk}
    return {
        "id": str(batch.pk),
        "files_url": reverse("studies:upload_file_create", kwargs=kwargs),
        "status_url": reverse("studies:upload_batch_status", kwargs=kwargs),
        "finish_url": reverse("studies:upload_batch_finish", kwargs=kwargs),
        "labels_url": reverse("studies:upload_labels_csv", kwargs=kwargs),
        "label_mode": batch.label_mode,
    }


def _labels_param(body: dict) -> tuple[str, list | None]:
    """{"labels": {"mode": "none" | "batch" | "folders" | "csv", "values": [class, ...]}}; the values
    only with mode "batch" (null or absent: no label). Their schema is checked by the service."""
    labels = body.get("labels")
    if labels is None:
        return UploadLabelMode.NONE, None
    if not isinstance(labels, dict):
        raise RequestRefused("The labels must be given as an object with a mode.")
    mode = labels.get("mode")
    if not isinstance(mode, str) or mode not in UploadLabelMode.values:
        raise RequestRefused(f"The labels' mode must be one of: {', '.join(UploadLabelMode.values)}.")
    values = labels.get("values")
    if mode != UploadLabelMode.BATCH:
        if values is not None:
            raise RequestRefused("Only a label for the whole upload (mode “batch”) takes values.")
        return mode, None
    if values is not None and (
        not isinstance(values, list) or len(values) > 100 or not all(isinstance(v, str) for v in values)
    ):
        raise RequestRefused("The label for the whole upload must be a list of class names.")
    return mode, values


@login_required
@json_endpoint("POST")
def upload_batch_create(request, project_id):
    project = get_project_for_user(request.user, project_id, roles=UPLOAD_ROLES)
    body = json_body(request)
    study_id = body.get("study") or None
    label_mode, label_values = _labels_param(body)
    target = None
    if study_id is not None:
        if not isinstance(study_id, str):
            raise RequestRefused("The study must be given by its id.")
        target = get_study_for_user(request.user, study_id)
        if target.project_id != project.pk:
            raise RequestRefused("That study belongs to another project.")
    try:
        batch = services.upload_batch_create(
            user=request.user, project=project, target_study=target, label_mode=label_mode, label_values=label_values
        )
    except services.UploadRefused as exc:
        raise RequestRefused(exc.reason) from None
    return JsonResponse(_batch_urls(batch), status=201)


LABEL_CSV_TYPES = ("text/csv", "text/plain", "application/csv", "application/vnd.ms-excel")


@login_required
@json_endpoint("POST")
def upload_labels_csv(request, batch_id):
    """The CSV of file name → label of an upload started with mode "csv", as the file's raw bytes."""
    batch = get_batch_for_user(request.user, batch_id)
    try:
        data = request_body(request, max_bytes=settings.UPLOAD_LABEL_CSV_MAX_SIZE)
    except RequestRefused as exc:
        if exc.status != 413:
            raise
        limit = services.human_size(settings.UPLOAD_LABEL_CSV_MAX_SIZE)
        raise RequestRefused(f"The labels file is over the {limit} limit: split the upload.", 413) from None
    if not data.strip():
        raise RequestRefused("The labels file is empty.")
    if request.content_type not in LABEL_CSV_TYPES:
        raise RequestRefused("Send the labels as a CSV file (Content-Type: text/csv).", 415)
    try:
        report = services.upload_labels_csv_set(batch=batch, data=data)
    except services.UploadRefused as exc:
        raise RequestRefused(exc.reason) from None
    return JsonResponse(report)


@login_required
@json_endpoint("POST")
def upload_file_create(request, batch_id):
    batch = get_batch_for_user(request.user, batch_id)
    body = json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RequestRefused("Each file needs a name and a size.")
    size = json_int(body, "size", minimum=0, what="file size")
    try:
        upload = services.upload_file_declare(batch=batch, name=name.strip(), size=size)
    except services.UploadRefused as exc:
        raise RequestRefused(exc.reason) from None
    chunk_url = reverse("studies:upload_chunk", kwargs={"batch_id": batch.pk, "file_id": upload.pk})
    return JsonResponse({"id": str(upload.pk), "chunk_url": chunk_url, "received": 0}, status=201)


@login_required
@json_endpoint("POST")
def upload_chunk(request, batch_id, file_id):
    batch = get_batch_for_user(request.user, batch_id)
    try:
        upload = batch.files.get(pk=file_id, parent=None)
    except (UploadedFile.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such file") from None
    offset = request.headers.get("X-Chunk-Offset", "")
    if not (offset.isascii() and offset.isdigit() and len(offset) <= 20):
        raise RequestRefused("The chunk has no valid X-Chunk-Offset header.")
    data = request_body(request, max_bytes=settings.UPLOAD_CHUNK_SIZE)
    # An empty chunk is the page asking where to resume: whatever its type, it carries nothing.
    if data and request.content_type != "application/octet-stream":
        raise RequestRefused("Send chunks as application/octet-stream.", 415)
    try:
        received, complete = services.upload_chunk_append(upload=upload, offset=int(offset), data=data)
    except services.OffsetMismatch as exc:
        return JsonResponse(
            {"received": exc.received, "error": "The chunk does not start where the file stopped."}, status=409
        )
    except services.UploadRefused as exc:
        raise RequestRefused(exc.reason) from None
    if complete:
        pipeline.upload_received(upload.pk)
    return JsonResponse({"received": received, "complete": complete})


@login_required
@json_endpoint("POST")
def upload_batch_finish(request, batch_id):
    batch = get_batch_for_user(request.user, batch_id)
    json_body(request, allow_empty=True)  # no fields; read so that a malformed request is refused
    services.upload_batch_finish(batch=batch)
    pipeline.batch_finished()
    return JsonResponse({"finished": True})


@never_cache
@login_required
@json_endpoint("GET")
def upload_batch_status(request, batch_id):
    batch = get_batch_for_user(request.user, batch_id)
    files = list(batch.files.select_related("image").order_by("created", "id"))
    label_counts, unlabelled = Counter(), 0
    stuck_before = timezone.now() - timedelta(minutes=settings.UPLOAD_STUCK_MINUTES)
    rows = []
    complete = batch.finished_at is not None
    for upload in files:
        image = upload.image
        status, status_display = upload.status, upload.get_status_display()
        reason = upload.reason
        image_url = image.get_absolute_url() if image is not None else None
        preview_url = None
        waiting = not upload.is_done
        since = upload.modified
        if image is not None and upload.status == UploadStatus.ACCEPTED:
            since = image.released_at or image.modified
            if image.status == ImageStatus.HELD:
                status, status_display, reason = "held", "Needs masking", image.hold_reason
                image_url = reverse("deidentification:image_mask", kwargs={"image_id": image.pk})
            elif image.status == ImageStatus.QUARANTINED:
                status, status_display, waiting = UploadStatus.PROCESSING, "De-identifying", True
            elif image.status == ImageStatus.MASKING:
                status, status_display, waiting = UploadStatus.PROCESSING, "Being masked", True
            elif image.preview_status == PreviewStatus.PENDING:
                waiting = True
            elif image.preview_status == PreviewStatus.READY:
                preview_url = reverse("studies:image_preview", kwargs={"image_id": image.pk})
            else:
                reason = image.preview_error
        if waiting and batch.finished_at and upload.status != UploadStatus.RECEIVING and since < stuck_before:
            # Nothing has moved for a long time (no worker running, or a step lost): the page stops
            # waiting and says so; the pipeline goes on when a worker comes back.
            status, status_display, waiting = "stuck", "Still waiting", False
            reason = (
                f"Not processed after {settings.UPLOAD_STUCK_MINUTES} minutes. It will be processed when the "
                "server's worker runs again: see the worklist later, or tell an administrator."
            )
        if waiting:
            complete = False
        label = upload_labels.label_text(upload.label_values) if upload.label_values else ""
        if upload.image_id is not None and upload.status in (UploadStatus.ACCEPTED, UploadStatus.DUPLICATE):
            # Counted once the file is an image: that is when its label was written.
            if upload.label_state == UploadLabelState.LABELLED:
                label_counts[label] += 1
            elif upload.label_state == UploadLabelState.UNMATCHED:
                unlabelled += 1
        rows.append(
            {
                "id": str(upload.pk),
                "name": upload.client_name,
                "status": status,
                "status_display": status_display,
                "reason": reason,
                "image_url": image_url,
                "preview_url": preview_url,
                "label": label,
            }
        )
    labels = None
    if batch.label_mode != UploadLabelMode.NONE:
        report = batch.label_csv_report or {}
        labels = {
            "mode": batch.label_mode,
            "counts": dict(label_counts),
            "unmatched": unlabelled,
            "csv": report or None,
            "summary": upload_labels.summary_text(
                mode=batch.label_mode,
                counts=label_counts,
                unmatched=unlabelled,
                bad_csv_rows=report.get("bad_count", 0),
                order=[*batch.project.class_names, UNGRADABLE],
            ),
        }
    return JsonResponse({"complete": complete, "files": rows, "labels": labels})
