from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clinic_ai.accounts.models import Role
from clinic_ai.accounts.selectors import UPLOAD_ROLES, get_project_for_user, require_role, role_in_project
from clinic_ai.core.http import RequestRefused, json_body, json_endpoint
from clinic_ai.inference import selectors, services
from clinic_ai.inference.forms import EnsembleForm, ModelVersionForm
from clinic_ai.inference.models import ResultStatus
from clinic_ai.pipeline import tasks as pipeline
from clinic_ai.studies import storage
from clinic_ai.studies.selectors import get_image_for_user

ADMIN = (Role.ADMIN,)


def _result_json(request, image) -> dict:
    result = selectors.result_for_image(image)
    ensemble = selectors.active_ensemble(image.project)
    can_rerun = image.status == "released" and ensemble is not None and _may_run(request.user, image.project)
    if result is None:
        return {"state": "none", "ensemble": ensemble.label if ensemble else None, "can_rerun": can_rerun}
    body = {
        "state": result.status,
        "state_display": result.get_status_display(),
        "reason": result.reason,
        "ensemble": result.ensemble.label,
        "can_rerun": can_rerun and result.is_finished,
    }
    if result.status == ResultStatus.DONE:
        body.update(
            labels=result.labels,
            target_class=result.target_class,
            probabilities=result.probabilities,
            members=result.members,
            uncertainty=result.uncertainty,
            versions=result.versions,
            timings=result.timings,
            heatmaps={
                name: reverse("inference:result_heatmap", kwargs={"result_id": result.pk, "name": name})
                for name in result.heatmaps
            },
            threshold=result.ensemble.threshold,
            tta=result.ensemble.tta,
        )
    return body


def _may_run(user, project) -> bool:
    return role_in_project(user, project) in UPLOAD_ROLES


@never_cache
@login_required
@json_endpoint("GET")
def image_inference(request, image_id):
    """The AI result beside an image, polled by the image page while the job runs."""
    image = get_image_for_user(request.user, image_id)
    selectors.require_ai_visible(request.user, image)
    return JsonResponse(_result_json(request, image))


@login_required
@json_endpoint("POST")
def image_inference_rerun(request, image_id):
    image = get_image_for_user(request.user, image_id)
    require_role(request.user, image.project, UPLOAD_ROLES)
    json_body(request, allow_empty=True)  # no fields; read so that a malformed request is refused
    try:
        result = services.result_rerun(actor=request.user, image=image)
    except services.RegistryRefused as exc:
        raise RequestRefused(exc.reason) from None
    if result is not None:
        pipeline.inference_requested([result.pk])
    return JsonResponse(_result_json(request, image))


@login_required
@require_GET
def result_heatmap(request, result_id, name):
    result = selectors.get_result_for_user(request.user, result_id)
    relative = result.heatmaps.get(name)
    if not relative:
        raise Http404("No such heatmap")
    try:
        handle = open(storage.media_path(relative), "rb")
    except OSError:
        raise Http404("No such heatmap") from None
    response = FileResponse(handle, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def registry(request, project_id):
    """Models, ensembles and the project-wide run, for the project's admins."""
    project = get_project_for_user(request.user, project_id, roles=ADMIN)
    model_form = ModelVersionForm(prefix="model")
    ensemble_form = EnsembleForm(prefix="ensemble", project=project)
    if request.method == "POST" and request.POST.get("action") == "model":
        model_form = ModelVersionForm(request.POST, request.FILES, prefix="model")
        if model_form.is_valid():
            data = model_form.cleaned_data
            try:
                model = services.model_version_register(
                    actor=request.user,
                    project=project,
                    source=data["file"],
                    name=data["name"],
                    version=data["version"],
                    architecture=data["architecture"],
                    preprocessing=data["preprocessing"],
                    class_names=list(project.class_names),
                    task_type=project.task_type,
                    last_conv_layer=data["last_conv_layer"],
                    validation=data["validation"],
                    model_card=data["model_card"],
                )
            except services.RegistryRefused as exc:
                model_form.add_error(None, exc.reason)
            else:
                pipeline.model_registered(model.pk)
                messages.success(request, f"{model.label} is being validated by a worker.")
                return redirect("inference:registry", project_id=project.pk)
    elif request.method == "POST" and request.POST.get("action") == "ensemble":
        ensemble_form = EnsembleForm(request.POST, prefix="ensemble", project=project)
        if ensemble_form.is_valid():
            data = ensemble_form.cleaned_data
            try:
                ensemble = services.ensemble_create(
                    actor=request.user,
                    project=project,
                    name=data["name"],
                    slug=data["slug"],
                    version=data["version"],
                    members=data["member_weights"],
                    threshold=data["threshold"],
                    temperature=data["temperature"],
                    tta=data["tta"],
                    model_card=data["model_card"],
                )
            except services.RegistryRefused as exc:
                ensemble_form.add_error(None, exc.reason)
            else:
                messages.success(request, f"Ensemble {ensemble.label} created. Activate it to use it.")
                return redirect("inference:registry", project_id=project.pk)
    refused = request.method == "POST"  # a valid form redirected above
    return render(
        request,
        "inference/registry.html",
        {
            "project": project,
            "model_form": model_form,
            "ensemble_form": ensemble_form,
            "progress": selectors.project_inference_progress(project),
            **selectors.registry_for_project(project),
        },
        status=400 if refused else 200,
    )


@login_required
@require_POST
def ensemble_activate(request, ensemble_id):
    ensemble = selectors.get_ensemble_for_admin(request.user, ensemble_id)
    try:
        services.ensemble_activate(actor=request.user, ensemble=ensemble)
    except services.RegistryRefused as exc:
        messages.error(request, exc.reason)
    else:
        messages.success(request, f"{ensemble.label} is now the project's ensemble.")
    return redirect("inference:registry", project_id=ensemble.project_id)


@login_required
@json_endpoint("POST")
def project_inference_queue(request, project_id):
    project = get_project_for_user(request.user, project_id, roles=ADMIN)
    json_body(request, allow_empty=True)
    try:
        ids = services.project_results_queue(actor=request.user, project=project)
    except services.RegistryRefused as exc:
        raise RequestRefused(exc.reason) from None
    pipeline.inference_requested(ids)
    return JsonResponse({"queued": len(ids), **selectors.project_inference_progress(project)})


@never_cache
@login_required
@json_endpoint("GET")
def project_inference_progress(request, project_id):
    project = get_project_for_user(request.user, project_id, roles=ADMIN)
    return JsonResponse(selectors.project_inference_progress(project))
