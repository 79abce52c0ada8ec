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
        assert set(r.member_heatmaps) == set(runner.member_names) == {"vgg", "resnet", "mobilenet"}


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


def _encodings(image: np.ndarray, directory: Path, up=Image.Resampling.NEAREST) -> list[tuple[Path, str]]:
    """The same X-ray as a 28x28 PNG, a 1024x1024 PNG and a 512x512 12-bit MONOCHROME1 DICOM.

    Pixel replication (nearest) renders the same picture at a higher resolution without inventing
    detail, as a scanner export of one radiograph at two sizes would; smooth interpolation is
    measured separately below.
    """
    small = directory / "small.png"
    Image.fromarray(image).save(small)
    big = directory / "big.png"
    Image.fromarray(image).resize((1024, 1024), up).save(big)
    upsampled = np.asarray(Image.fromarray(image).resize((512, 512), up), dtype=np.float64) / 255.0
    dcm = _monochrome1_dicom(directory / "image.dcm", upsampled)
    return [(small, "png"), (big, "png"), (dcm, "dicom")]


def _probabilities(runner, files):
    results = runner.predict_pixels([display_pixels(path, kind) for path, kind in files])
    return [r.probabilities["pneumonia"] for r in results], [r.labels for r in results]


def test_same_xray_three_encodings_same_answer(runner, val, tmp_path):
    images, labels = val
    # the first three images of each class in the validation split (not picked for passing)
    for i in list(np.flatnonzero(labels == 0)[:3]) + list(np.flatnonzero(labels == 1)[:3]):
        directory = tmp_path / str(i)
        directory.mkdir()
        probs, decided = _probabilities(runner, _encodings(images[i], directory))
        assert max(probs) - min(probs) <= 0.02, (i, probs)
        assert abs(probs[0] - runner.predict(runner.preprocess(images[i])[None])[0].probabilities["pneumonia"]) < 1e-6
        assert decided[0] == decided[1] == decided[2]


def test_encodings_of_images_at_the_threshold_stay_close(runner, val, tmp_path):
    """Where the calibrated probability is steepest, a sub-grey-level resampling difference moves it
    most: measured up to 0.03 on the shipped ensemble (a known limit, stated in the report)."""
    images, _ = val
    x = np.stack([runner.preprocess(im) for im in images])
    p = np.array([r.probabilities["pneumonia"] for r in runner.predict(x)])
    for i in np.argsort(np.abs(p - 0.5))[:2]:
        directory = tmp_path / str(i)
        directory.mkdir()
        probs, _ = _probabilities(runner, _encodings(images[i], directory))
        assert max(probs) - min(probs) <= 0.05, (i, probs)


def test_smoothly_interpolated_upload_keeps_its_label(runner, val, tmp_path):
    """Bicubic upsampling adds a slight blur the members notice: labels hold away from the threshold."""
    images, _ = val
    shifts, flips = [], 0
    for i in range(0, 240, 8):
        directory = tmp_path / str(i)
        directory.mkdir()
        probs, decided = _probabilities(runner, _encodings(images[i], directory, up=Image.Resampling.BICUBIC))
        shifts.append(max(probs) - min(probs))
        flips += abs(probs[0] - 0.5) > 0.1 and not (decided[0] == decided[1] == decided[2])
    assert flips == 0
    assert np.median(shifts) <= 0.01
