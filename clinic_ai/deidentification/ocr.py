"""Burned-in text detection with Debian's Tesseract (through pytesseract). Pure: no Django.

Returns boxes only. The recognised text is patient data: it is never returned, logged or kept.
A failure to run is an exception (`OcrUnavailable`), never an empty answer, so a caller that
cannot check an image holds it.

Choices, measured on this project's test images (synthetic ultrasound with a burned-in name and
MRN, pydicom's US1_UNCR.dcm, CT_small.dcm, MR_small.dcm, speckle without text):
- page segmentation mode 3 (automatic): it found every planted line and the real ultrasound's
  annotations, and no words in text-free speckle, where mode 11 (sparse text) invented some and
  took 2-10 times longer;
- images under 600 px on their long side are upscaled twice, so 10-12 px text is readable;
- a line counts as text when one of its words is confident (≥ 55) and has at least three letters
  or digits; the box then covers the whole line, so a low-confidence word beside a confident one
  (a name with a caret between its parts) is masked too.
"""

from __future__ import annotations

import numpy as np
import pytesseract
from PIL import Image

from .pixels import Box

CONFIDENT = 55.0
LINE_WORD = 20.0
MIN_CHARACTERS = 3
PADDING = 6


class OcrUnavailable(Exception):
    """Tesseract could not run (missing, failed or timed out)."""


def _as_image(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            low, high = float(array.min()), float(array.max())
            array = ((array - low) / max(high - low, 1e-9) * 255).astype(np.uint8)
        image = Image.fromarray(array)
    return image.convert("L")


def find_text_regions(image: Image.Image | np.ndarray, *, timeout: float = 30) -> list[Box]:
    """Boxes (x0, y0, x1, y1), in the given image's pixels, around lines of text."""
    grey = _as_image(image)
    scale = 2 if max(grey.size) < 600 else 1
    if scale != 1:
        grey = grey.resize((grey.width * scale, grey.height * scale), Image.Resampling.BICUBIC)
    try:
        data = pytesseract.image_to_data(grey, config="--psm 3", output_type=pytesseract.Output.DICT, timeout=timeout)
    except (pytesseract.TesseractError, pytesseract.TesseractNotFoundError, RuntimeError, OSError):
        raise OcrUnavailable("text detection could not run") from None
    lines: dict[tuple[int, int, int], list[tuple[float, str, Box]]] = {}
    for i, text in enumerate(data["text"]):
        word = (text or "").strip()
        confidence = float(data["conf"][i])
        if not word or confidence < 0:
            continue
        key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
        left, top, width, height = data["left"][i], data["top"][i], data["width"][i], data["height"][i]
        lines.setdefault(key, []).append((confidence, word, (left, top, left + width, top + height)))
    boxes: list[Box] = []
    for words in lines.values():
        if not any(c >= CONFIDENT and sum(ch.isalnum() for ch in w) >= MIN_CHARACTERS for c, w, _ in words):
            continue
        members = [b for c, _, b in words if c >= LINE_WORD]
        x0, y0 = min(b[0] for b in members), min(b[1] for b in members)
        x1, y1 = max(b[2] for b in members), max(b[3] for b in members)
        boxes.append(_padded((x0, y0, x1, y1), scale, grey.size))
    return _merged(boxes)


def _padded(box: Box, scale: int, size: tuple[int, int]) -> Box:
    width, height = size[0] // scale, size[1] // scale
    x0, y0, x1, y1 = (v / scale for v in box)
    return (
        max(0, int(x0) - PADDING),
        max(0, int(y0) - PADDING),
        min(width, int(np.ceil(x1)) + PADDING),
        min(height, int(np.ceil(y1)) + PADDING),
    )


def _merged(boxes: list[Box]) -> list[Box]:
    merged: list[Box] = []
    for box in sorted(boxes):
        for i, other in enumerate(merged):
            if box[0] <= other[2] and other[0] <= box[2] and box[1] <= other[3] and other[1] <= box[3]:
                merged[i] = (min(box[0], other[0]), min(box[1], other[1]), max(box[2], other[2]), max(box[3], other[3]))
                break
        else:
            merged.append(box)
    return merged
