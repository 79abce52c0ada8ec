import csv
import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from clinic_ai.accounts.selectors import MANAGE_ROLES, get_project_for_user
from clinic_ai.core.audit_sentences import sentence, user_name
from clinic_ai.core.http import RequestRefused, json_body, json_endpoint
from clinic_ai.deid.process import Device
from clinic_ai.deidentification import selectors, services
from clinic_ai.deidentification.forms import AuditFilterForm, DeidProfileForm
from clinic_ai.deidentification.selectors import get_held_image_for_user, held_images_for_user
from clinic_ai.pipeline import tasks as pipeline
from clinic_ai.studies import imaging
from clinic_ai.studies.models import ImageStatus


@login_required
def held_list(request):
    page = Paginator(held_images_for_user(request.user), 50).get_page(request.GET.get("page"))
    masking = any(image.status == ImageStatus.MASKING for image in page)
    return render(request, "deidentification/held_list.html", {"page": page, "masking": masking})


@login_required
def image_mask(request, image_id):
    image = get_held_image_for_user(request.user, image_id)
    if image.status != ImageStatus.HELD:
        messages.info(request, "This image is not waiting to be masked.")
        return redirect(image)
    width, height = services.held_image_size(image)
    device = None
    if image.kind == "dicom" and (image.device_manufacturer or image.device_model):
        device = Device(image.device_manufacturer, image.device_model, rows=height, columns=width).label
    config = {
        "image_width": width,
        "image_height": height,
        "frames": image.frames,
        "preview_url": reverse("deidentification:image_mask_source", args=[image.pk]),
        "masked_preview_url": reverse("deidentification:image_mask_preview", args=[image.pk]),
        "release_url": reverse("deidentification:image_mask_release", args=[image.pk]),
        "suggested_boxes": image.suggested_boxes,
        "device_label": device,
    }
    return render(
        request,
        "deidentification/image_mask.html",
        {"image": image, "hold_reason": image.hold_reason, "mask_config": config},
    )


def _png(picture) -> HttpResponse:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    response = HttpResponse(buffer.getvalue(), content_type="image/png")
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def image_mask_source(request, image_id):
    image = get_held_image_for_user(request.user, image_id)
    if image.status != ImageStatus.HELD:
        return HttpResponse(status=404)
    frame = request.GET.get("frame", "0")
    if not (frame.isascii() and frame.isdigit() and len(frame) < 7 and int(frame) < image.frames):
        raise Http404("No such frame")
    try:
        return _png(services.held_image_preview(user=request.user, image=image, frame=int(frame)))
    except imaging.RejectedFile:
        raise Http404("This image cannot be shown") from None


THUMBNAIL_SIZE = 160


@login_required
@require_GET
def image_mask_thumbnail(request, image_id):
    """A small picture of a held image for the masking queue: for its uploader and admins only
    (:func:`get_held_image_for_user`), never cached (it may show burned-in patient text)."""
    image = get_held_image_for_user(request.user, image_id)
    if image.status not in (ImageStatus.HELD, ImageStatus.MASKING) or not image.deid_path:
        raise Http404("Not waiting to be masked")
    try:
        picture = services.held_image_preview(user=request.user, image=image, max_size=THUMBNAIL_SIZE, thumbnail=True)
    except (imaging.RejectedFile, OSError):  # OSError: masked and released a moment ago, the file purged
        raise Http404("This image cannot be shown") from None
    return _png(picture)


def _mask_body(request) -> dict:
    body = json_body(request)
    for flag in ("save_template", "confirm_no_text"):
        if not isinstance(body.get(flag, False), bool):
            raise RequestRefused("The mask options must be true or false.")
    return body


def _frame(body: dict, image) -> int:
    frame = body.get("frame", 0)
    if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < image.frames:
        raise RequestRefused("No such frame.")
    return frame


