"""Burned-in text detection with Debian's Tesseract 5 (through pytesseract). Pure: no Django.

Entry points:

* :func:`find_text_in_frames` - boxes of text over every frame of an image (8-bit greyscale or RGB
  pictures as displayed): each frame goes through the cheap pre-filter of :mod:`.textscan`, and
  only its candidate regions are read by Tesseract (:func:`read_regions`, one run per frame);
  what the upload pipeline and ``manage.py deidentify`` use;
* :func:`find_text_regions` - boxes of text in one picture, read whole by Tesseract (the fallback
  for a frame the pre-filter cannot narrow down);
* :class:`TesseractTextDetector` - the :class:`~.pixels.TextRegionDetector` seam: decoded DICOM
  frames in, boxes valid for every frame out (feed them to :func:`~.pixels.apply_pixel_mask`).

Returns boxes only. The recognised text is patient data: it is never returned, logged or kept.
Nothing here prints or logs. pytesseract writes the picture and Tesseract's TSV output to
temporary files and deletes them in a ``finally`` block. It logs the command line, never the
text, at DEBUG level.

**Failing safe.** When Tesseract is missing, fails, times out or returns something unreadable, the
functions raise :class:`OcrUnavailable`. They never return an empty list for an image they could
not read. A caller that catches it must hold the image for a person to check.

How it reads a picture (choices measured on synthetic annotations and on the real ultrasounds of
pydicom-data and deid-data):

* greyscale by luminance (yellow on black stays bright); a mostly dark picture is inverted so the
  text is dark on light, which Tesseract's LSTM model reads best. Regions whose background has the
  other polarity (a light banner with dark text on a dark ultrasound) are read again, cropped and
  inverted the other way (see ``_passes``);
* upscaled twice when the long side is under 1300 px, three times under 400 px (bicubic), so 9-12 px
  annotation text reaches 20+ px;
* page segmentation mode 11 (sparse text): annotations are scattered words, not paragraphs. Mode 3
  dropped lines that sit near speckle (about a third of the synthetic ultrasound lines). Mode 11
  reads more junk in speckle and noise, and the filter below removes it;
* Tesseract runs single-threaded (``OMP_THREAD_LIMIT=1`` for its process only, unless the
  environment sets it): its OpenMP threads contend with each other and made it 6 times slower on
  a 2-core machine.

Which words count. Tesseract's confidence cannot separate names from noise on its own. A name
written with a caret ("DOE^JANE") comes back at confidence 0-17. Speckle, uniform noise and bone
edges produce "words" at confidence 60-70. So a word is accepted on what its pixels look like:

* at least ``min_chars`` letters or digits (default 3) and confidence >= ``min_confidence``
  (default 0: any word Tesseract reports);
* its box separates into two flat grey levels: Otsu's separability (between-class variance over
  total variance) >= 0.85. Measured: rendered text 0.82-1.0 (0.87 and up when Tesseract is
  unsure of it); speckle, noise and anatomy 0.81 at most;
* its ink (the minority level) covers at most 45 % of the box (text 17-39 %; noise and bone
  fragments about 50 %) and falls into at least two separate column runs (glyphs). An edge or a
  single blob is one run;
* a word read at confidence >= 80 needs only separability >= 0.8 and ink <= 55 % (large bold
  text fills 46 % of its box; nothing without text was read that confidently).

A shorter word on the same line, next to an accepted word, is added to it ("ST" of "ST MARY
HOSPITAL"). Boxes are padded by ``max(6 px, 35 % of the text height)`` and merged when they
overlap.

Limits: text drawn over speckle or anatomy has lower contrast and can be missed; text in a colour
whose luminance matches its background is invisible after greyscale conversion. Every frame of a
multi-frame object is checked (see :func:`find_text_in_frames`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pytesseract
import pytesseract.pytesseract as _pytesseract_module
from PIL import Image, ImageOps

from .pixels import Box
from .textscan import Region, RegionCache, stroke_map, text_candidates

__all__ = [
    "MIN_CHARS",
    "MIN_CONFIDENCE",
    "TIMEOUT_SECONDS",
    "OcrUnavailable",
    "ScanStats",
    "TesseractTextDetector",
    "find_text_in_frames",
    "find_text_regions",
    "frame_to_grey",
    "merge_boxes",
    "read_regions",
]

MIN_CONFIDENCE = 0.0
"""Default Tesseract word confidence floor (0-100). The pixel checks do the filtering; raise it
to trade recall for fewer boxes."""
MIN_CHARS = 3
"""Default number of letters/digits a word needs on its own (shorter words only join a line)."""
TIMEOUT_SECONDS = 20.0
"""Per Tesseract run. A 512x512 picture takes about 0.2-0.5 s on this project's 2-core machine."""

