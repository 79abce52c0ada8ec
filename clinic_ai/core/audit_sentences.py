"""The audit trail in words: one sentence template per action, with links to the objects.

`SENTENCES` is the one table. A template names parts in braces; :class:`_Parts` makes each part
from the event and what :class:`AuditRefs` found about the objects it refers to (one batch of
queries per page, made by the caller). A part is shown as text in a CSV and as escaped text or a
link on the page. An action missing from the table falls back to its name and object: the `data`
of an event is never printed as it is (a dict in a sentence reads as noise, and may carry fields
nobody meant to show).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from string import Formatter

from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from clinic_ai.accounts.models import Role

SENTENCES: dict[str, str] = {
    # Upload and quarantine
    "upload.start": "{actor} started an upload",
    "upload.labels_csv": "{actor} sent a CSV of labels with an upload",
    "upload.finish": "{actor} finished an upload: {upload_files}",
    "upload.reject": "A file uploaded by {actor} was rejected: {reason}",
    "upload.names_erase": "The file names of an upload were erased ({files})",
    "image.quarantine": "{actor} uploaded {image} of {study}; it waits in quarantine",
    "quarantine.view": "{actor} viewed the quarantined pixels of {image}",
    "quarantine.purge": "The quarantined files of {image} were purged ({files})",
    # De-identification and masking
    "image.deidentify": "{image} of {study} was de-identified",
    "image.hold": "{image} of {study} was held for masking: {reason}",
    "image.reject": "{image} was rejected by de-identification: {reason}",
    "image.mask_request": "{actor} drew {boxes} on {image} of {study} to mask it",
    "image.mask": "{actor} masked {image} of {study} {mask_how}",
    "image.mask_failed": "Masking {image} of {study} for {actor} failed; it is held again",
    "image.release": "{actor} released {image} of {study}",
    "template.save": "{actor} saved a device mask template of {boxes}",
    "mask_template.delete": "{actor} deleted a device mask template",
    "deid_profile.update": "{actor} changed the de-identification options: {changed}",
    "patient_link.view": "{actor} read the patient link table ({rows})",
    "audit.export": "{actor} downloaded the audit trail as CSV (filtered by: {filters})",
    # Labelling
    "labelling.settings_update": "{actor} set labelling to {readers_per_image} per image, AI result {ai_shown}",
    "label.create": "{actor} labelled {image} as {values}",
    "label.change": "{actor} changed the label of {image} to {values}",
    "label.undo": "{actor} withdrew the label {values} of {image}",
    "label.adjudicate": "{actor} gave {image} the final label {values}",
    "label.export": "{actor} exported {labels} as {format}",
    "review.decide": "{actor} reviewed the AI result on {image}: {decision}, label {values}",
    "review.change": "{actor} changed the review of {image}: {decision}, label {values}",
    "performance.export": "{actor} downloaded the {kind} of {object} as CSV ({rows} rows)",
    # Models and inference
    "model.register": "{actor} registered the model {object}",
    "model.validate": "The model {object} was checked: {status}",
    "ensemble.create": "{actor} created the ensemble {object}",
    "ensemble.activate": "{actor} made {object} the active ensemble",
    "inference.rerun": "{actor} asked the AI to read {image} again",
    "inference.queue_project": "{actor} queued {images} for the AI",
    "inference.done": "The AI read {image} of {study}",
    "inference.failed": "The AI could not read {image}: {reason}",
    # Projects and people
    "project.create": "{actor} created the project {project}",
    "project.update": "{actor} changed the project's {fields}",
    "membership.create": "{actor} added {member} to the project as {role}",
    "membership.update": "{actor} made {member} {role} of the project",
    "membership.delete": "{actor} removed {member} from the project",
    "auth.login_failed": "A sign-in failed{throttled}",
}

FALLBACK = "{actor}: {action} {object}"

# data key -> (singular, plural) for counts shown as "3 boxes".
_COUNTS = {
    "boxes": ("box", "boxes"),
    "files": ("file", "files"),
    "images": ("image", "images"),
    "rows": ("patient", "patients"),
    "labels": ("label", "labels"),
    "readers_per_image": ("reader", "readers"),
}

_OBJECT_NAMES = {
    "studies.image": "image",
    "studies.uploadbatch": "upload",
    "studies.uploadedfile": "uploaded file",
    "inference.inferenceresult": "AI result",
    "inference.modelversion": "model",
    "inference.ensemble": "ensemble",
    "labelling.label": "label",
    "labelling.labellingsettings": "labelling settings",
    "accounts.project": "project",
    "accounts.membership": "membership",
    "accounts.user": "account",
    "deidentification.masktemplate": "mask template",
    "deidentification.deidprofile": "de-identification options",
}


@dataclass
class ImageRef:
    study_id: object
    study_pseudonym: str


@dataclass
class AuditRefs:
    """What the events of one page refer to, looked up in a few queries by the caller."""

    images: dict = field(default_factory=dict)  # image id (str) -> ImageRef, for images that still exist
    result_images: dict = field(default_factory=dict)  # inference result id (str) -> image id (str)
    users: dict = field(default_factory=dict)  # user pk (str) -> display name
    object_names: dict = field(default_factory=dict)  # (object_type, object id) -> display name


@dataclass(frozen=True)
class Part:
    text: str
    url: str = ""

    def html(self):
        return format_html('<a href="{}">{}</a>', self.url, self.text) if self.url else format_html("{}", self.text)


def _scalar(value) -> str:
    """A value of `data` as words: scalars and lists of scalars only, never a dict."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value) or "nothing"
    return "…"


