"""Burned-in text check: the pre-filter against Tesseract, per image and per frame.

    .venv/bin/python bench/ocr.py [--frames 300] [--repeat 3]

Cases, each rendered as the upload/CLI check renders them (`imaging.iter_frames`):

* the real ultrasounds of deid-data (a greyscale and an RGB still, the first frame of the
  30-frame RGB clip) and pydicom's US1_UNCR: text on every image;
* a synthetic CT-like series of --frames 512x512 16-bit slices (a body ellipse, bone ring, noise),
  without text, then with a static label burned into every slice, then with a name on one slice.

For every case: the pre-filter's time per frame (`textscan.text_candidates`), the production
path's time (`ocr.find_text_in_frames`: pre-filter, Tesseract on candidate regions, reuse of
unchanged regions) and its Tesseract runs, and the baseline in the same run: Tesseract on the
whole frame (`ocr.find_text_regions`, what the pipeline did on frame 0 before). For the series the
baseline is timed on 5 slices and given per frame. Medians of --repeat; one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
import pytesseract  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid  # noqa: E402

from clinic_ai.deid import ocr  # noqa: E402
from clinic_ai.deid.textscan import text_candidates  # noqa: E402
from clinic_ai.studies.imaging import iter_frames  # noqa: E402

RUNS = [0]
_real = pytesseract.image_to_data


def _counting(*args, **kwargs):
    RUNS[0] += 1
    return _real(*args, **kwargs)


pytesseract.image_to_data = _counting  # counts Tesseract runs at the library boundary


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ct_series(path: Path, frames: int, *, label: str | None, name_on: int | None) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:512, 0:512]
    body = ((xx - 256) / 200) ** 2 + ((yy - 270) / 150) ** 2 < 1
    bone = body & (((xx - 256) / 185) ** 2 + ((yy - 270) / 135) ** 2 > 1)
    font = ImageFont.load_default(size=16)
    stack = np.empty((frames, 512, 512), np.uint16)
    for i in range(frames):
        hu = np.where(body, 1040 + 30 * np.sin(i / 20), 24) + np.where(bone, 700, 0) + rng.normal(0, 12, (512, 512))
        frame = np.clip(hu, 0, 4095).astype(np.uint16)
        if label or name_on == i:
            ink = Image.new("L", (512, 512))
            pen = ImageDraw.Draw(ink)
            if label:
                pen.text((8, 8), label, fill=255, font=font)
            if name_on == i:
                pen.text((330, 480), "DOE^JANE 1961", fill=255, font=font)
            frame[np.asarray(ink) > 128] = 4095
        stack[i] = frame
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "CT"
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.set_pixel_data(stack, "MONOCHROME2", 12, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)


def case(label: str, path: Path, repeat: int, *, baseline_frames: int | None = None) -> dict:
    frames = [np.asarray(f) for f in iter_frames(path, "dicom")]
    greys = [np.ascontiguousarray(ocr._as_grey(f)) for f in frames]
    prefilter = median_time(lambda: [text_candidates(g) for g in greys], repeat) / len(greys)
    RUNS[0] = 0
    stats = ocr.ScanStats()
    boxes = ocr.find_text_in_frames(frames, stats=stats)
    runs = RUNS[0]
    ours = median_time(lambda: ocr.find_text_in_frames(frames), repeat)
    sample = frames[: baseline_frames or len(frames)]
    whole = median_time(lambda: [ocr.find_text_regions(f) for f in sample], max(1, repeat // 2)) / len(sample)
    return {
        "case": label,
        "frames": len(frames),
        "prefilter_ms_per_frame": round(prefilter * 1000, 2),
        "ours_s_total": round(ours, 3),
        "ours_ms_per_frame": round(ours / len(frames) * 1000, 2),
        "ours_tesseract_runs": runs,
        "ours_frames_read": stats.frames_read,
        "ours_boxes": len(boxes),
        "whole_frame_tesseract_ms_per_frame": round(whole * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import deid_data

    data = Path(deid_data.__file__).parent / "data" / "ultrasounds"
    results = []
    for name in ("GREYSCALE_IMAGE.dcm", "RGB_IMAGE.dcm"):
        results.append(case(f"deid-data {name}", data / name, args.repeat))
    results.append(case("pydicom US1_UNCR.dcm", Path(get_testdata_file("US1_UNCR.dcm")), args.repeat))
    results.append(case("deid-data ultrasound-multiframe.dcm (30 frames)", data / "ultrasound-multiframe.dcm", 1))
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
        for label, kwargs in (
            ("CT-like series, no text", {"label": None, "name_on": None}),
            ("CT-like series, static label on every slice", {"label": "SERIES 3 AXIAL 1.0", "name_on": None}),
            ("CT-like series, label + a name on one slice", {"label": "SERIES 3 AXIAL 1.0", "name_on": 150}),
        ):
            path = Path(tmp) / "ct.dcm"
            ct_series(path, args.frames, **kwargs)
            assert pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames == args.frames
            results.append(case(f"{label} ({args.frames} slices)", path, 1, baseline_frames=5))
    print(json.dumps({"benchmark": "ocr", "cpus": os.cpu_count(), "cases": results}))


if __name__ == "__main__":
    main()