CONFIDENT = 80.0
"""A word read at this confidence needs less pixel evidence (see the module docstring)."""
MIN_SEPARABILITY = {True: 0.80, False: 0.85}  # keyed by "confident"
MAX_INK = {True: 0.55, False: 0.45}
MIN_GLYPH_RUNS = 2
COMPANION_SEPARABILITY = 0.75
PADDING = 6
PADDING_FRACTION = 0.35
TILE = 16
MIXED_TILES = 2
MAX_REGIONS = 8
MOSAIC_MARGIN = 24
STROKE_ONLY_CHARS = 4
_PSM = 11
_THREAD_VARIABLE = "OMP_THREAD_LIMIT"


class OcrUnavailable(Exception):
    """Tesseract could not check the image (missing, failed, timed out or unreadable output).

    Never a statement that the image has no text: whoever catches it holds the image.
    """


class _TesseractEnvironment(Mapping[str, str]):
    """``os.environ`` as Tesseract's process sees it: single-threaded unless configured.

    A live, read-only view: this process's own environment is not changed.
    """

    def _extra(self) -> dict[str, str]:
        return {} if _THREAD_VARIABLE in os.environ else {_THREAD_VARIABLE: "1"}

    def __getitem__(self, key: str) -> str:
        extra = self._extra()
        return extra[key] if key in extra else os.environ[key]

    def __iter__(self) -> Iterator[str]:
        yield from os.environ
        yield from self._extra()

    def __len__(self) -> int:
        return len(os.environ) + len(self._extra())


# pytesseract 0.3.13 passes its module-level ``environ`` (os.environ) to every Tesseract process it
# starts, and has no per-call setting. This swaps in the view above for pytesseract's processes only.
_pytesseract_module.environ = _TesseractEnvironment()


# --------------------------------------------------------------------------------------- pictures
def frame_to_grey(frame: np.ndarray, photometric_interpretation: str = "MONOCHROME2") -> np.ndarray:
    """One decoded frame as an 8-bit greyscale array, text polarity as displayed.

    Monochrome data is stretched from its minimum to its maximum: burned-in text is drawn at or
    near the extreme values, whatever the window. MONOCHROME1 is inverted. RGB becomes luminance.
    Undecoded YBR uses its Y channel. PALETTE COLOR indices are read as grey levels (the lookup
    table is not available here).
    """
    arr = np.asarray(frame)
    photometric = str(photometric_interpretation or "").strip().upper()
    if arr.ndim == 3:
        if photometric.startswith("YBR"):
            arr = arr[..., 0]
        elif arr.shape[-1] in (3, 4):
            rgb = _stretch(arr[..., :3]) if arr.dtype != np.uint8 else arr[..., :3]
            return np.asarray(Image.fromarray(np.ascontiguousarray(rgb), mode="RGB").convert("L"))
        else:
            raise ValueError("a colour frame must have 3 or 4 samples per pixel")
    if arr.ndim != 2:
        raise ValueError("a frame must be 2-D (rows, columns) or 3-D (rows, columns, samples)")
    grey = arr if arr.dtype == np.uint8 else _stretch(arr)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    return grey


