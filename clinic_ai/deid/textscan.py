"""A cheap text-likelihood pre-filter for burned-in text. Pure: numpy, scipy.ndimage; no Tesseract, no Django.

:func:`text_candidates` takes one 8-bit greyscale frame and returns the regions that may hold
text. Only those regions are read by Tesseract (:mod:`.ocr`); a frame without a candidate is not
read at all. It costs a few milliseconds on a 512x512 frame, where Tesseract costs 0.25-0.9 s.

What it looks for, in this order:

* **strokes**: a morphological top-hat (the frame minus its opening, and the closing minus the
  frame, for light and dark text) with a ``STROKE_WINDOW`` square keeps structures narrower than
  the window (glyph strokes up to about 8 px, i.e. text up to about 60 px high) that stand out from
  their surroundings by at least ``MIN_CONTRAST`` grey levels. Organs, the background and wide
  gradients vanish; text, speckle grains and thin edges stay;
* **glyph-like components**: 8-connected groups of stroke pixels ``MIN_GLYPH_HEIGHT`` to
  ``MAX_GLYPH_HEIGHT`` px high and not thinner than a stroke. Larger groups (a bone outline, the
  edge of the fan) and dust are dropped;
* **horizontal alignment**: glyphs are joined along rows only (a closing ``GLYPH_GAP`` glyph
  heights wide, never upwards or downwards). A text line becomes one long, flat group about one
  glyph high. Speckle and noise join into blobs much taller than their grains and are dropped
  (``MAX_LINE_HEIGHT_RATIO``); so is a group shorter than ``MIN_LINE_ASPECT`` heights (a lone
  grain, a single character, which Tesseract's filter would not accept either);
* **strokes across the line**: a row through text crosses several strokes (two or more per glyph),
  a row through an edge, a bar or a bone outline one or two: the 75th percentile of the line's
  rows must cross at least ``MIN_CROSSINGS``, and its glyphs be ``MIN_LINE_GLYPH_HEIGHT`` px high
  or more;
* **contrast of the line**: what is left must split into two grey levels (Otsu separability
  >= ``MIN_SEPARABILITY`` in the frame or in its stroke map, under the 0.80-0.85 :mod:`.ocr` asks
  of a word it accepts; measured: text lines 0.85-1.0, the anatomy and speckle lines that reached
  this step 0.6-0.8);
* **known boxes**: a device template's boxes, when given, are always candidates.

Each candidate is padded (``max(PAD, half a line height)`` above and below, two line heights to the
sides) and overlapping candidates are merged.
The polarity (light text on dark, or dark on light) is kept with each region for Tesseract; a
region inside one of the other polarity whose strokes cover clearly more of it is dropped (the gaps
between light letters look like dark strokes).

Where it fails safe: a frame with more candidates than :data:`MAX_CANDIDATES`, or whose candidates
cover more than :data:`MAX_CANDIDATE_FRACTION` of it, is reported as "read the whole frame"
(:attr:`Candidates.whole_frame`): the pre-filter then costs time, never recall.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .pixels import Box

__all__ = [
    "Candidates",
    "Region",
    "RegionCache",
    "stroke_map",
    "text_candidates",
]

STROKE_WINDOW = 17
MIN_CONTRAST = 48
MIN_GLYPH_HEIGHT = 5
MIN_LINE_GLYPH_HEIGHT = 6
MAX_GLYPH_HEIGHT = 72
GLYPH_GAP = 1.5
MAX_LINE_HEIGHT_RATIO = 1.8
MIN_LINE_ASPECT = 1.5
MIN_CROSSINGS = 3
MIN_SEPARABILITY = 0.72
PAD = 6
SHADOW_OVERLAP = 0.8
SHADOW_RATIO = 1.25
MAX_CANDIDATES = 48
MAX_CANDIDATE_FRACTION = 0.4
SAME_INK = 0.05
"""A region whose strokes differ from those of a region already read in at most this fraction of
its stroke pixels is the same text: its result is reused (see :class:`RegionCache`). Grain and
noise move 1-2 % of a static label's stroke pixels; one changed digit moves about 10 %."""


@dataclass(frozen=True, slots=True)
class Region:
    """A candidate box and the polarity of its text (``light``: light text on a dark background)."""

    box: Box
    light: bool


@dataclass(slots=True)
class Candidates:
    regions: list[Region] = field(default_factory=list)
    whole_frame: bool = False


def _otsu(values: np.ndarray) -> tuple[int, float]:
    """(threshold, separability: between-class over total variance) of an 8-bit array."""
    hist = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    variance = float(values.var()) if total else 0.0
    if variance <= 0:
        return 0, 0.0
    p = hist / total
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.nan_to_num((mu[-1] * omega - mu) ** 2 / (omega * (1.0 - omega)))
    threshold = int(np.argmax(between))
    return threshold, float(between[threshold]) / variance


def _otsu_separability(values: np.ndarray) -> float:
    return _otsu(values)[1]


