"""From the pixels the viewer shows to the array a model version expects: pure numpy.

The display step (modality LUT, VOI LUT or window, MONOCHROME1 inverted, colour, EXIF orientation)
has one home, ``clinic_ai.studies.imaging.display_pixels``; this module only applies the model
version's own spec on top of it, so the same X-ray gives the same input whether it arrives as a small
PNG, a large PNG or a windowed 12-bit DICOM.

The spec is stored as JSON with the model version::

    {"input_size": [28, 28], "channels": 1, "mean": 0.0, "std": 1.0}

input = (pixels / 255 - mean) / std after resizing to ``input_size``. Shrinking averages the area
each output pixel covers (no aliasing, whatever the ratio); enlarging is bilinear. Both are linear
maps per axis, applied as two small matrix products.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from clinic_ai.studies.imaging import display_pixels

__all__ = ["PreprocessSpec", "display_pixels", "load_model_input", "resize", "to_model_input"]

# ITU-R BT.601 luma, what Pillow's convert("L") uses: a colour export of a grey image stays the same grey.
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class PreprocessSpec:
    input_size: tuple[int, int]  # (height, width)
    channels: int = 1
    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def from_json(cls, data: dict) -> PreprocessSpec:
        h, w = (int(v) for v in data["input_size"])
        channels = int(data.get("channels", 1))
        std = float(data.get("std", 1.0))
        if h < 1 or w < 1 or channels not in (1, 3) or not std > 0:
            raise ValueError("invalid preprocessing spec")
        return cls(input_size=(h, w), channels=channels, mean=float(data.get("mean", 0.0)), std=std)

    def to_json(self) -> dict:
        return {"input_size": list(self.input_size), "channels": self.channels, "mean": self.mean, "std": self.std}


def _axis_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights resampling one axis: area average when shrinking, bilinear when enlarging."""
    m = np.zeros((n_out, n_in))
    if n_out <= n_in:
        scale = n_in / n_out
        for j in range(n_out):
            lo, hi = j * scale, (j + 1) * scale
            first, last = int(np.floor(lo)), min(int(np.ceil(hi)), n_in)
            for i in range(first, last):
                m[j, i] = min(hi, i + 1) - max(lo, i)
            m[j] /= m[j].sum()
    else:
        # half-pixel centres (align_corners=False), edges clamped
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        frac = src - i0
        m[np.arange(n_out), i0] += 1 - frac
        m[np.arange(n_out), i1] += frac
    return m


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a (H, W) or (H, W, C) float array to ``size`` = (height, width)."""
    img = np.asarray(image, dtype=np.float64)
    rows = _axis_matrix(img.shape[0], size[0])
    cols = _axis_matrix(img.shape[1], size[1])
    if img.ndim == 2:
        return rows @ img @ cols.T
    return np.einsum("ij,jkc,lk->ilc", rows, img, cols)


def _to_unit(pixels: np.ndarray) -> np.ndarray:
    arr = np.asarray(pixels)
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and (np.nanmin(arr) < 0.0 or np.nanmax(arr) > 1.0 or np.isnan(arr).any()):
            raise ValueError("float display pixels must lie in [0, 1]")
        return arr.astype(np.float64)
    raise ValueError("display pixels must be uint8 (0-255) or float in [0, 1]")


def to_model_input(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Display pixels (H, W) or (H, W, 3|4) -> float32 (h, w, channels) for the model."""
    unit = _to_unit(pixels)
    if unit.ndim == 3:
        unit = unit[..., :3]
        if spec.channels == 1:
            unit = unit @ _LUMA
    if unit.ndim != 2 and not (unit.ndim == 3 and unit.shape[-1] == 3):
        raise ValueError("display pixels must be (H, W) grey or (H, W, 3) colour")
    out = resize(unit, spec.input_size)
    if out.ndim == 2:
        out = out[..., None]
        if spec.channels == 3:
            out = np.repeat(out, 3, axis=-1)
    return ((out - spec.mean) / spec.std).astype(np.float32)


def load_model_input(path: str | os.PathLike[str], kind: str, spec: PreprocessSpec, *, frame: int = 0):
    """A stored image file -> (model input, (height, width) of the displayed image)."""
    pixels = display_pixels(path, kind, frame=frame)
    return to_model_input(pixels, spec), pixels.shape[:2]
