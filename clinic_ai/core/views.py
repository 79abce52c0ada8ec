"""Error pages that know JSON: the upload page reads ``{"error": ...}``, never an HTML page."""

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.shortcuts import render
from django.views.defaults import bad_request as django_bad_request

TOO_LARGE = "The request is larger than the server accepts."


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "") or request.content_type in (
        "application/json",
        "application/octet-stream",
    )


def bad_request(request, exception=None):
    """handler400. A body past DATA_UPLOAD_MAX_MEMORY_SIZE is read (and refused) by Django before
    any view of ours runs, e.g. in the CSRF middleware: it answers 413, as JSON to the upload page."""
    too_large = isinstance(exception, RequestDataTooBig)
    if _wants_json(request):
        return JsonResponse(
            {"error": TOO_LARGE if too_large else "The request could not be read."}, status=413 if too_large else 400
        )
    if too_large:
        return render(request, "413.html", status=413)
    return django_bad_request(request, exception)
