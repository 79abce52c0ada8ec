"""`manage.py predict`: the PRODUCT.md contract, on a database set up by demo_setup only."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pydicom
import pytest
from django.core.management import call_command
from PIL import Image

from tests.conftest import REPO, _database_url

pytestmark = pytest.mark.django_db(transaction=True)


def _predict(*args):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": _database_url()}
    return subprocess.run(
        [sys.executable, "manage.py", "predict", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_predict_prints_one_json_line_per_image_with_heatmaps_at_the_images_size(tmp_path):
    from clinic_ai.inference.demo import DEMO_DIR

    call_command("demo_setup", stdout=io.StringIO())
    data = np.load(DEMO_DIR / "pneumoniamnist_trainval.npz")
    Image.fromarray(data["val_images"][0]).save(tmp_path / "small.png")
    Image.fromarray(data["val_images"][1]).resize((300, 200)).save(tmp_path / "wide.png")
    (tmp_path / "notes.txt").write_text("not an image")
    out = _predict(
        "--gradcam",
        "--heatmap-dir",
        tmp_path / "maps",
        tmp_path / "small.png",
        tmp_path / "wide.png",
        tmp_path / "notes.txt",
    )
    assert out.returncode == 1, out.stderr[-2000:]  # one file could not be read
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["path"] for line in lines] == [str(tmp_path / n) for n in ("small.png", "wide.png", "notes.txt")]
    for line, size in zip(lines[:2], [(28, 28), (300, 200)], strict=True):
        assert line["label"] in ("normal", "pneumonia")
        assert set(line["probabilities"]) == {"normal", "pneumonia"}
        assert abs(sum(line["probabilities"].values()) - 1) < 1e-5
        assert isinstance(line["uncertainty"], float)
        assert len(line["members"]) >= 3
        assert set(line["heatmaps"]) == {"ensemble", *line["members"]}
        for path in line["heatmaps"].values():
            with Image.open(path) as heat:
                assert heat.mode == "L" and heat.size == size
                assert max(heat.getdata()) == 255
    assert "error" in lines[2] and "label" not in lines[2]


def test_the_same_xray_as_png_and_as_a_windowed_monochrome1_dicom_gets_the_same_answer(tmp_path):
    from clinic_ai.inference.demo import DEMO_DIR

    call_command("demo_setup", stdout=io.StringIO())
    pixels = np.load(DEMO_DIR / "pneumoniamnist_trainval.npz")["val_images"][3]
    Image.fromarray(pixels).save(tmp_path / "x.png")
    # 12 bits stored, inverted (MONOCHROME1), shown through a window that maps back to the same greys.
    stored = (4095 - pixels.astype(np.uint16) * 16).astype(np.uint16)
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.DigitalXRayImageStorageForPresentation
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 4095 - 2040, 4096
    ds.PixelData = stored.tobytes()
    ds.save_as(tmp_path / "x.dcm", enforce_file_format=True)
    out = _predict(tmp_path / "x.png", tmp_path / "x.dcm")
    assert out.returncode == 0, out.stderr[-2000:]
    png, dicom = (json.loads(line) for line in out.stdout.splitlines())
    assert png["label"] == dicom["label"]
    for name in ("normal", "pneumonia"):
        assert abs(png["probabilities"][name] - dicom["probabilities"][name]) < 0.02


def test_heatmaps_can_explain_another_class_than_the_call(tmp_path):
    from clinic_ai.inference.demo import DEMO_DIR

    call_command("demo_setup", stdout=io.StringIO())
    Image.fromarray(np.load(DEMO_DIR / "pneumoniamnist_trainval.npz")["val_images"][5]).save(tmp_path / "x.png")
    lines = {}
    for name in ("normal", "pneumonia"):
        out = _predict("--gradcam", "--class", name, "--heatmap-dir", tmp_path / name, tmp_path / "x.png")
        assert out.returncode == 0, out.stderr[-2000:]
        lines[name] = json.loads(out.stdout)
        assert lines[name]["target_class"] == name
    maps = [np.asarray(Image.open(lines[n]["heatmaps"]["ensemble"])) for n in ("normal", "pneumonia")]
    assert not np.array_equal(*maps)
    assert _predict("--class", "fracture", tmp_path / "x.png").returncode != 0
