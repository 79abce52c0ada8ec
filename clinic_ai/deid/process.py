"""One file through PII masking: the decision shared by browser uploads and `manage.py deidentify`.

Pure (no ORM, no settings): secrets, options, the device-template lookup and the text detector
are arguments. The outcome says whether the de-identified file written to `dst` may be released,
must be held for a person to mask burned-in text, or is rejected, with a reason free of patient data.

The last step before any output is written is the independent release gate
(:mod:`clinic_ai.releasegate`), which shares no code with this library: its own strict reader, its
own allow-list, and the identifying values it reads from the original its own way. It is the only
release check, on every path: fast, pydicom, device-template masks, PNG/JPEG, and masks a person
drew (:func:`apply_mask`, which needs the quarantined original). (The library's own validators,
which shared the de-identifier's parser and policy, were retired: they could not see a leak both
made, and they cost as much as the gate.)

A refusal by the gate **rejects** the file, with the reason
``"The release check refused the file: <gate's reason>"``: the de-identifier produced an output
the gate cannot vouch for, and a person masking pixels cannot fix a header, so holding it would
only put an unfixable file in a reviewer's queue (the original is kept in quarantine for the
audit, as for every rejection). A refused *mask* (:func:`apply_mask`) raises instead, and the
service puts the image back on hold with the reason: the person can try again.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageDraw, ImageOps

from clinic_ai.releasegate import GateOptions, GateRefused, check_dicom_release, check_raster_release

from .dicomio import dicom_to_bytes, read_dicom
from .engine import deidentify_dataset
from .errors import DeidentificationError, ReleaseValidationError
from .fastpath import Fallback, FastResult, deidentify_bytes
from .files import write_atomic
from .options import DeidOptions
from .pixels import Box, apply_pixel_mask, burned_in_text_reason
from .pseudonyms import date_shift_days as shift_for
from .pseudonyms import patient_key_from_dataset, patient_pseudonym
from .raster import strip_raster_bytes

logger = logging.getLogger(__name__)

Status = Literal["released", "held", "rejected"]

REASON_TEXT_FOUND = "Text was found in the pixels; it may identify the patient."
REASON_TEXT_AFTER_TEMPLATE = "Text was still found after applying this device's mask."
REASON_OCR_UNAVAILABLE = "The pixels could not be checked for text, so a person must look at them."
REASON_GATE = "The release check refused the file: {reason}"


class ReleaseRefused(ReleaseValidationError):
    """The independent release gate refused an output. ``str()`` is the gate's sentence."""

    def __init__(self, refusal: GateRefused) -> None:
        super().__init__([refusal.rule])
        self.args = (REASON_GATE.format(reason=refusal.reason),)
        self.rule, self.reason = refusal.rule, refusal.reason

    def __str__(self) -> str:
        return self.args[0]


def gate_options(options: DeidOptions, *, clean_pixel_data: bool) -> GateOptions:
    return GateOptions(
        retain_modified_dates=options.retain_modified_dates,
        retain_patient_characteristics=options.retain_patient_characteristics,
        clean_descriptors=options.clean_descriptors,
        clean_pixel_data=clean_pixel_data,
    )


def release_check_dicom(original: bytes, output: bytes, *, options: GateOptions, pseudonym: str | None) -> None:
    """The gate, as this library's error type (so every caller's rejection path handles it)."""
    try:
        check_dicom_release(original, output, options=options, expected_pseudonym=pseudonym)
    except GateRefused as refusal:
        raise ReleaseRefused(refusal) from None


def release_check_raster(output: bytes, kind: str) -> None:
    try:
        check_raster_release(output, kind="png" if kind == "png" else "jpeg")
    except GateRefused as refusal:
        raise ReleaseRefused(refusal) from None


@dataclass(frozen=True)
class Device:
    """What a mask template is keyed on. Device names are not patient data."""

    manufacturer: str
    model: str
    rows: int
    columns: int

    @property
    def label(self) -> str:
        name = " ".join(part for part in (self.manufacturer, self.model) if part) or "Unnamed device"
        return f"{name} · {self.columns}×{self.rows}"


@dataclass
class Outcome:
    status: Status
    reason: str = ""
    audit: dict[str, Any] = field(default_factory=dict)
    suggested_boxes: list[Box] = field(default_factory=list)
    device: Device | None = None
    masked_by_template: bool = False


