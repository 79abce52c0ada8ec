import uuid

from django.db.models import QuerySet

from clinic_ai.accounts.models import Project, User
from clinic_ai.core.audit_sentences import AuditRefs, ImageRef, image_id_of, user_name
from clinic_ai.core.models import AuditEvent
from clinic_ai.deid.pseudonyms import patient_key_parts
from clinic_ai.deidentification.models import PatientLink
from clinic_ai.inference.models import Ensemble, InferenceResult, ModelVersion
from clinic_ai.studies.models import Image, ImageStatus
from clinic_ai.studies.selectors import can_see_quarantine, get_image_for_user, images_visible_to


def held_images_for_user(user: User) -> QuerySet[Image]:
    """The "needs masking" queue: the held images the user may see (their uploads, or all of a
    project they administer), with those a worker is masking right now."""
    held = images_visible_to(user).filter(status__in=[ImageStatus.HELD, ImageStatus.MASKING])
    return held.select_related("project", "uploaded_by").order_by("created")


def get_held_image_for_user(user: User, image_id) -> Image:
    """A held image, for its uploader or an admin; 404 for anyone else, as for any quarantined file."""
    from django.http import Http404

    image = get_image_for_user(user, image_id)
    if not can_see_quarantine(user, image):
        raise Http404("No such image")
    return image


# --- The audit trail of a project, for its admins --------------------------------------------


def audit_events_for_project(
    project: Project, *, actor: User | None = None, action: str = "", date_from=None, date_to=None
) -> QuerySet[AuditEvent]:
    """A project's events, newest first, filtered; the dates are days in the server's time zone."""
    events = AuditEvent.objects.filter(project=project).select_related("actor", "project")
    if actor is not None:
        events = events.filter(actor=actor)
    if action:
        events = events.filter(action=action)
    if date_from:
        events = events.filter(created__date__gte=date_from)
    if date_to:
        events = events.filter(created__date__lte=date_to)
    return events.order_by("-created", "-id")


def audit_filter_choices(project: Project) -> dict:
    """The actions and people that occur in a project's trail, for the filter form (two queries)."""
    events = AuditEvent.objects.filter(project=project)
    actions = list(events.values_list("action", flat=True).distinct().order_by("action"))
    actors = User.objects.filter(pk__in=events.exclude(actor=None).values("actor_id")).order_by("username")
    return {"actions": actions, "actors": actors}


def audit_refs(events: list[AuditEvent]) -> AuditRefs:
    """What a page of events refers to: images and their studies, results' images, members, named
    objects. At most four queries, whatever the number of events."""
    refs = AuditRefs()
    result_ids = [e.object_id for e in events if e.object_type == "inference.inferenceresult"]
    if result_ids:
        rows = InferenceResult.objects.filter(pk__in=_uuids(result_ids)).values_list("pk", "image_id")
        refs.result_images = {str(pk): str(image_id) for pk, image_id in rows}
    image_ids = {image_id_of(e) for e in events} | set(refs.result_images.values())
    image_ids.discard("")
    if image_ids:
        rows = Image.objects.filter(pk__in=_uuids(image_ids)).values_list("pk", "study_id", "study__patient_pseudonym")
        refs.images = {str(pk): ImageRef(study_id, pseudonym) for pk, study_id, pseudonym in rows}
    user_ids = {
        str(e.data["user_id"])
        for e in events
        if isinstance(e.data, dict) and isinstance(e.data.get("user_id"), int | str) and e.action.startswith("member")
    }
    if user_ids:
        wanted = [int(u) for u in user_ids if u.isdigit()]
        refs.users = {str(u.pk): user_name(u) for u in User.objects.filter(pk__in=wanted)}
    named = {"inference.modelversion": ModelVersion, "inference.ensemble": Ensemble}
    for object_type, model in named.items():
        ids = [e.object_id for e in events if e.object_type == object_type]
        if ids:
            for obj in model.objects.filter(pk__in=_uuids(ids)):
                refs.object_names[(object_type, str(obj.pk))] = obj.label
    return refs


def _uuids(values) -> list[uuid.UUID]:
    """Only well-formed ids: data written by old code (or by hand) must not break the page."""
    found = []
    for value in values:
        try:
            found.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return found


def patient_link_rows(links: list[PatientLink]) -> list[dict]:
    """The link table as rows of issuer, original identifier and pseudonym (no JSON on the page)."""
    rows = []
    for link in links:
        how, issuer, identifier = patient_key_parts(link.original_key)
        rows.append({"how": how, "issuer": issuer, "identifier": identifier, "link": link})
    return rows