def _count(n, key: str) -> str:
    singular, plural = _COUNTS[key]
    return f"{n} {singular if n == 1 else plural}"


def user_name(user) -> str:
    return user.get_full_name() or user.get_username()


def image_id_of(event) -> str:
    """The image an event is about: its object, or the image named in its data."""
    if event.object_type == "studies.image":
        return event.object_id
    data = event.data if isinstance(event.data, dict) else {}
    for key in ("image_id", "image"):
        if isinstance(data.get(key), str):
            return data[key]
    return ""


def _url(name: str, **kwargs) -> str:
    try:
        return reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        return ""


class _Parts(dict):
    def __init__(self, event, refs: AuditRefs):
        super().__init__()
        self.event, self.refs = event, refs
        self.data = event.data if isinstance(event.data, dict) else {}

    def __missing__(self, key: str) -> Part:
        maker = getattr(self, f"_{key}", None)
        if maker is not None:
            part = maker()
        elif key in _COUNTS and isinstance(self.data.get(key), int):
            part = Part(_count(self.data[key], key))
        elif key in self.data:
            part = Part(_scalar(self.data[key]))
        else:
            part = Part("…")
        self[key] = part
        return part

    def _image_id(self) -> str:
        image_id = image_id_of(self.event)
        if not image_id and self.event.object_type == "inference.inferenceresult":
            image_id = self.refs.result_images.get(self.event.object_id, "")
        return image_id

    def _actor(self) -> Part:
        actor = self.event.actor
        if actor is not None:
            return Part(user_name(actor))
        return Part("the system" if self.event.action != "upload.reject" else "someone")

    def _action(self) -> Part:
        return Part(self.event.action)

    def _image(self) -> Part:
        image_id = self._image_id()
        if not image_id:
            return Part("an image")
        text = f"image {image_id[:8]}"
        if image_id in self.refs.images:
            return Part(text, _url("studies:image_detail", image_id=image_id))
        return Part(text)  # rejected or deleted since: nothing to link to

    def _study(self) -> Part:
        ref = self.refs.images.get(self._image_id())
        if ref is None:
            return Part("its study")
        text = f"study {str(ref.study_id)[:8]}"
        if ref.study_pseudonym:
            text += f" ({ref.study_pseudonym})"
        return Part(text, _url("studies:study_detail", study_id=ref.study_id))

    def _project(self) -> Part:
        project = self.event.project
        if project is None:
            return Part("a project")
        return Part(project.name, _url("accounts:project_detail", project_id=project.pk))

    def _object(self) -> Part:
        event = self.event
        if not event.object_type:
            return Part("")
        if event.object_type == "studies.image":
            return self._image()
        if event.object_type == "accounts.project":
            return self._project()
        kind = _OBJECT_NAMES.get(event.object_type, "object")
        name = self.refs.object_names.get((event.object_type, event.object_id))
        text = name or f"{kind} {event.object_id[:8]}"
        url = ""
        if event.object_type in ("inference.modelversion", "inference.ensemble") and event.project_id:
            url = _url("inference:registry", project_id=event.project_id)
        return Part(text, url)

    def _member(self) -> Part:
        user_id = self.data.get("user_id")
        return Part(self.refs.users.get(str(user_id), "a former user"))

    def _role(self) -> Part:
        role = self.data.get("role")
        return Part(str(Role(role).label).lower() if role in Role.values else "a member")

    def _values(self) -> Part:
        values = self.data.get("values")
        return Part(_scalar(values) if isinstance(values, list) else "…")

    def _upload_files(self) -> Part:
        counts = self.data.get("files")
        if not isinstance(counts, dict):
            return Part("…")
        counted = {str(status).replace("_", " "): n for status, n in counts.items() if isinstance(n, int) and n}
        total = sum(counted.values())
        words = ", ".join(f"{n} {status}" for status, n in counted.items())
        return Part(f"{_count(total, 'files')} ({words})" if total else "no files")

    def _mask_how(self) -> Part:
        if self.data.get("by") == "device template":
            return Part("with its device's template")
        if isinstance(self.data.get("boxes"), int):
            return Part(f"with {_count(self.data['boxes'], 'boxes')}")
        return Part("")

    def _changed(self) -> Part:
        changed = self.data.get("changed")
        new = self.data.get("new") if isinstance(self.data.get("new"), dict) else {}
        if not isinstance(changed, list):
            return Part("…")
        words = [f"{str(name).replace('_', ' ')} {'on' if new.get(name) else 'off'}" for name in changed]
        return Part(", ".join(words) or "nothing")

    def _fields(self) -> Part:
        fields = self.data.get("fields")
        return Part(", ".join(str(f).replace("_", " ") for f in fields) if isinstance(fields, list) else "…")

    def _ai_shown(self) -> Part:
        return Part("shown to readers" if self.data.get("readers_see_ai_result") else "hidden from readers")

    def _throttled(self) -> Part:
        return Part("; sign-ins from there are paused" if self.data.get("throttled") else "")

    def _status(self) -> Part:
        status = _scalar(self.data.get("status", "…"))
        reason = self.data.get("reason")
        return Part(f"{status} ({_scalar(reason)})" if reason else status)


def template_for(action: str) -> str:
    return SENTENCES.get(action, FALLBACK)


def sentence(event, refs: AuditRefs) -> tuple[str, str]:
    """(HTML with links, plain text) of one event, its first letter a capital unless it is a
    user's name (written as its owner spells it)."""
    template = template_for(event.action)
    parts = _Parts(event, refs)
    fields = list(Formatter().parse(template))
    names = [name for _, name, _, _ in fields if name]
    values = {name: parts[name] for name in names}
    leading = fields[0][1] if fields and fields[0][0] == "" else None
    if leading is None:
        template = template[:1].upper() + template[1:]
    elif not (leading == "actor" and event.actor is not None):
        first = values[leading]
        values[leading] = Part(first.text[:1].upper() + first.text[1:], first.url)
    text = template.format_map({name: part.text for name, part in values.items()}).strip()
    html = mark_safe(format_html(template, **{name: part.html() for name, part in values.items()}).strip())
    return html, text
