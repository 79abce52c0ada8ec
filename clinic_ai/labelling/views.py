import csv
import io
import json
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from clinic_ai.accounts.selectors import projects_for_user, role_in_project
from clinic_ai.core.http import json_body, json_endpoint
from clinic_ai.labelling import selectors, services
from clinic_ai.labelling.forms import AdjudicationForm, LabellingSettingsForm
from clinic_ai.labelling.models import MAX_SECONDS_PER_LABEL, UNGRADABLE
from clinic_ai.labelling.selectors import ADJUDICATE_ROLES, LABEL_ROLES, MANAGE_ROLES, get_labelling_project_for_user
from clinic_ai.studies.selectors import get_image_for_user


def _project_image(request, project, image_id):
    """An image of this project the user may see; anything else is a 404."""
    if not isinstance(image_id, str | uuid.UUID):
        raise Http404("No such image")
    image = get_image_for_user(request.user, image_id)
    if image.project_id != project.pk:
        raise Http404("No such image")
    return image


@login_required
@require_GET
def label_home(request):
    """The navbar's "Label": the user's projects (each project's page counts what waits); straight to
    the project when there is only one."""
    projects = list(projects_for_user(request.user).only("pk", "name"))
    if len(projects) == 1:
        return redirect("labelling:project_labelling", project_id=projects[0].pk)
    return render(request, "labelling/label_home.html", {"projects": projects})


@login_required
@require_GET
def project_labelling(request, project_id):
    """The project's labelling page: the reader's queue; for radiologists and admins consensus,
    agreement and the adjudication list; for admins settings and export."""
    project = get_labelling_project_for_user(request.user, project_id, roles=LABEL_ROLES)
    role = role_in_project(request.user, project)
    settings = selectors.labelling_settings_for(project)
    context = {
        "project": project,
        "role": role,
        "settings": settings,
        "remaining": selectors.queue_remaining_for_user(request.user, project, settings=settings),
    }
    if role in ADJUDICATE_ROLES:
        consensus = selectors.project_consensus(project)
        kappa_name, kappa, kappa_images = consensus.kappa()
        context.update(
            consensus=consensus,
            complete=len(consensus.complete),
            needs_adjudication=len(consensus.needs_adjudication),
            adjudicated=len(consensus.adjudicated),
            kappa_name=kappa_name,
            kappa=kappa,
            kappa_images=kappa_images,
            distribution=sorted(selectors.label_counts_by_value(project).items()),
        )
    if role in MANAGE_ROLES:
        context["settings_form"] = LabellingSettingsForm(
            initial={
                "readers_per_image": settings.readers_per_image,
                "readers_see_ai_result": settings.readers_see_ai_result,
            }
        )
    return render(request, "labelling/project_labelling.html", context)


@login_required
@require_POST
def labelling_settings_update(request, project_id):
    project = get_labelling_project_for_user(request.user, project_id, roles=MANAGE_ROLES)
    form = LabellingSettingsForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Readers per image must be between 1 and 10.")
    else:
        services.labelling_settings_update(actor=request.user, project=project, **form.cleaned_data)
        messages.success(request, "Labelling settings saved.")
    return redirect("labelling:project_labelling", project_id=project.pk)


@login_required
@require_GET
def label_queue(request, project_id):
    """The keyboard page. Everything it needs comes from the JSON API; nothing inline (CSP)."""
    project = get_labelling_project_for_user(request.user, project_id, roles=LABEL_ROLES)
    config = {
        "queueUrl": reverse("labelling:queue_api", args=[project.pk]),
        "labelUrl": reverse("labelling:label_api", args=[project.pk]),
        "undoUrl": reverse("labelling:undo_api", args=[project.pk]),
        "taskType": project.task_type,
        "classes": list(project.class_names),
        "ungradable": UNGRADABLE,
        "maxSeconds": MAX_SECONDS_PER_LABEL,
    }
    return render(request, "labelling/label_queue.html", {"project": project, "config": config})