def _inside(inner: Box, outer: Box) -> float:
    """The fraction of ``inner``'s area inside ``outer``."""
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return max(0, w) * max(0, h) / area if area > 0 else 0.0


def _without_shadows(regions: list[Region], strokes: dict[bool, np.ndarray]) -> list[Region]:
    """Drop a region lying within a region of the other polarity that is the text's own.

    Light text on a grey field also shows as dark "strokes" (the gaps between its letters and
    inside them), and dark text as light ones: read twice, it costs twice, and the wrong one
    changes from frame to frame (a vessel moving behind it), defeating reuse. Where the two
    overlap, the text's own strokes cover clearly less of it than its shadow's (letters are thin;
    the gaps between them fill most of the rest); when it is not clear, both are kept.
    """
    kept = []
    for region in regions:
        shadow = False
        for other in regions:
            if other.light == region.light or _inside(region.box, other.box) < SHADOW_OVERLAP:
                continue
            x0, y0 = max(region.box[0], other.box[0]), max(region.box[1], other.box[1])
            x1, y1 = min(region.box[2], other.box[2]), min(region.box[3], other.box[3])
            mine = float(strokes[region.light][y0:y1, x0:x1].mean())
            theirs = float(strokes[other.light][y0:y1, x0:x1].mean())
            if mine > SHADOW_RATIO * theirs:
                shadow = True
                break
        if not shadow:
            kept.append(region)
    return kept


