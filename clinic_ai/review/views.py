import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from clinic_ai.inference.selectors import active_ensemble
from clinic_ai.labelling.models import UNGRADABLE
from clinic_ai.review import selectors, services
from clinic_ai.review.forms import ReviewDecisionForm, WorklistFilterForm, worklist_querystring
from clinic_ai.review.models import Decision

PAGE_SIZE = 25


def _worklist_query(request, project):
    form = WorklistFilterForm(request.GET, project=project, modalities=selectors.modalities_of(project))
    return form, form.query()


def _with_query(url: str, querystring: str) -> str:
    return f"{url}?{querystring}" if querystring else url


@login_required
@require_GET
def worklist(request, project_id):
    """Released images with a finished AI result, most urgent first, for radiologists and admins."""
    project = selectors.get_review_project_for_user(request.user, project_id)
    form, query = _worklist_query(request, project)
    page = Paginator(selectors.review_worklist(project, query), PAGE_SIZE).get_page(request.GET.get("page"))
    ensemble = active_ensemble(project)
    return render(
        request,
        "review/worklist.html",
        {
            "project": project,
            "filters": [(form[name], getattr(query, name)) for name in form.fields],
            "query": query,
            "page": page,
            "querystring": worklist_querystring(query),
            "ensemble": ensemble,
        },
    )


def _ordered_versions(result) -> list[tuple[str, str]]:
    # JSON objects come back unordered: the ensemble first, then the members in their order.
    versions = result.versions or {}
    order = ["ensemble", *(m.get("name") for m in result.members or [] if isinstance(m, dict))]
    return [("Ensemble" if name == "ensemble" else name, versions[name]) for name in order if name in versions]


def _render_review(request, project, image, result, query, form, *, status=200):
    querystring = worklist_querystring(query)
    neighbour = selectors.worklist_neighbour(project, query, image)
    history = selectors.review_history(image)
    classes = list(project.class_names)
    members = [m for m in (result.members or []) if isinstance(m, dict)]
    context = {
        "project": project,
        "image": image,
        "result": result,
        "form": form,
        "classes": classes,
        "class_keys": [(i + 1 if i < 9 else None, name) for i, name in enumerate(classes)],
        "probabilities": [(name, (result.probabilities or {}).get(name)) for name in classes],
        "members": [
            {
                "name": m.get("name", ""),
                "weight": m.get("weight"),
                "probabilities": [(m.get("probabilities") or {}).get(name) for name in classes],
            }
            for m in members
        ],
        "uncertainty": result.uncertainty or {},
        "versions": _ordered_versions(result),
        "heatmap": "ensemble" in (result.heatmaps or {}),
        "history": history,
        "mine": next((r for r in history if r.is_current and r.reviewer_id == request.user.pk), None),
        "next_url": _with_query(reverse("review:review_image", args=[project.pk, neighbour.pk]), querystring)
        if neighbour
        else None,
        "worklist_url": _with_query(reverse("review:worklist", args=[project.pk]), querystring),
        "decide_url": _with_query(reverse("review:decide", args=[project.pk, image.pk]), querystring),
        "ungradable": UNGRADABLE,
    }
    return render(request, "review/review_image.html", context, status=status)


@login_required
@require_GET
def review_image(request, project_id, image_id):
    """The image beside the AI result, the decision form and the history of decisions."""
    project = selectors.get_review_project_for_user(request.user, project_id)
    image = selectors.get_review_image_for_user(request.user, project, image_id)
    result = selectors.review_result_for_image(project, image)
    _, query = _worklist_query(request, project)
    form = ReviewDecisionForm(initial={"result": result.pk, "request_id": uuid.uuid4()}, project=project)
    return _render_review(request, project, image, result, query, form)


@login_required
@require_POST
def decide(request, project_id, image_id):
    """Store the decision, then show the next image of the worklist (its order and filters ride along
    in the query string)."""
    project = selectors.get_review_project_for_user(request.user, project_id)
    image = selectors.get_review_image_for_user(request.user, project, image_id)
    _, query = _worklist_query(request, project)
    form = ReviewDecisionForm(request.POST, project=project)
    if not form.is_valid():
        result = selectors.review_result_for_image(project, image)
        return _render_review(request, project, image, result, query, form, status=400)
    data = form.cleaned_data
    here = _with_query(reverse("review:review_image", args=[project.pk, image.pk]), worklist_querystring(query))
    result = selectors.result_of_image(image, data["result"])
    if result is None:
        messages.error(request, "This AI result is not of this image.")
        return redirect(here)
    try:
        review, created = services.review_decide(
            actor=request.user,
            project=project,
            image=image,
            result=result,
            decision=data["decision"],
            values=data["values"] if data["decision"] == Decision.DISAGREE else None,
            comment=data["comment"],
            request_id=data["request_id"],
        )
    except services.ReviewRefused as exc:
        messages.error(request, exc.reason)
        return redirect(here)
    if created:
        messages.success(
            request,
            f"Image {str(image.pk)[:8]}: {review.get_decision_display().lower()} ({', '.join(review.label.values)}).",
        )
    neighbour = selectors.worklist_neighbour(project, query, image)
    if neighbour is None:
        messages.info(request, "Nothing else to review with these filters.")
        return redirect(_with_query(reverse("review:worklist", args=[project.pk]), worklist_querystring(query)))
    return redirect(
        _with_query(reverse("review:review_image", args=[project.pk, neighbour.pk]), worklist_querystring(query))
    )