TextDetector = Callable[[Path, str], list[Box]]
"""(de-identified file, kind) -> boxes of text in image pixel coordinates; raises TextCheckFailed."""


class TextCheckFailed(Exception):
    """The text detector could not run. The caller holds the image: never treat this as "no text"."""


def keys_for(ds, *, secret: bytes, project_key: str) -> tuple[str, str, int]:
    """(patient key, pseudonym, date shift) of a dataset. The patient key is patient data."""
    key = patient_key_from_dataset(ds, allow_study_fallback=True)
    return key, patient_pseudonym(secret, project_key, key), shift_for(secret, project_key, key)


def _device(ds) -> Device | None:
    manufacturer = str(ds.get("Manufacturer", "") or "").strip()
    model = str(ds.get("ManufacturerModelName", "") or "").strip()
    try:
        rows, columns = int(ds.get("Rows")), int(ds.get("Columns"))
    except (TypeError, ValueError):
        return None  # not an image of a known size: no device template applies
    if not (manufacturer or model):
        return None
    return Device(manufacturer=manufacturer[:64], model=model[:64], rows=rows, columns=columns)


def _text_boxes(detector: TextDetector | None, path: Path, kind: str) -> list[Box] | None:
    """Boxes found, or None when the check could not run."""
    if detector is None:
        return []
    try:
        return list(detector(path, kind))
    except TextCheckFailed:
        return None


def _fast_path(src: Path, options, uid_secret, patient_secret, project_key) -> FastResult | None:
    """:func:`fastpath.deidentify_bytes`, or ``None`` when the file is left to the pydicom path."""
    try:
        data = src.read_bytes()
    except OSError:
        return None  # the pydicom path reports it
    try:
        return deidentify_bytes(
            data,
            options=options,
            uid_secret=uid_secret,
            identity=lambda ds: keys_for(ds, secret=patient_secret, project_key=project_key)[1:],
            audit_paths=False,  # process_dicom drops them (below)
        )
    except Fallback:
        return None
    except DeidentificationError:  # a rejection: the pydicom path gives it, with its reason
        return None
    except Exception as exc:  # a defect here must not lose the file: the pydicom path decides
        # The exception's type only: its message could quote a value from the file.
        logger.warning("De-identification fast path failed (%s); the file takes the pydicom path", type(exc).__name__)
        return None


def process_dicom(
    src: Path,
    dst: Path,
    *,
    options: DeidOptions,
    uid_secret: bytes,
    patient_secret: bytes,
    project_key: str,
    template_for: Callable[[Device], Sequence[Box] | None],
    detector: TextDetector | None,
) -> Outcome:
    fast = None
    try:
        fast = _fast_path(Path(src), options, uid_secret, patient_secret, project_key)
        if fast is not None:
            result, pseudonym = fast.result, fast.pseudonym
        else:  # the pydicom path: everything the fast path leaves, and every rejection
            original = read_dicom(src, decode_values=False)
            _, pseudonym, shift = keys_for(original, secret=patient_secret, project_key=project_key)
            result = deidentify_dataset(
                original, options=options, uid_secret=uid_secret, patient_pseudonym=pseudonym, date_shift_days=shift
            )
    except DeidentificationError as exc:
        return Outcome(status="rejected", reason=rejection_reason(exc))
    ds = result.dataset
    audit = result.to_audit_dict()
    audit.pop("acted_on", None)  # keyword paths: useful in tests, noise in the audit trail
    audit["path"] = "fast" if fast is not None else "pydicom"
    device = _device(ds)
    header_reason = burned_in_text_reason(ds)
    template = template_for(device) if device is not None else None
    # Every output passes the gate before it is written: nothing unchecked ever sits at `dst`.
    try:
        if template:
            data = dicom_to_bytes(apply_pixel_mask(read_dicom(fast.data) if fast is not None else ds, list(template)))
        elif fast is not None:
            data = fast.data
        else:
            data = dicom_to_bytes(ds)
        # The last step before the write: the independent gate, against the original's bytes.
        release_check_dicom(
            Path(src).read_bytes(),
            data,
            options=gate_options(options, clean_pixel_data=bool(template)),
            pseudonym=pseudonym,
        )
    except ReleaseRefused as exc:
        return Outcome(status="rejected", reason=str(exc), audit={**audit, "gate_rule": exc.rule})
    except DeidentificationError as exc:
        return Outcome(status="rejected", reason=rejection_reason(exc), audit=audit)
    except OSError:
        return Outcome(status="rejected", reason="The original could not be read again for the release check.")
    write_atomic(data, dst)
    boxes = _text_boxes(detector, Path(dst), "dicom")
    outcome = Outcome(status="released", audit=audit, device=device, masked_by_template=bool(template))
    if boxes is None:
        outcome.status, outcome.reason = "held", REASON_OCR_UNAVAILABLE
    elif boxes:
        outcome.status = "held"
        outcome.reason = REASON_TEXT_AFTER_TEMPLATE if template else REASON_TEXT_FOUND
        outcome.suggested_boxes = boxes
    elif header_reason and not template:
        # The header says text is likely (ultrasound, screen capture, BurnedInAnnotation=YES):
        # a person looks even when the detector saw nothing.
        outcome.status, outcome.reason = "held", _sentence(header_reason)
    return outcome


