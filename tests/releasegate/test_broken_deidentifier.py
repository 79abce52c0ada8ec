"""A deliberately broken de-identifier: the gate, and only the gate, keeps its output in quarantine.

The break is in the policy the de-identifier and its own validators share (``policy.decide``):
PatientName is kept wherever it occurs. The engine (pydicom path), the fast path and both old
validators all read the broken decision, so their own checks pass. The corpus file gets the
patient's name inside a kept sequence too, where no explicit pseudonym write covers it.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from pydicom import dcmread
from pydicom.dataset import Dataset

from clinic_ai.deid import engine, fastpath, policy, validation
from clinic_ai.deid import process as pipeline
from clinic_ai.deid.options import DeidOptions
from tests.deidentification.corpus import PATIENT_NAME, PATIENT_SECRET, PROJECT_KEY, UID_SECRET, build_file, to_bytes

PATIENT_NAME_TAG = 0x00100010


def scan_with_a_nested_name() -> bytes:
    ds = dcmread(io.BytesIO(build_file("ct").data))
    region = Dataset()
    region.CodeValue = "T-A0100"
    region.CodingSchemeDesignator = "SRT"
    region.CodeMeaning = "Brain"
    region.PatientName = PATIENT_NAME
    ds.AnatomicRegionSequence = [region]
    return to_bytes(ds)


@pytest.fixture
def broken_policy(monkeypatch):
    real = policy.decide

    def keeps_patient_name(tag, vr, options):
        if int(tag) == PATIENT_NAME_TAG:
            return policy.Decision(policy.Action.KEEP, "broken on purpose")
        return real(tag, vr, options)

    for module in (engine, validation):  # (the fast path's plans ask the engine's walker)
        monkeypatch.setattr(module, "decide", keeps_patient_name)
    monkeypatch.setattr(fastpath, "_PLANS", {})  # no plan made by the sound policy, none kept after


def test_the_broken_de_identifier_fools_its_own_validator(broken_policy):
    # Without this, the test below could pass for another reason (e.g. the name not being there).
    data = scan_with_a_nested_name()
    fast = fastpath.deidentify_bytes(
        data,
        options=DeidOptions(),
        uid_secret=UID_SECRET,
        identity=lambda ds: pipeline.keys_for(ds, secret=PATIENT_SECRET, project_key=PROJECT_KEY)[1:],
    )
    assert PATIENT_NAME.encode() in fast.data
    validation.validate_released(fast.data, expected_pseudonym=fast.pseudonym)  # no complaint


@pytest.mark.parametrize("path", ["fast", "pydicom"])
def test_the_gate_keeps_the_broken_output_in_quarantine(broken_policy, monkeypatch, tmp_path, path):
    if path == "pydicom":  # the fast path declines every file, so the engine makes the output
        monkeypatch.setattr(pipeline, "_fast_path", lambda *args, **kwargs: None)
    source = tmp_path / "in"
    source.mkdir()
    (source / "scan.dcm").write_bytes(scan_with_a_nested_name())
    report = tmp_path / "report.json"
    arguments = [str(source), str(tmp_path / "out"), "--report", str(report), "--no-ocr"]
    call_command("deidentify", *arguments, stdout=io.StringIO())
    (row,) = json.loads(report.read_text())["files"]
    assert row["status"] == "rejected"
    assert row["output"] is None
    assert row["reason"].startswith("The release check refused the file: ")
    assert "Doe" not in row["reason"] and "Jane" not in row["reason"]
    assert not list((tmp_path / "out").iterdir())
