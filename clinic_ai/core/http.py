"""Reading what a browser (or anyone else) sends: the one place request bodies are parsed.

Every JSON endpoint reads its body through :func:`json_body` and answers a refusal as
``{"error": "..."}`` with a 4xx status (:func:`json_endpoint`), never a 500: a body that is
too large, not UTF-8, not JSON, nested deeper than any request of ours, holding NaN or
Infinity, lone surrogates or NUL characters (which PostgreSQL cannot store), or not an object.
Refusal messages never quote the body: it may carry patient data.
"""

import functools
import json
import math
import re

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse

# Our largest JSON request is a mask of at most 200 boxes (a few KB); a body far larger is not ours.
MAX_JSON_BYTES = 64 * 1024
# Our deepest request is {"boxes": [[x0, y0, x1, y1]]}: depth 3. json.loads recurses per level
# (100,000 levels raise RecursionError), so depth is counted before parsing.
MAX_JSON_DEPTH = 8

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


class RequestRefused(Exception):
    """A request the server will not act on; `reason` is for the person, `status` a 4xx."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def json_error(reason: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": reason}, status=status)


def json_endpoint(*methods: str):
    """A view that answers JSON: wrong methods, refusals, 403 and 404 come back as ``{"error": ...}``.

    Put it under ``login_required`` (an anonymous caller is sent to the login page as elsewhere).
    """

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = json_error(f"This address takes {' or '.join(methods)} requests only.", 405)
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except RequestRefused as exc:
                return json_error(exc.reason, exc.status)
            except Http404:
                return json_error("Not found, or not yours to see.", 404)
            except PermissionDenied:
                return json_error("Your role in this project does not allow this.", 403)

        return wrapper

    return decorate


def request_body(request, *, max_bytes: int) -> bytes:
    """The raw body, refused with 413 past `max_bytes` (or past DATA_UPLOAD_MAX_MEMORY_SIZE)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise RequestRefused("The request has an invalid Content-Length.") from None
    if length > max_bytes:
        raise RequestRefused("The request is larger than the server accepts.", 413)
    try:
        body = request.body
    except RequestDataTooBig:
        raise RequestRefused("The request is larger than the server accepts.", 413) from None
    if len(body) > max_bytes:
        raise RequestRefused("The request is larger than the server accepts.", 413)
    return body


def _refuse_constant(name: str):
    raise ValueError("non-finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


def _nesting_depth(body: bytes) -> int:
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b'""', body)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _has_bad_text(value) -> bool:
    if isinstance(value, str):
        return bool(_BAD_TEXT.search(value))
    if isinstance(value, dict):
        return any(_has_bad_text(k) or _has_bad_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_bad_text(v) for v in value)
    return False


def json_body(request, *, allow_empty: bool = False, max_bytes: int = MAX_JSON_BYTES) -> dict:
    """The request's JSON object, or :class:`RequestRefused` saying what is wrong with it.

    With `allow_empty`, an empty body reads as ``{}`` (for endpoints that take no fields).
    """
    body = request_body(request, max_bytes=max_bytes)
    if not body.strip():
        if allow_empty:
            return {}
        raise RequestRefused("The request is empty; send a JSON object.")
    if request.content_type != "application/json":
        raise RequestRefused("Send the request as JSON (Content-Type: application/json).", 415)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestRefused("The request is not valid UTF-8 text.") from None
    if _nesting_depth(body) > MAX_JSON_DEPTH:
        raise RequestRefused("The request is nested too deeply to be one of ours.")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):
        raise RequestRefused("The request is not valid JSON (or holds numbers that are not finite).") from None
    if not isinstance(value, dict):
        raise RequestRefused("The request must be a JSON object.")
    if _has_bad_text(value):
        raise RequestRefused("The request holds text that is not valid Unicode.")
    return value


def json_int(body: dict, name: str, *, minimum: int, maximum: int | None = None, what: str | None = None) -> int:
    """An integer field (not a boolean, a float or a string) within [minimum, maximum]."""
    value = body.get(name)
    what = what or name
    if not isinstance(value, int) or isinstance(value, bool):
        raise RequestRefused(f"The {what} must be a whole number.")
    if value < minimum or (maximum is not None and value > maximum):
        raise RequestRefused(f"The {what} is out of range.")
    return value
