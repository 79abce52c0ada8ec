"""The release gate's cost per file, against the whole DICOM step it guards, same files, same run.

    .venv/bin/python bench/gate.py [--repeat 30]

Files: pydicom's CT_small.dcm as shipped, and the test suite's planted corpus (one file per
source). For each released file: the median CPU time (`time.process_time`: on a shared 2-core machine wall
time mostly measures the other processes) of `releasegate.check_dicom_release(original, output)`
and of the whole `pipeline.process_dicom` (which now includes the gate), no OCR. One JSON line on
stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pydicom  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402

from clinic_ai.deid import process as pipeline  # noqa: E402
from clinic_ai.deid.options import DeidOptions  # noqa: E402
from clinic_ai.releasegate import GateOptions, check_dicom_release  # noqa: E402
from tests.deidentification.corpus import PATIENT_SECRET, PROJECT_KEY, UID_SECRET, build_corpus  # noqa: E402


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    options = DeidOptions()
    gate_options = GateOptions(
        retain_modified_dates=options.retain_modified_dates,
        retain_patient_characteristics=options.retain_patient_characteristics,
        clean_descriptors=options.clean_descriptors,
        clean_pixel_data=False,
    )
    files = {"CT_small.dcm": Path(get_testdata_file("CT_small.dcm")).read_bytes()}
    files.update({f"corpus:{name}": f.data for name, f in build_corpus().items()})
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.dcm", Path(tmp) / "out.dcm"

        def step():
            return pipeline.process_dicom(
                src,
                dst,
                options=options,
                uid_secret=UID_SECRET,
                patient_secret=PATIENT_SECRET,
                project_key=PROJECT_KEY,
                template_for=lambda device: None,
                detector=None,
            )

        for name, data in files.items():
            src.write_bytes(data)
            dst.unlink(missing_ok=True)
            outcome = step()
            if outcome.status != "released":
                rows[name] = {"status": outcome.status}
                continue
            output = dst.read_bytes()
            pseudonym = str(pydicom.dcmread(dst, stop_before_pixels=True).PatientID)
            gate_ms = _median_ms(
                lambda data=data, output=output, pseudonym=pseudonym: check_dicom_release(
                    data, output, options=gate_options, expected_pseudonym=pseudonym
                ),
                args.repeat,
            )
            rows[name] = {
                "path": outcome.audit.get("path"),
                "gate_ms": round(gate_ms, 2),
                "dicom_step_ms": round(_median_ms(step, args.repeat), 2),
            }
    gated = [r for r in rows.values() if "gate_ms" in r]
    print(
        json.dumps(
            {
                "gate_cpu_ms_ct_small": rows["CT_small.dcm"].get("gate_ms"),
                "gate_cpu_ms_corpus_median": round(statistics.median(r["gate_ms"] for r in gated), 2),
                "dicom_step_cpu_ms_corpus_median": round(statistics.median(r["dicom_step_ms"] for r in gated), 2),
                "files": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
