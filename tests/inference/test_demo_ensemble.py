"""The shipped demo ensemble: it loads, predicts, and gives the same answer for one X-ray however it
was encoded (a 28x28 PNG, a 1024x1024 PNG, a 12-bit MONOCHROME1 DICOM with a window)."""

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from clinic_ai.inference.backends import runtime
from clinic_ai.inference.evaluation import auroc
from clinic_ai.inference.preprocess import display_pixels

DEMO = Path(runtime.__file__).resolve().parent.parent / "demo"
SPEC = DEMO / "ensemble.json"


@pytest.fixture(scope="module")
def runner():
    return runtime.load_ensemble(SPEC)


@pytest.fixture(scope="module")
def val():
    data = np.load(DEMO / "pneumoniamnist_trainval.npz")
    return data["val_images"], data["val_labels"].ravel()


def test_spec_describes_what_the_django_side_needs():
    spec = json.loads(SPEC.read_text())
    assert spec["class_names"] == ["normal", "pneumonia"]
    assert spec["task"] == "binary" and spec["temperature"] > 0 and 0 < spec["threshold"] < 1
    assert len({m["architecture"] for m in spec["members"]}) >= 3
    for m in spec["members"]:
        path = DEMO / m["file"]
        assert path.stat().st_size < 1_000_000
        assert m["last_conv_layer"] and m["validation"]["auroc"] > 0.9
    assert "best member" in spec["model_card"]


def test_shipped_ensemble_loads_once_and_predicts_validation_well(runner, val):
    images, labels = val
    assert runtime.load_ensemble(SPEC) is runner  # cached per process
    x = np.stack([runner.preprocess(im) for im in images])
    results = runner.predict(x, gradcam=False)
    p = np.array([r.probabilities["pneumonia"] for r in results])
    assert auroc(labels, p) > 0.97
    assert np.mean((p >= 0.5) == (labels == 1)) > 0.88
    for r in results[:5]:
        assert len(r.members) == len(runner.members)
        assert r.labels == [r.target_class]


def test_shipped_ensemble_heatmaps_cover_the_image(runner, val):
    images, _ = val
    x = np.stack([runner.preprocess(im) for im in images[:4]])
    results = runner.predict(x, gradcam=True, image_sizes=[(28, 28), (64, 64), (100, 80), (28, 28)])
    assert results[2].heatmap.shape == (100, 80) and results[1].heatmap_std.shape == (64, 64)
    for r in results:
        assert r.heatmap.max() <= 1.0 and r.heatmap.min() >= 0.0 and np.isfinite(r.heatmap).all()
        assert set(r.member_heatmaps) == {m.name for m in runner.members}


def _monochrome1_dicom(path: Path, display: np.ndarray) -> Path:
    """12-bit stored values, rescale intercept -1024, a window, MONOCHROME1 (white = low values).

    display in [0, 1] -> windowed value w = 1 - display (MONOCHROME1) -> modality value in the window.
    """
    center, width = 976.0, 3000.0  # modality values -524 .. 2476
    modality = (center - 0.5 - (width - 1) / 2) + (1.0 - display) * (width - 1)
    stored = np.clip(np.rint(modality + 1024), 0, 4095).astype(np.uint16)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CR"
    ds.set_pixel_data(stored, "MONOCHROME1", 12)
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.WindowCenter = center
    ds.WindowWidth = width
    ds.save_as(path, enforce_file_format=True)
    assert pydicom.dcmread(path).BitsStored == 12
    return path


def test_same_xray_three_encodings_same_answer(runner, val, tmp_path):
    images, labels = val
    # a few images of each class, including the ones nearest the threshold (the hardest case)
    x = np.stack([runner.preprocess(im) for im in images])
    p = np.array([r.probabilities["pneumonia"] for r in runner.predict(x)])
    chosen = list(np.flatnonzero(labels == 0)[:3]) + list(np.flatnonzero(labels == 1)[:3])
    chosen += list(np.argsort(np.abs(p - 0.5))[:2])
    for i in chosen:
        small = tmp_path / f"{i}_small.png"
        Image.fromarray(images[i]).save(small)
        big = tmp_path / f"{i}_big.png"
        Image.fromarray(images[i]).resize((1024, 1024), Image.Resampling.BICUBIC).save(big)
        upsampled = np.asarray(Image.fromarray(images[i].astype(np.float32) / 255.0, mode="F").resize((512, 512)))
        dcm = _monochrome1_dicom(tmp_path / f"{i}.dcm", np.clip(upsampled, 0, 1))

        batch = []
        for path, kind in ((small, "png"), (big, "png"), (dcm, "dicom")):
            batch.append(runner.preprocess(display_pixels(path, kind)))
        results = runner.predict(np.stack(batch), gradcam=False)
        probs = [r.probabilities["pneumonia"] for r in results]
        assert max(probs) - min(probs) <= 0.02, (i, probs)
        assert abs(probs[0] - p[i]) <= 1e-5  # the 28x28 PNG is the array itself
        if abs(p[i] - 0.5) > 0.02:
            assert len({r.labels[0] for r in results}) == 1