@never_cache
@login_required
@json_endpoint("GET")
def queue_api(request, project_id):
    """The next images for this reader: ids and preview URLs (and the AI result only when the project
    allows it); never another reader's label."""
    project = get_labelling_project_for_user(request.user, project_id, roles=LABEL_ROLES)
    exclude = []
    for value in request.GET.get("exclude", "").split(",")[:500]:
        try:
            exclude.append(uuid.UUID(value))
        except ValueError:
            continue
    try:
        limit = int(request.GET.get("limit", "5"))
    except ValueError:
        limit = 5
    settings = selectors.labelling_settings_for(project)
    images = selectors.get_label_queue_for_user(request.user, project, limit=limit, exclude=exclude, settings=settings)
    ai = selectors.ai_results_for_images(project, [i.pk for i in images]) if settings.readers_see_ai_result else {}
    items = []
    for image in images:
        item = {
            "id": str(image.pk),
            "preview_url": reverse("studies:image_preview", args=[image.pk]),
            "pixels_url": reverse("studies:image_pixels", args=[image.pk, 0]),
        }
        if image.pk in ai:
            item["ai"] = ai[image.pk]
        items.append(item)
    return JsonResponse({"items": items})


@login_required
@json_endpoint("POST")
def label_api(request, project_id):
    project = get_labelling_project_for_user(request.user, project_id, roles=LABEL_ROLES)
    body = json_body(request)
    image = _project_image(request, project, body.get("image"))
    try:
        request_id = uuid.UUID(str(body["request_id"])) if body.get("request_id") else None
    except ValueError:
        return JsonResponse({"error": "Bad request id."}, status=400)
    try:
        label, created = services.label_create(
            actor=request.user,
            project=project,
            image=image,
            values=body.get("values"),
            seconds=body.get("seconds"),
            request_id=request_id,
        )
    except services.LabelRefused as exc:
        return JsonResponse({"error": exc.reason}, status=exc.status)
    return JsonResponse({"id": str(label.pk), "values": label.values}, status=201 if created else 200)


@login_required
@json_endpoint("POST")
def undo_api(request, project_id):
    project = get_labelling_project_for_user(request.user, project_id, roles=LABEL_ROLES)
    image = _project_image(request, project, json_body(request).get("image"))
    try:
        label = services.label_undo(actor=request.user, project=project, image=image)
    except services.LabelRefused as exc:
        return JsonResponse({"error": exc.reason}, status=exc.status)
    return JsonResponse({"undone": label is not None})


@login_required
@require_GET
def adjudication_list(request, project_id):
    """Images whose readers disagreed with no majority, with their labels, for a radiologist's final word."""
    project = get_labelling_project_for_user(request.user, project_id, roles=ADJUDICATE_ROLES)
    consensus = selectors.project_consensus(project)
    return render(
        request,
        "labelling/adjudication_list.html",
        {
            "project": project,
            "items": consensus.needs_adjudication[:100],
            "total": len(consensus.needs_adjudication),
            "adjudicated": consensus.adjudicated[-20:],
            "choices": list(project.class_names) + [UNGRADABLE],
        },
    )


@login_required
@require_POST
def adjudicate(request, project_id, image_id):
    project = get_labelling_project_for_user(request.user, project_id, roles=ADJUDICATE_ROLES)
    image = _project_image(request, project, image_id)
    form = AdjudicationForm(request.POST, project=project)
    if not form.is_valid():
        messages.error(request, "Pick the final label.")
        return redirect("labelling:adjudication_list", project_id=project.pk)
    try:
        services.label_adjudicate(actor=request.user, project=project, image=image, values=form.cleaned_data["values"])
    except services.LabelRefused as exc:
        messages.error(request, exc.reason)
    else:
        messages.success(request, f"Final label of image {str(image.pk)[:8]} saved.")
    return redirect("labelling:adjudication_list", project_id=project.pk)


EXPORT_COLUMNS = ("image_id", "study_id", "reader", "values", "source", "adjudication", "seconds", "created")


@login_required
@require_GET
def label_export(request, project_id, fmt):
    if fmt not in ("csv", "json"):
        raise Http404("No such format")
    project, rows = selectors.get_label_export_for_user(request.user, project_id)
    services.label_export_record(actor=request.user, project=project, fmt=fmt, count=len(rows))
    filename = f"labels-{project.pk}.{fmt}"
    if fmt == "json":
        response = HttpResponse(json.dumps({"labels": rows}, indent=1), content_type="application/json")
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "values": ";".join(row["values"])})
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
