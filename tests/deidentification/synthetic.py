"""Images with text burned into their pixels, made here so the tests know exactly where it is."""

from __future__ import annotations

import io

import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFont
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from .corpus import load_source, plant_phi, to_bytes

BURNED_TEXT = "DOE^JANE MRN55501234"
TEXT_ORIGIN = (12, 10)
US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"


def _font(size: int):
    return ImageFont.load_default(size=size)


def text_box(text: str = BURNED_TEXT, origin=TEXT_ORIGIN, size: int = 18) -> tuple[int, int, int, int]:
    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox(origin, text, font=_font(size))
    return int(left), int(top), int(right), int(bottom)


def speckle_frame(rows: int = 300, columns: int = 400, *, seed: int = 0, text: str | None = BURNED_TEXT) -> np.ndarray:
    """An ultrasound-like 8-bit frame: a speckled fan on black, with text in the top-left corner."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:columns]
    apex_x, apex_y = columns / 2, 40
    angle = np.degrees(np.arctan2(xx - apex_x, yy - apex_y + 1e-6))
    radius = np.hypot(xx - apex_x, yy - apex_y)
    fan = (np.abs(angle) < 35) & (radius > 30) & (radius < rows - 20)
    pixels = np.zeros((rows, columns), np.uint8)
    pixels[fan] = np.clip(rng.gamma(2.0, 28.0, size=fan.sum()), 0, 200).astype(np.uint8)
    if text:
        picture = Image.fromarray(pixels)
        ImageDraw.Draw(picture).text(TEXT_ORIGIN, text, fill=255, font=_font(18))
        pixels = np.asarray(picture)
    return pixels


def ultrasound_bytes(
    *,
    text: str | None = BURNED_TEXT,
    seed: int = 0,
    manufacturer: str = "ACME",
    model: str = "SONO 9",
    flag: str | None = None,
    modality: str = "US",
    patient_name: str = "Doe^Jane^Quincy",
    patient_id: str = "MRN55501234",
) -> bytes:
    ds = plant_phi(load_source("CT_small.dcm"), patient_name=patient_name, patient_id=patient_id)
    for keyword in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth", "RescaleType"):
        if keyword in ds:
            delattr(ds, keyword)
    frame = speckle_frame(seed=seed, text=text)
    ds.Modality = modality
    ds.SOPClassUID = US_IMAGE_STORAGE if modality == "US" else ds.SOPClassUID
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = model
    if flag is not None:
        ds.BurnedInAnnotation = flag
    elif "BurnedInAnnotation" in ds:
        del ds.BurnedInAnnotation
    ds.set_pixel_data(frame, "MONOCHROME2", 8, generate_instance_uid=False)
    return to_bytes(ds)


def png_with_metadata(text: str | None = None) -> bytes:
    from PIL import PngImagePlugin

    picture = Image.fromarray(speckle_frame(text=text)).convert("RGB")
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Doe^Jane^Quincy")
    info.add_itxt("Comment", "MRN55501234 St Mungos Hospital")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def jpeg_with_metadata() -> bytes:
    picture = Image.fromarray(speckle_frame(text=None)).convert("RGB")
    exif = Image.Exif()
    exif[0x010E] = "Doe^Jane^Quincy MRN55501234"  # ImageDescription
    exif[0x013B] = "House^Gregory"  # Artist
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", exif=exif, comment=b"St Mungos Hospital", quality=92)
    return buffer.getvalue()


def read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


XA_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.12.1"


def angio_frame(rows: int = 256, columns: int = 256, *, seed: int = 0) -> np.ndarray:
    """An X-ray-angiography-like 8-bit frame: a soft grey field, dark branching vessels, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:columns] / max(rows, columns)
    field = 150 - 40 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    for k in range(4):  # vessels: dark, a few pixels wide, wandering with the frame (contrast flow)
        centre = 0.2 + 0.2 * k + 0.02 * np.sin(6 * yy + seed + k)
        field -= 60 * np.exp(-(((xx - centre) / 0.012) ** 2))
    return np.clip(field + rng.normal(0, 4, field.shape), 0, 255).astype(np.uint8)


def multiframe_xa_bytes(
    *,
    frames: int = 7,
    text_on: dict[int, tuple[str, tuple[int, int]]] | None = None,
    size: int = 16,
    patient_name: str = "Doe^Jane^Quincy",
    patient_id: str = "MRN55501234",
) -> bytes:
    """A MONOCHROME2 multi-frame XA; ``text_on`` maps a frame index to (text, origin) drawn in white."""
    ds = plant_phi(load_source("CT_small.dcm"), patient_name=patient_name, patient_id=patient_id)
    for keyword in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth", "RescaleType"):
        if keyword in ds:
            delattr(ds, keyword)
    stack = []
    for index in range(frames):
        picture = Image.fromarray(angio_frame(seed=index))
        if text_on and index in text_on:
            text, origin = text_on[index]
            ImageDraw.Draw(picture).text(origin, text, fill=255, font=_font(size))
        stack.append(np.asarray(picture))
    ds.Modality = "XA"
    ds.SOPClassUID = XA_IMAGE_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if "BurnedInAnnotation" in ds:
        del ds.BurnedInAnnotation
    ds.set_pixel_data(np.stack(stack), "MONOCHROME2", 8, generate_instance_uid=False)
    return to_bytes(ds)