@login_required
@json_endpoint("POST")
def image_mask_preview(request, image_id):
    image = get_held_image_for_user(request.user, image_id)
    body = _mask_body(request)
    if image.status != ImageStatus.HELD:
        raise RequestRefused("This image is not waiting to be masked.")
    try:
        picture = services.held_image_preview(
            user=request.user, image=image, boxes=body.get("boxes", []), frame=_frame(body, image)
        )
    except (services.MaskRefused, imaging.RejectedFile) as exc:
        raise RequestRefused(exc.reason) from None
    return _png(picture)


@login_required
@json_endpoint("POST")
def image_mask_release(request, image_id):
    image = get_held_image_for_user(request.user, image_id)
    body = _mask_body(request)
    try:
        services.image_mask_request(
            user=request.user,
            image_id=image.pk,
            boxes=body.get("boxes", []),
            save_template=body.get("save_template") is True,
            confirm_no_text=body.get("confirm_no_text") is True,
        )
    except services.MaskRefused as exc:
        raise RequestRefused(exc.reason) from None
    pipeline.mask_requested(image.pk)
    messages.success(request, "Masking the image on every frame: it is released in a moment.")
    return JsonResponse({"redirect": reverse("deidentification:held_list")})


@login_required
@never_cache  # names, IDs and birth dates: not for the browser's cache
def patient_links(request, project_id):
    project = get_project_for_user(request.user, project_id, roles=MANAGE_ROLES)
    links = services.patient_links_read(user=request.user, project=project)
    context = {
        "project": project,
        "rows": selectors.patient_link_rows(links),
        "worklist_url": reverse("studies:worklist"),
    }
    return render(request, "deidentification/patient_links.html", context)


AUDIT_PAGE_SIZE = 50
AUDIT_CSV_COLUMNS = ("when", "user", "event", "sentence", "object_type", "object_id")


def _audit_filtered(request, project):
    choices = selectors.audit_filter_choices(project)
    form = AuditFilterForm(request.GET or None, **choices)
    return form, selectors.audit_events_for_project(project, **form.filters())


@login_required
def audit_list(request, project_id):
    project = get_project_for_user(request.user, project_id, roles=MANAGE_ROLES)
    form, events = _audit_filtered(request, project)
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    refs = selectors.audit_refs(rows)
    page.object_list = [(event, sentence(event, refs)[0]) for event in rows]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "deidentification/audit_list.html",
        {"project": project, "page": page, "form": form, "query": query.urlencode()},
    )


def _csv_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (a user name may start with "=")."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class _Echo:
    def write(self, value):
        return value


@login_required
@require_GET
def audit_export(request, project_id):
    """The trail as CSV, with the page's filters; streamed, a few queries per 500 events."""
    project = get_project_for_user(request.user, project_id, roles=MANAGE_ROLES)
    form, events = _audit_filtered(request, project)
    services.audit_export_record(
        actor=request.user, project=project, filters=[name for name, value in form.filters().items() if value]
    )
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(AUDIT_CSV_COLUMNS)
        chunk = []
        for event in events.iterator(chunk_size=500):
            chunk.append(event)
            if len(chunk) == 500:
                yield from _audit_csv_rows(writer, chunk)
                chunk = []
        yield from _audit_csv_rows(writer, chunk)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{project.pk}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response


def _audit_csv_rows(writer, events):
    refs = selectors.audit_refs(events)
    for event in events:
        yield writer.writerow(
            [
                event.created.isoformat(),
                _csv_cell(user_name(event.actor) if event.actor else "system"),
                event.action,
                _csv_cell(sentence(event, refs)[1]),
                event.object_type,
                event.object_id,
            ]
        )


@login_required
def profile_update(request, project_id):
    project = get_project_for_user(request.user, project_id, roles=MANAGE_ROLES)
    profile = services.profile_for(project)
    form = DeidProfileForm(request.POST if request.method == "POST" else None, instance=profile)
    if request.method == "POST" and form.is_valid():
        services.deid_profile_update(
            actor=request.user, project=project, options={name: form.cleaned_data[name] for name in form.fields}
        )
        messages.success(request, "De-identification options saved. They apply to uploads from now on.")
        return redirect(project)
    status = 400 if request.method == "POST" else 200
    return render(request, "deidentification/profile_form.html", {"project": project, "form": form}, status=status)