def _stretch(arr: np.ndarray) -> np.ndarray:
    values = arr.astype(np.float64, copy=False)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(arr.shape, np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _as_grey(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        if image.mode in ("L", "RGB"):
            return np.asarray(image.convert("L"))
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            return _stretch(np.asarray(image))
        return np.asarray(image.convert("RGB").convert("L"))
    if isinstance(image, np.ndarray):
        if image.dtype == bool:
            return image.astype(np.uint8) * 255
        photometric = "RGB" if image.ndim == 3 else "MONOCHROME2"
        return frame_to_grey(image, photometric)
    raise TypeError("image must be a PIL image or a numpy array")


def _scale_for(width: int, height: int) -> float:
    longest = max(width, height)
    if longest < 400:
        return 3
    if longest < 1300:
        return 2
    return 1


# ------------------------------------------------------------------------------------ recognition
@dataclass(frozen=True, slots=True)
class _Word:
    box: tuple[float, float, float, float]  # original pixels, not rounded
    line: tuple[int, int, int, int]  # Tesseract pass, block, paragraph, line
    characters: int  # letters and digits; the text itself is not kept
    confidence: float


def _passes(grey: np.ndarray) -> list[tuple[tuple[int, int, int, int], bool]]:
    """The Tesseract passes: (region x0, y0, x1, y1, invert?) each.

    First the whole picture, inverted when its background is dark. Then each region of 16 px tiles
    whose background has the other polarity (a light banner with dark text on a dark ultrasound, a
    dark label on a light picture, bright anatomy), cropped with a one-tile margin and read the
    other way round: Tesseract's own per-line inversion and a second whole-picture pass both
    missed such a banner, which Tesseract reads well once cropped.
    """
    height, width = grey.shape
    dark = float(np.median(grey)) < 128
    passes = [((0, 0, width, height), dark)]
    rows, cols = height // TILE, width // TILE
    if rows == 0 or cols == 0:
        return passes
    tiles = grey[: rows * TILE, : cols * TILE].reshape(rows, TILE, cols, TILE).transpose(0, 2, 1, 3)
    light = np.median(tiles.reshape(rows, cols, TILE * TILE), axis=2) >= 128
    other = light if dark else ~light
    if np.count_nonzero(other) < MIXED_TILES:
        return passes
    for r0, c0, r1, c1 in _tile_regions(other):
        if (r1 - r0) * (c1 - c0) < MIXED_TILES:
            continue
        x0, y0 = max(0, (c0 - 1) * TILE), max(0, (r0 - 1) * TILE)
        x1 = width if c1 == cols else min(width, (c1 + 1) * TILE)
        y1 = height if r1 == rows else min(height, (r1 + 1) * TILE)
        passes.append(((x0, y0, x1, y1), not dark))
    return passes


def _tile_regions(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (row0, col0, row1, col1) of the 8-connected groups of True tiles, merged
    when they overlap; a picture with more than ``MAX_REGIONS`` groups gets one box around all."""
    rows, cols = mask.shape
    seen = np.zeros_like(mask)
    boxes: list[tuple[int, int, int, int]] = []
    for r, c in zip(*np.nonzero(mask), strict=True):
        if seen[r, c]:
            continue
        stack, box = [(int(r), int(c))], [int(r), int(c), int(r) + 1, int(c) + 1]
        seen[r, c] = True
        while stack:
            y, x = stack.pop()
            box = [min(box[0], y), min(box[1], x), max(box[2], y + 1), max(box[3], x + 1)]
            for ny in range(max(0, y - 1), min(rows, y + 2)):
                for nx in range(max(0, x - 1), min(cols, x + 2)):
                    if mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        boxes.append((box[1], box[0], box[3], box[2]))  # as (x0, y0, x1, y1) for merge_boxes
    merged = merge_boxes(boxes)
    if len(merged) > MAX_REGIONS:
        x0, y0 = min(b[0] for b in merged), min(b[1] for b in merged)
        merged = [(x0, y0, max(b[2] for b in merged), max(b[3] for b in merged))]
    return [(b[1], b[0], b[3], b[2]) for b in merged]


def _tesseract_words(
    grey: np.ndarray,
    region: tuple[int, int, int, int],
    invert: bool,
    timeout: float,
    run: int,
    *,
    scale: float | None = None,
) -> list[_Word]:
    """Words Tesseract reads in ``region`` of ``grey``, with boxes in ``grey``'s pixels.

    ``scale`` defaults to what :func:`_scale_for` gives for ``grey``'s size."""
    rx, ry = region[0], region[1]
    crop = np.ascontiguousarray(grey[region[1] : region[3], region[0] : region[2]])
    height, width = crop.shape
    picture = Image.fromarray(crop, mode="L")
    if scale is None:
        scale = _scale_for(grey.shape[1], grey.shape[0])
    if scale != 1:
        picture = picture.resize((round(width * scale), round(height * scale)), Image.Resampling.BICUBIC)
    sx, sy = picture.width / width, picture.height / height
    if invert:
        picture = ImageOps.invert(picture)
    picture.format = "BMP"  # what pytesseract writes to its temporary file: no compression to pay for
    try:
        data = pytesseract.image_to_data(
            picture, config=f"--psm {_PSM}", output_type=pytesseract.Output.DICT, timeout=timeout
        )
    except (pytesseract.TesseractError, pytesseract.TesseractNotFoundError, RuntimeError, OSError):
        # RuntimeError is pytesseract's timeout. No detail: Tesseract's messages are not needed.
        raise OcrUnavailable("text detection could not run") from None
    try:
        columns = [data[k] for k in ("text", "conf", "left", "top", "width", "height")]
        lines = [data[k] for k in ("block_num", "par_num", "line_num")]
        rows = len(columns[0])
        if rows == 0 or any(len(c) != rows for c in (*columns, *lines)):
            raise ValueError
        words = []
        for i in range(rows):
            text = str(columns[0][i] or "").strip()
            confidence = float(columns[1][i])
            if not text or confidence < 0:
                continue
            left, top = float(columns[2][i]) / sx, float(columns[3][i]) / sy
            w, h = float(columns[4][i]) / sx, float(columns[5][i]) / sy
            words.append(
                _Word(
                    box=(rx + left, ry + top, rx + left + w, ry + top + h),
                    line=(run, int(lines[0][i]), int(lines[1][i]), int(lines[2][i])),
                    characters=sum(ch.isalnum() for ch in text),
                    confidence=confidence,
                )
            )
    except (KeyError, TypeError, ValueError, IndexError):
        raise OcrUnavailable("text detection returned unreadable output") from None
    return words


# ---------------------------------------------------------------------------------- pixel checks
def _crop(grey: np.ndarray, box: tuple[float, float, float, float], pad: int = 1) -> np.ndarray:
    height, width = grey.shape
    x0, y0 = max(0, math.floor(box[0]) - pad), max(0, math.floor(box[1]) - pad)
    x1, y1 = min(width, math.ceil(box[2]) + pad), min(height, math.ceil(box[3]) + pad)
    return grey[y0:y1, x0:x1]


def _otsu(values: np.ndarray) -> tuple[int, float]:
    """(threshold, separability) of an 8-bit array: between-class over total variance."""
    hist = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    p = hist / hist.sum()
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    total = mu[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.nan_to_num((total * omega - mu) ** 2 / (omega * (1.0 - omega)))
    threshold = int(np.argmax(between))
    variance = float(values.var())
    return threshold, (float(between[threshold]) / variance if variance > 0 else 0.0)


def _pixel_profile(grey: np.ndarray, box: tuple[float, float, float, float]) -> tuple[float, float, int]:
    """(separability, ink fraction, glyph runs) of the pixels under ``box``."""
    patch = _crop(grey, box)
    if patch.size < 9 or patch.min() == patch.max():
        return 0.0, 1.0, 0
    threshold, separability = _otsu(patch)
    bright = patch > threshold
    ink = bright if bright.mean() <= 0.5 else ~bright
    columns = ink.any(axis=0)
    runs = int(columns[0]) + int(np.count_nonzero(columns[1:] & ~columns[:-1]))
    return separability, float(ink.mean()), runs


def _is_text(grey: np.ndarray, word: _Word, min_confidence: float, min_chars: int) -> bool:
    if word.characters < min_chars or word.confidence < min_confidence:
        return False
    separability, ink, runs = _pixel_profile(grey, word.box)
    confident = word.confidence >= CONFIDENT
    return separability >= MIN_SEPARABILITY[confident] and ink <= MAX_INK[confident] and runs >= MIN_GLYPH_RUNS


def _is_text_in_strokes(
    grey: np.ndarray, strokes: np.ndarray, word: _Word, min_confidence: float, min_chars: int
) -> bool:
    """A word that fails the pixel checks in the frame but passes them in its stroke map (text over a
    vessel or an edge: three grey levels) counts only with more evidence: at least
    ``STROKE_ONLY_CHARS`` letters and, in the frame and in the stroke map alike, one separate glyph
    column run per two letters (at least ``STROKE_ONLY_CHARS``). Words read in echo speckle pass
    the stroke map too, but as one or two runs (measured on deid-data's 30-frame ultrasound)."""
    if word.characters < max(min_chars, STROKE_ONLY_CHARS) or not _is_text(strokes, word, min_confidence, min_chars):
        return False
    needed = max(STROKE_ONLY_CHARS, word.characters // 2)
    return min(_pixel_profile(grey, word.box)[2], _pixel_profile(strokes, word.box)[2]) >= needed


def _is_companion(grey: np.ndarray, word: _Word) -> bool:
    if word.characters < 1:
        return False
    separability, ink, _ = _pixel_profile(grey, word.box)
    return separability >= COMPANION_SEPARABILITY and ink <= MAX_INK[word.confidence >= CONFIDENT]


def _beside(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """On the same text line and at most two text heights apart."""
    height = max(a[3] - a[1], b[3] - b[1], 1.0)
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    gap = max(a[0], b[0]) - min(a[2], b[2])
    return overlap >= 0.5 * min(a[3] - a[1], b[3] - b[1]) and gap <= 2 * height


def _union(a: tuple[float, float, float, float], b: tuple[float, float, float, float]):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


# ----------------------------------------------------------------------------------------- boxes
def merge_boxes(boxes: Sequence[Box]) -> list[Box]:
    """Merge overlapping or touching boxes until none overlap; sorted top-left first."""
    merged: list[Box] = [(int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in boxes]
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(len(merged) - 1, i, -1):
                a, b = merged[i], merged[j]
                if a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]:
                    merged[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del merged[j]
                    changed = True
    return sorted(merged, key=lambda b: (b[1], b[0]))


def _padded(box: tuple[float, float, float, float], width: int, height: int) -> Box:
    pad = max(PADDING, math.ceil(PADDING_FRACTION * (box[3] - box[1])))
    return (
        max(0, math.floor(box[0]) - pad),
        max(0, math.floor(box[1]) - pad),
        min(width, math.ceil(box[2]) + pad),
        min(height, math.ceil(box[3]) + pad),
    )


def _accepted_regions(
    grey: np.ndarray,
    words: list[_Word],
    min_confidence: float,
    min_chars: int,
    strokes: np.ndarray | None = None,
) -> list[Box]:
    """The boxes of the words that pass the pixel checks, with their short neighbours, padded and merged.

    ``strokes`` (same shape as ``grey``), when given, is a second picture the checks may pass on:
    the candidate regions' stroke map, where a vessel or an edge crossing a word is gone.
    """
    height, width = grey.shape
    accepted = [
        i
        for i, w in enumerate(words)
        if _is_text(grey, w, min_confidence, min_chars)
        or (strokes is not None and _is_text_in_strokes(grey, strokes, w, min_confidence, min_chars))
    ]
    regions: list[tuple[float, float, float, float]] = []
    used = set(accepted)
    for i in accepted:
        region = words[i].box
        grown = True
        while grown:  # add short neighbours on the same line ("ST" of "ST MARY")
            grown = False
            for j, other in enumerate(words):
                if j in used or other.line != words[i].line or not _beside(region, other.box):
                    continue
                if _is_companion(grey, other) or (strokes is not None and _is_companion(strokes, other)):
                    region = _union(region, other.box)
                    used.add(j)
                    grown = True
        regions.append(region)
    return merge_boxes([_padded(region, width, height) for region in regions])


def _checked_grey(image: Image.Image | np.ndarray, min_chars: int) -> np.ndarray:
    if min_chars < 1:
        raise ValueError("min_chars must be at least 1")
    grey = np.ascontiguousarray(_as_grey(image))
    if grey.ndim != 2:
        raise ValueError("image must be a single greyscale or RGB picture")
    return grey


def find_text_regions(
    image: Image.Image | np.ndarray,
    *,
    min_confidence: float = MIN_CONFIDENCE,
    min_chars: int = MIN_CHARS,
    timeout: float = TIMEOUT_SECONDS,
) -> list[Box]:
    """Boxes ``(x0, y0, x1, y1)`` around burned-in text, in ``image``'s own pixels: the whole picture
    is read by Tesseract (no pre-filter; :func:`find_text_in_frames` puts one in front).

    ``image`` is one 8-bit greyscale or RGB picture (PIL image or array; other depths are
    stretched to 8 bits). Raises :class:`OcrUnavailable` when the picture could not be checked.
    """
    grey = _checked_grey(image, min_chars)
    height, width = grey.shape
    if height < 8 or width < 8 or grey.min() == grey.max():
        return []  # nothing Tesseract could read: too small, or a single flat value
    words = [
        word
        for run, (region, invert) in enumerate(_passes(grey))
        for word in _tesseract_words(grey, region, invert, timeout, run)
    ]
    return _accepted_regions(grey, words, min_confidence, min_chars)


def _ink_black_paper_white(picture: Image.Image) -> Image.Image:
    """Stretch a dark-text crop so its background is white and its text black.

    Tesseract thresholds a picture globally; in a mosaic, one crop's grey background (white text on
    an angiogram's mid-grey field, inverted) would fall on the dark side of a threshold set by the
    white margins and the other crops, and its text would vanish. Stretched per crop, from its
    darkest 2 % (the text: the crop's polarity makes text dark) to its median (the background: a
    padded text line is mostly background), every slot reads like black print on white paper;
    anything lighter than the background (a vessel, inverted) becomes paper too.
    """
    values = np.asarray(picture)
    low, high = (float(v) for v in np.percentile(values, (2, 50)))
    if high - low < 1:
        return picture
    stretched = np.clip((values.astype(np.float32) - low) * (255.0 / (high - low)), 0, 255)
    return Image.fromarray(np.rint(stretched).astype(np.uint8), mode="L")


def read_regions(
    grey: np.ndarray,
    regions: Sequence[Region],
    *,
    min_confidence: float = MIN_CONFIDENCE,
    min_chars: int = MIN_CHARS,
    timeout: float = TIMEOUT_SECONDS,
) -> list[Box]:
    """Boxes of text inside candidate ``regions`` of ``grey`` (2-D uint8), in one Tesseract run.

    Each region is cropped, upscaled as a whole picture of ``grey``'s size would be, turned dark
    text on light (from the region's polarity) and stacked with the others into one mosaic, white
    margins of ``MOSAIC_MARGIN`` px between them: one Tesseract process per frame instead of one
    per region (starting Tesseract costs about as much as reading a small crop). Words are mapped
    back to ``grey``'s pixels through the slot they fall in and pass the same pixel checks as in
    :func:`find_text_regions`.
    """
    height, width = grey.shape
    if not regions:
        return []
    scale = _scale_for(width, height)
    slots: list[tuple[int, Region, float, float]] = []  # (top in the mosaic, region, sx, sy)
    pictures = []
    top = MOSAIC_MARGIN
    for region in regions:
        x0, y0, x1, y1 = region.box
        crop = np.ascontiguousarray(grey[y0:y1, x0:x1])
        picture = Image.fromarray(crop, mode="L")
        if scale != 1:
            picture = picture.resize(
                (round(crop.shape[1] * scale), round(crop.shape[0] * scale)), Image.Resampling.BICUBIC
            )
        if region.light:
            picture = ImageOps.invert(picture)
        picture = _ink_black_paper_white(picture)
        slots.append((top, region, picture.width / crop.shape[1], picture.height / crop.shape[0]))
        pictures.append(picture)
        top += picture.height + MOSAIC_MARGIN
    mosaic = Image.new("L", (max(p.width for p in pictures) + 2 * MOSAIC_MARGIN, top), 255)
    for (slot_top, _, _, _), picture in zip(slots, pictures, strict=True):
        mosaic.paste(picture, (MOSAIC_MARGIN, slot_top))
    words = []
    for word in _tesseract_words(np.asarray(mosaic), (0, 0, mosaic.width, mosaic.height), False, timeout, 0, scale=1):
        centre = (word.box[1] + word.box[3]) / 2
        for index, (slot_top, region, sx, sy) in enumerate(slots):
            x0, y0, x1, y1 = region.box
            slot_bottom = slot_top + (y1 - y0) * sy
            if not slot_top <= centre < slot_bottom:
                continue
            box = (
                min(max(x0 + (word.box[0] - MOSAIC_MARGIN) / sx, x0), x1),
                min(max(y0 + (word.box[1] - slot_top) / sy, y0), y1),
                min(max(x0 + (word.box[2] - MOSAIC_MARGIN) / sx, x0), x1),
                min(max(y0 + (word.box[3] - slot_top) / sy, y0), y1),
            )
            if box[2] > box[0] and box[3] > box[1]:
                words.append(
                    _Word(box=box, line=(index, *word.line[1:]), characters=word.characters, confidence=word.confidence)
                )
            break
    # Each word is checked against the stroke map of its own polarity (a dark region's map is
    # bright where a light region's text has its gaps).
    found: list[Box] = []
    for light in (True, False):
        mine = [w for w in words if slots[w.line[0]][1].light == light]
        if mine:
            strokes = stroke_map(grey, [r for r in regions if r.light == light])
            found.extend(_accepted_regions(grey, mine, min_confidence, min_chars, strokes=strokes))
    return merge_boxes(found)


@dataclass(slots=True)
class ScanStats:
    """What :func:`find_text_in_frames` did, for benchmarks: counts and seconds, never pixels or text."""

    frames: int = 0
    frames_read: int = 0  # frames with at least one region sent to Tesseract
    whole_frames: int = 0  # frames the pre-filter could not narrow down (read whole)
    regions_read: int = 0
    regions_reused: int = 0
    prefilter_seconds: float = 0.0
    tesseract_seconds: float = 0.0


def find_text_in_frames(
    frames: Iterable[Image.Image | np.ndarray],
    *,
    known_boxes: Sequence[Box] = (),
    min_confidence: float = MIN_CONFIDENCE,
    min_chars: int = MIN_CHARS,
    timeout: float = TIMEOUT_SECONDS,
    stats: ScanStats | None = None,
) -> list[Box]:
    """Boxes of text over every frame of ``frames`` (their union: a mask applies to every frame).

    ``frames`` is an iterable of 8-bit greyscale or RGB pictures as displayed, consumed one at a
    time (a generator that decodes one frame at a time keeps one frame in memory). Each frame goes
    through the pre-filter (:func:`.textscan.text_candidates`); only its candidate regions are
    read by Tesseract (:func:`read_regions`), and a frame without candidates is not read at all.
    A region already read in an earlier frame, with the same ink, is not read again
    (:class:`.textscan.RegionCache`); a new or changed region is. A frame the pre-filter cannot
    narrow down is read whole (:func:`find_text_regions`). Raises :class:`OcrUnavailable` like
    :func:`find_text_regions`: a frame that could not be read is never taken as free of text.
    """
    stats = stats if stats is not None else ScanStats()
    cache = RegionCache()
    found: list[Box] = []
    for frame in frames:
        grey = _checked_grey(frame, min_chars)
        stats.frames += 1
        started = time.perf_counter()
        candidates = text_candidates(grey, known_boxes=known_boxes)
        if candidates.whole_frame:
            height, width = grey.shape
            todo = [r for r in (Region((0, 0, width, height), True),) if not cache.seen(grey, r)]
        else:
            todo = [r for r in candidates.regions if not cache.seen(grey, r)]
        stats.regions_reused += len(candidates.regions) - len(todo) if not candidates.whole_frame else 0
        stats.prefilter_seconds += time.perf_counter() - started
        if not todo:
            continue
        started = time.perf_counter()
        stats.frames_read += 1
        if candidates.whole_frame:
            stats.whole_frames += 1
            found.extend(find_text_regions(grey, min_confidence=min_confidence, min_chars=min_chars, timeout=timeout))
        else:
            stats.regions_read += len(todo)
            found.extend(read_regions(grey, todo, min_confidence=min_confidence, min_chars=min_chars, timeout=timeout))
        for region in todo:
            cache.add(grey, region)
        stats.tesseract_seconds += time.perf_counter() - started
    return merge_boxes(found)


# -------------------------------------------------------------------------------------- frames
class TesseractTextDetector:
    """:class:`~.pixels.TextRegionDetector` backed by Tesseract, through the pre-filter.

    ``frames`` is shaped as :func:`~.pixels.decode_frames` returns it: ``(frames, rows,
    columns[, samples])``. A single frame without the leading axis is accepted too. Every frame is
    checked (:func:`find_text_in_frames`) and the boxes are united (the mask applies to every
    frame). Raises :class:`OcrUnavailable` like :func:`find_text_regions`.
    """

    def __init__(
        self,
        *,
        min_confidence: float = MIN_CONFIDENCE,
        min_chars: int = MIN_CHARS,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.min_confidence = min_confidence
        self.min_chars = min_chars
        self.timeout = timeout

    def __call__(self, frames: np.ndarray, photometric_interpretation: str) -> list[Box]:
        arr = np.asarray(frames)
        photometric = str(photometric_interpretation or "").strip().upper()
        colour = photometric in ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
        if arr.ndim == (3 if colour else 2):
            arr = arr[np.newaxis, ...]
        if arr.ndim != (4 if colour else 3):
            raise ValueError("frames must be shaped (frames, rows, columns[, samples])")
        return find_text_in_frames(
            (frame_to_grey(frame, photometric) for frame in arr),
            min_confidence=self.min_confidence,
            min_chars=self.min_chars,
            timeout=self.timeout,
        )
