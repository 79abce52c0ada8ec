"""Peak memory of de-identifying one large multi-frame DICOM file: the fast path against the pydicom path.

    .venv/bin/python bench/deid_memory.py [--frames 1600]

The file is pydicom's CT_small with identifiers planted (the test suite's corpus builder) and
--frames frames of 256 x 256 16-bit pixels (1600 frames: about 210 MB), explicit VR little
endian, uncompressed (compressed or deflated files are not measured here). Each side runs in a
fresh process: `pipeline.process_dicom` (which takes the fast path for this file), and the
pydicom path as the library offers it (`read_dicom`, `deidentify_dataset`, `dicom_to_bytes`,
`validate_released`, `write_atomic`). The figure is the growth of the process's peak resident
memory (VmHWM, reset after the imports) over its resident memory then.
One JSON line to stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[3])
from pathlib import Path
from clinic_ai.deid import dicomio, engine, files, validation
from clinic_ai.deid import process as pipeline
from clinic_ai.deid.options import DeidOptions
src, dst = Path(sys.argv[2]), Path(sys.argv[2] + ".out")

def status_kb(field):  # from /proc/self/status (ru_maxrss would count the parent's peak)
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

open("/proc/self/clear_refs", "w").write("5")  # VmHWM starts again from the resident set now
before = status_kb("VmRSS")
if sys.argv[1] == "fast":
    outcome = pipeline.process_dicom(
        src, dst, options=DeidOptions(), uid_secret=b"u" * 32, patient_secret=b"p" * 32,
        project_key="bench", template_for=lambda device: None, detector=None,
    )
    assert outcome.status != "rejected" and outcome.audit["path"] == "fast", outcome
else:
    ds = dicomio.read_dicom(src, decode_values=False)
    _, pseudonym, shift = pipeline.keys_for(ds, secret=b"p" * 32, project_key="bench")
    result = engine.deidentify_dataset(
        ds, options=DeidOptions(), uid_secret=b"u" * 32, patient_pseudonym=pseudonym, date_shift_days=shift
    )
    data = dicomio.dicom_to_bytes(result.dataset)
    validation.validate_released(data, expected_pseudonym=pseudonym)
    files.write_atomic(data, dst)
print((status_kb("VmHWM") - before) / 1024)
"""


def make_file(path: Path, frames: int) -> None:
    import warnings

    import numpy as np

    sys.path.insert(0, str(REPO))
    from tests.deidentification.corpus import load_source, plant_phi, to_bytes

    warnings.simplefilter("ignore")
    ds = plant_phi(load_source("CT_small.dcm"))
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames, 256, 256
    ds.PixelData = np.zeros((frames, 256, 256), dtype=np.uint16).tobytes()
    path.write_bytes(to_bytes(ds))


def peak(path_name: str, file: Path) -> float:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, path_name, str(file), str(REPO)], check=True, capture_output=True, text=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=1600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-deid-memory-") as tmp:
        file = Path(tmp) / "big.dcm"
        make_file(file, args.frames)
        size_mb = file.stat().st_size / 2**20
        fast, slow = peak("fast", file), peak("pydicom", file)
    print(
        json.dumps(
            {
                "benchmark": "deid_memory",
                "file_mb": round(size_mb, 1),
                "fast_path_peak_mb": round(fast, 1),
                "pydicom_path_peak_mb": round(slow, 1),
                "fast_peak_per_file_size": round(fast / size_mb, 2),
                "pydicom_peak_per_file_size": round(slow / size_mb, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
