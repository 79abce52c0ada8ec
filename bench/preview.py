"""Preview rendering: our first-frame-only path against decoding the whole pixel array.

    .venv/bin/python bench/preview.py [--repeat 5]

Both sides read the same multi-frame files (pydicom's test data and one synthetic 120-frame
512x512 file) in the same run and produce
the same 8-bit first-frame image; the baseline is what a straightforward implementation does
(`ds.pixel_array`, then frame 0). Prints one JSON line.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.pixels import apply_modality_lut, apply_voi_lut  # noqa: E402

from clinic_ai.studies.imaging import render_preview  # noqa: E402

FILES = [
    "emri_small.dcm",
    "emri_small_jpeg_2k_lossless.dcm",
    "emri_small_RLE.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_2frame.dcm",
]


def baseline(path: str) -> np.ndarray:
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array  # decodes every frame
    frame = pixels[0] if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels
    if ds.SamplesPerPixel == 1:
        frame = apply_voi_lut(apply_modality_lut(frame, ds), ds).astype(np.float64)
        low, high = np.percentile(frame, [0.5, 99.5])
        frame = np.clip((frame - low) / max(high - low, 1e-9) * 255, 0, 255)
    return frame.astype(np.uint8)


def synthetic_multiframe(directory: Path, frames: int = 120) -> str:
    """A 120-frame 512x512 16-bit file, the size of a short cine or a thin CT volume."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.Rows = ds.Columns = 512
    ds.NumberOfFrames = frames
    rng = np.random.default_rng(0)
    ds.PixelData = rng.integers(0, 4000, size=(frames, 512, 512), dtype=np.uint16).astype(np.int16).tobytes()
    path = directory / "synthetic_multiframe.dcm"
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def timed(fn, repeat):
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import tempfile

    tmp = Path(tempfile.mkdtemp())
    paths = [get_testdata_file(name) for name in FILES] + [synthetic_multiframe(tmp)]
    ours = sum(timed(lambda p=p: render_preview(p, "dicom", max_size=1024), args.repeat) for p in paths)
    base = sum(timed(lambda p=p: baseline(p), args.repeat) for p in paths)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    print(
        json.dumps(
            {
                "benchmark": "preview_first_frame",
                "files": len(paths),
                "repeat": args.repeat,
                "ours_ms_total": round(ours * 1000, 2),
                "baseline_full_decode_ms_total": round(base * 1000, 2),
                "speedup": round(base / ours, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
