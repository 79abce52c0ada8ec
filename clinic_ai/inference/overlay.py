"""Heatmaps as PNG overlays: pure numpy + Pillow, so web and worker can both draw them.

An overlay is RGBA at the image's resolution: colour from a perceptually ordered map (dark purple
-> orange -> pale yellow, after matplotlib's "inferno"), alpha rising with the heat so cold regions
leave the X-ray visible. The viewer fades it in and out with CSS opacity.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# inferno at 0, 1/4, 1/2, 3/4, 1
_STOPS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_COLOURS = np.array(
    [
        [0, 0, 4],
        [87, 16, 110],
        [188, 55, 84],
        [249, 142, 9],
        [252, 255, 164],
    ],
    dtype=np.float64,
)


def heatmap_rgba(heatmap: np.ndarray, *, max_alpha: float = 0.75) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 4) uint8."""
    h = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float64)), 0.0, 1.0)
    rgb = np.stack([np.interp(h, _STOPS, _COLOURS[:, c]) for c in range(3)], axis=-1)
    alpha = 255.0 * max_alpha * h
    return np.concatenate([rgb, alpha[..., None]], axis=-1).round().astype(np.uint8)


def heatmap_png(heatmap: np.ndarray, *, max_alpha: float = 0.75) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(heatmap_rgba(heatmap, max_alpha=max_alpha), mode="RGBA").save(buffer, format="PNG")
    return buffer.getvalue()