def _lines(strokes: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) of the horizontally aligned groups of glyph-like components."""
    eight = np.ones((3, 3), bool)
    labels, count = ndimage.label(strokes, structure=eight)
    if count == 0:
        return []
    objects = ndimage.find_objects(labels)
    heights = np.array([o[0].stop - o[0].start for o in objects])
    widths = np.array([o[1].stop - o[1].start for o in objects])
    keep = (heights >= MIN_GLYPH_HEIGHT) & (heights <= MAX_GLYPH_HEIGHT) & (widths <= 40 * heights)
    if not keep.any():
        return []
    glyphs = np.concatenate(([False], keep))[labels]
    # Join along rows only: glyphs less than GLYPH_GAP x their height apart become one group.
    gap = max(3, math.ceil(GLYPH_GAP * float(np.median(heights[keep]))))
    joined = ndimage.binary_closing(glyphs, structure=np.ones((1, gap), bool)) | glyphs
    line_labels, line_count = ndimage.label(joined, structure=eight)
    # Every pixel of a glyph lies in one line group: any of them tells which.
    line_of = np.zeros(count + 1, np.int64)
    line_of[labels[glyphs]] = line_labels[glyphs]
    glyph_heights: dict[int, list[int]] = {}
    for line, h in zip(line_of[1:][keep].tolist(), heights[keep].tolist(), strict=True):
        glyph_heights.setdefault(line, []).append(h)
    boxes = []
    for index, found in enumerate(ndimage.find_objects(line_labels), start=1):
        if found is None or index not in glyph_heights:
            continue
        ys, xs = found
        height, width = ys.stop - ys.start, xs.stop - xs.start
        glyph_height = float(np.median(glyph_heights[index]))
        if height > MAX_LINE_HEIGHT_RATIO * glyph_height + 2:
            continue  # a 2-D blob of grains (speckle, noise), not a line
        if width < MIN_LINE_ASPECT * height:
            continue
        if glyph_height < MIN_LINE_GLYPH_HEIGHT:
            continue
        # Strokes across the line: a row through text crosses several (two or more per glyph); a row
        # through an edge, a bar or a bone outline crosses one or two.
        ink = glyphs[ys, xs]
        crossings = np.count_nonzero(ink[:, 1:] & ~ink[:, :-1], axis=1) + ink[:, 0]
        if np.percentile(crossings, 75) < MIN_CROSSINGS:
            continue
        boxes.append((xs.start, ys.start, xs.stop, ys.stop))
    return boxes


def _pad(box: tuple[int, int, int, int], width: int, height: int) -> Box:
    """Half a line height above and below, two line heights to the sides: a line's first or last
    character standing apart (a digit before a colon, a unit after a gap) is read with it."""
    line = box[3] - box[1]
    pad_y = max(PAD, math.ceil(0.5 * line))
    pad_x = max(PAD, 2 * line)
    return (max(0, box[0] - pad_x), max(0, box[1] - pad_y), min(width, box[2] + pad_x), min(height, box[3] + pad_y))


def _merge(regions: list[Region]) -> list[Region]:
    merged = list(regions)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(len(merged) - 1, i, -1):
                a, b = merged[i], merged[j]
                if a.light != b.light:
                    continue
                if a.box[0] <= b.box[2] and b.box[0] <= a.box[2] and a.box[1] <= b.box[3] and b.box[1] <= a.box[3]:
                    box = (
                        min(a.box[0], b.box[0]),
                        min(a.box[1], b.box[1]),
                        max(a.box[2], b.box[2]),
                        max(a.box[3], b.box[3]),
                    )
                    merged[i] = Region(box, a.light)
                    del merged[j]
                    changed = True
    return sorted(merged, key=lambda r: (r.box[1], r.box[0], r.light))


def text_candidates(grey: np.ndarray, *, known_boxes: Sequence[Box] = ()) -> Candidates:
    """Regions of ``grey`` (2-D uint8, as displayed) that may hold text; see the module docstring."""
    grey = np.asarray(grey)
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError("text_candidates needs one 8-bit greyscale frame")
    height, width = grey.shape
    regions: list[Region] = []
    for x0, y0, x1, y1 in known_boxes:
        box = (max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1)))
        if box[2] > box[0] and box[3] > box[1]:
            regions.extend((Region(box, True), Region(box, False)))
    if height < MIN_GLYPH_HEIGHT or width < MIN_GLYPH_HEIGHT or grey.min() == grey.max():
        return Candidates(_merge(regions))
    stroke_masks: dict[bool, np.ndarray] = {}
    for light in (True, False):
        hat = _top_hat(grey, light)
        strokes = stroke_masks[light] = hat >= MIN_CONTRAST
        if not strokes.any():
            continue
        for line in _lines(strokes):
            # Two grey levels in the frame, or in its stroke map (a vessel or an edge crossing the line
            # adds a third level to the frame, not to the stroke map).
            ys, xs = slice(line[1], line[3]), slice(line[0], line[2])
            if max(_otsu_separability(grey[ys, xs]), _otsu_separability(hat[ys, xs])) < MIN_SEPARABILITY:
                continue
            regions.append(Region(_pad(line, width, height), light))
            if len(regions) > MAX_CANDIDATES:
                return Candidates(whole_frame=True)
    merged = _without_shadows(_merge(regions), stroke_masks)
    area = sum((r.box[2] - r.box[0]) * (r.box[3] - r.box[1]) for r in merged)
    if area > MAX_CANDIDATE_FRACTION * width * height:
        return Candidates(whole_frame=True)
    return Candidates(merged)


def _top_hat(grey: np.ndarray, light: bool) -> np.ndarray:
    """Light (or dark) strokes narrower than ``STROKE_WINDOW``, as their height above (depth below)
    their surroundings; uint8 arithmetic cannot wrap: an opening is <= the picture, a closing >=."""
    window = (STROKE_WINDOW, STROKE_WINDOW)
    if light:
        return grey - ndimage.grey_opening(grey, size=window)
    return ndimage.grey_closing(grey, size=window) - grey


def stroke_map(grey: np.ndarray, regions: Sequence[Region]) -> np.ndarray:
    """The top-hat of each region, in its polarity, zero elsewhere and where it is under
    ``MIN_CONTRAST``: text strokes light on black, with the background's grain, its slow changes and
    wide structures (a vessel, an organ edge) removed."""
    out = np.zeros_like(grey)
    height, width = grey.shape
    margin = STROKE_WINDOW
    for region in regions:
        x0, y0, x1, y1 = region.box
        # Computed on a margin around the region, so the window sees the region's real surroundings.
        ox0, oy0, ox1, oy1 = max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin)
        hat = _top_hat(np.ascontiguousarray(grey[oy0:oy1, ox0:ox1]), region.light)
        hat[hat < MIN_CONTRAST] = 0  # grain and noise under the stroke contrast: background
        out[y0:y1, x0:x1] = np.maximum(out[y0:y1, x0:x1], hat[y0 - oy0 : y1 - oy0, x0 - ox0 : x1 - ox0])
    return out


class RegionCache:
    """Which regions of earlier frames were read, so an unchanged one is not read again.

    A region is the same as one already read when it has the same polarity, the same box (to
    ``GRID`` px) and the same ink: its strokes (:func:`stroke_map`) differ in at most ``SAME_INK``
    of its stroke pixels.
    Anything else (a new box, text that changed in place) is read. The boxes found in a region
    read earlier are already in the result, so a reused region adds nothing.
    """

    GRID = 4

    def __init__(self) -> None:
        self._seen: dict[tuple, list[np.ndarray]] = {}

    def _key(self, region: Region) -> tuple:
        return (region.light, *(round(v / self.GRID) for v in region.box))

    @staticmethod
    def _ink(grey: np.ndarray, region: Region) -> np.ndarray:
        """The region's strokes (its stroke map): what a moving vessel or new grain does not change."""
        x0, y0, x1, y1 = region.box
        return stroke_map(grey, [region])[y0:y1, x0:x1] > 0

    def seen(self, grey: np.ndarray, region: Region) -> bool:
        ink = self._ink(grey, region)
        for earlier in self._seen.get(self._key(region), ()):
            strokes = max(np.count_nonzero(earlier), np.count_nonzero(ink)) if earlier.shape == ink.shape else 0
            if strokes and np.count_nonzero(earlier != ink) <= SAME_INK * strokes:
                return True
        return False

    def add(self, grey: np.ndarray, region: Region) -> None:
        self._seen.setdefault(self._key(region), []).append(self._ink(grey, region))