def process_raster(src: Path, dst: Path, *, detector: TextDetector | None) -> Outcome:
    try:
        data, stripped = strip_raster_bytes(Path(src).read_bytes())
        release_check_raster(data, stripped.format)  # the last step before the write
    except ReleaseRefused as exc:
        return Outcome(status="rejected", reason=str(exc), audit={"gate_rule": exc.rule})
    except DeidentificationError as exc:
        return Outcome(status="rejected", reason=rejection_reason(exc))
    write_atomic(data, dst)
    audit = {
        "format": stripped.format,
        "metadata_removed": list(stripped.removed),
        "recompressed": stripped.recompressed,
    }
    boxes = _text_boxes(detector, Path(dst), stripped.format)
    if boxes is None:
        return Outcome(status="held", reason=REASON_OCR_UNAVAILABLE, audit=audit)
    if boxes:
        return Outcome(status="held", reason=REASON_TEXT_FOUND, audit=audit, suggested_boxes=boxes)
    return Outcome(status="released", audit=audit)


def apply_mask(
    src: Path,
    dst: Path,
    *,
    kind: str,
    boxes: Sequence[Box],
    original: Path | None,
    options: DeidOptions | None,
    expected_pseudonym: str | None = None,
) -> None:
    """Mask `boxes` (image pixel coordinates, every frame) of a de-identified file into `dst`.

    `original` is the quarantined upload the de-identified `src` was made from, and `options` the
    options it was made under: the release gate checks the masked DICOM file against them (no
    original, no release). Raises :class:`ReleaseRefused` when the gate refuses."""
    if kind == "dicom":
        if original is None or options is None:
            raise ReleaseRefused(GateRefused("unreadable", "The original is no longer available to check against."))
        data = dicom_to_bytes(apply_pixel_mask(read_dicom(src), list(boxes)))
        release_check_dicom(
            Path(original).read_bytes(),
            data,
            options=gate_options(options, clean_pixel_data=True),
            pseudonym=expected_pseudonym,
        )
        write_atomic(data, dst)
        return
    with Image.open(src) as opened:
        picture = ImageOps.exif_transpose(opened)
        picture.load()
    draw = ImageDraw.Draw(picture)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle(
            [x0, y0, x1 - 1, y1 - 1], fill=0 if picture.mode in ("L", "I", "1", "P") else (0,) * len(picture.getbands())
        )
    buffer = io.BytesIO()
    # No metadata is carried over: Pillow writes only what it is given.
    if kind == "png":
        picture.save(buffer, format="PNG")
    else:
        picture.convert("RGB" if picture.mode not in ("L", "RGB") else picture.mode).save(
            buffer, format="JPEG", quality=95
        )
    release_check_raster(buffer.getvalue(), kind)
    write_atomic(buffer.getvalue(), dst)


def oriented_size(path: Path, kind: str) -> tuple[int, int]:
    """(width, height) as shown, after any EXIF orientation, for PNG/JPEG."""
    with Image.open(path) as picture:
        width, height = picture.size
        orientation = picture.getexif().get(0x0112, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def rejection_reason(exc: DeidentificationError) -> str:
    return _sentence(f"De-identification failed: {exc}")
