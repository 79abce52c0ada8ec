"""The viewer's full-depth pixels: exact values, the frame asked for, and the same access as the image page."""

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.urls import reverse
from pydicom.data import get_testdata_file

from clinic_ai.accounts.models import Role
from clinic_ai.studies.models import Image, ImageStatus
from tests.conftest import run_pipeline_inline, upload_through_api

pytestmark = pytest.mark.django_db


def _release(client, project, user, files):
    client.force_login(user)
    upload_through_api(client, project, files)
    run_pipeline_inline()
    client.logout()


@pytest.fixture
def ct_image(client, project, radiologist, ct_bytes):
    _release(client, project, radiologist, {"ct.dcm": ct_bytes})
    return Image.objects.get(status=ImageStatus.RELEASED)


@pytest.fixture
def mr_multiframe(client, project, radiologist):
    _release(client, project, radiologist, {"mr.dcm": Path(get_testdata_file("emri_small.dcm")).read_bytes()})
    return Image.objects.get(status=ImageStatus.RELEASED)


def _decode(response) -> np.ndarray:
    rows, columns, samples = (int(v) for v in response["X-Pixel-Shape"].split(","))
    values = np.frombuffer(response.content, dtype=np.dtype(response["X-Pixel-Type"]).newbyteorder("<"))
    return values.reshape((rows, columns, samples) if samples > 1 else (rows, columns))


def test_a_16_bit_ct_frame_decodes_back_to_the_files_pixel_array(client, ct_image, radiologist):
    client.force_login(radiologist)
    response = client.get(reverse("studies:image_pixels", args=[ct_image.pk, 0]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Cache-Control"].startswith("private")
    assert response["X-Pixel-Type"] == "int16"
    expected = pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array
    assert np.array_equal(_decode(response), expected)
    slope, intercept, applied = response["X-Pixel-Rescale"].split(",")
    assert (float(slope), float(intercept), applied) == (1.0, -1024.0, "0")
    lo, hi = (float(v) for v in response["X-Pixel-Range"].split(","))
    assert (lo, hi) == (float(expected.min()) - 1024, float(expected.max()) - 1024)
    assert response["X-Pixel-Photometric"] == "MONOCHROME2"
    assert response["X-Pixel-Modality"] == "CT"
    assert response["X-Pixel-Frames"] == "1"


def test_every_frame_of_a_multiframe_image_decodes_back_exactly(client, mr_multiframe, radiologist):
    client.force_login(radiologist)
    expected = pydicom.dcmread(get_testdata_file("emri_small.dcm")).pixel_array
    assert expected.shape[0] == mr_multiframe.frames == 10
    for frame in range(mr_multiframe.frames):
        response = client.get(reverse("studies:image_pixels", args=[mr_multiframe.pk, frame]))
        assert response.status_code == 200
        assert response["X-Pixel-Frames"] == "10"
        assert np.array_equal(_decode(response), expected[frame])
    assert not np.array_equal(expected[0], expected[5])  # the frames differ, so the check means something


def test_a_frame_past_the_last_is_404(client, mr_multiframe, radiologist):
    client.force_login(radiologist)
    assert client.get(reverse("studies:image_pixels", args=[mr_multiframe.pk, 10])).status_code == 404
    assert client.get(reverse("studies:image_pixels", args=[mr_multiframe.pk, 10**12])).status_code == 404


def test_header_windows_are_sent(client, project, radiologist):
    _release(client, project, radiologist, {"mr.dcm": Path(get_testdata_file("MR_small.dcm")).read_bytes()})
    image = Image.objects.get(status=ImageStatus.RELEASED)
    client.force_login(radiologist)
    response = client.get(reverse("studies:image_pixels", args=[image.pk, 0]))
    assert response["X-Pixel-Windows"] == "600.0/1600.0"


def test_a_slope_that_overflows_the_range_sends_no_infinity(client, project, radiologist):
    import pydicom

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.RescaleSlope = "1e308"  # finite, but max * slope is not
    buffer = io.BytesIO()
    ds.save_as(buffer)
    _release(client, project, radiologist, {"ct.dcm": buffer.getvalue()})
    image = Image.objects.get(status=ImageStatus.RELEASED)
    client.force_login(radiologist)
    response = client.get(reverse("studies:image_pixels", args=[image.pk, 0]))
    assert response.status_code == 200
    assert "inf" not in response["X-Pixel-Range"] and "nan" not in response["X-Pixel-Range"]


def test_a_png_is_sent_as_8_bit_grey(client, project, radiologist, png_bytes):
    _release(client, project, radiologist, {"g.png": png_bytes})
    image = Image.objects.get(status=ImageStatus.RELEASED)
    client.force_login(radiologist)
    response = client.get(reverse("studies:image_pixels", args=[image.pk, 0]))
    assert response.status_code == 200
    assert (response["X-Pixel-Type"], response["X-Pixel-Shape"]) == ("uint8", "48,64,1")
    from PIL import Image as Picture

    assert np.array_equal(_decode(response), np.asarray(Picture.open(io.BytesIO(png_bytes))))


def _png_grey16(values: np.ndarray) -> bytes:
    """A 16-bit greyscale PNG written byte by byte (not by Pillow, which reads it back): big-endian
    samples, filter 0 on every row."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows, columns = values.shape
    raw = b"".join(b"\x00" + values[r].astype(">u2").tobytes() for r in range(rows))
    header = struct.pack(">IIBBBBB", columns, rows, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_a_16_bit_grey_png_is_sent_at_full_depth(client, project, radiologist):
    """12-bit data in a 16-bit PNG (a common export): the viewer gets every value, not the 8-bit
    preview's, so its window is real."""
    rng = np.random.default_rng(7)
    values = (np.arange(40 * 56).reshape(40, 56) * 4095 // (40 * 56 - 1)).astype(np.uint16)
    values[::7, ::5] = rng.integers(0, 4096, size=values[::7, ::5].shape)
    _release(client, project, radiologist, {"x.png": _png_grey16(values)})
    image = Image.objects.get(status=ImageStatus.RELEASED)
    client.force_login(radiologist)
    response = client.get(reverse("studies:image_pixels", args=[image.pk, 0]))
    assert response.status_code == 200
    assert (response["X-Pixel-Type"], response["X-Pixel-Shape"]) == ("uint16", "40,56,1")
    assert response["X-Pixel-Photometric"] == "MONOCHROME2" and response["X-Pixel-Modality"] == ""
    assert np.array_equal(_decode(response), values)
    assert response["X-Pixel-Range"] == f"{float(values.min())!r},{float(values.max())!r}"
    assert len(np.unique(values)) > 256  # more levels than an 8-bit rendering could carry


@pytest.fixture
def clinician_elsewhere(member_of):
    from tests.factories import ProjectFactory

    return member_of(ProjectFactory(), Role.CLINICIAN)


@pytest.mark.parametrize(
    ("who", "status"),
    [("radiologist", 200), ("clinician", 200), ("project_admin", 200), ("outsider", 404), ("clinician_elsewhere", 404)],
)
def test_pixels_by_role(client, ct_image, who, status, request):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("studies:image_pixels", args=[ct_image.pk, 0])).status_code == status


def test_anonymous_is_sent_to_log_in(client, ct_image):
    response = client.get(reverse("studies:image_pixels", args=[ct_image.pk, 0]))
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize("status", [ImageStatus.HELD, ImageStatus.QUARANTINED, ImageStatus.MASKING])
@pytest.mark.parametrize("who", ["radiologist", "project_admin", "clinician"])
def test_an_image_not_released_is_not_served_even_to_its_uploader_or_an_admin(client, ct_image, status, who, request):
    Image.objects.filter(pk=ct_image.pk).update(status=status)
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("studies:image_pixels", args=[ct_image.pk, 0])).status_code == 404


def test_only_get(client, ct_image, radiologist):
    client.force_login(radiologist)
    assert client.post(reverse("studies:image_pixels", args=[ct_image.pk, 0])).status_code == 405


# --- VOI LUT Sequence and VOILUTFunction ----------------------------------------------------------------


def _released_dataset(image: Image) -> pydicom.Dataset:
    from clinic_ai.studies import storage

    return pydicom.dcmread(storage.media_path(image.released_path))


def _lut(client, image, index="0", frame=0):
    return client.get(reverse("studies:image_pixels", args=[image.pk, frame]), {"voi": index})


def test_a_voi_lut_is_offered_and_maps_the_frame_as_pydicoms_apply_voi(client, project, radiologist):
    from pydicom.pixels import apply_modality_lut, apply_voi

    from tests.studies.dicom_variants import dx_with_voi_lut, voi_lut_gamma

    _release(client, project, radiologist, {"dx.dcm": dx_with_voi_lut()})
    image = Image.objects.get(status=ImageStatus.RELEASED)
    client.force_login(radiologist)
    response = client.get(reverse("studies:image_pixels", args=[image.pk, 0]))
    assert (response["X-Pixel-VOI-LUTs"], response["X-Pixel-Windows"]) == ("0", "")
    lut = _lut(client, image)
    assert lut.status_code == 200 and lut["Cache-Control"].startswith("private")
    assert (lut["X-Pixel-Type"], lut["X-Pixel-Shape"], lut["X-Pixel-VOI-First"]) == ("uint16", "4096,1,1", "100")
    assert lut["X-Pixel-Range"] == "200,3800"
    assert "favourite" not in str(lut.headers) + str(response.headers)  # LUTExplanation is never sent
    table, first = _decode(lut)[:, 0], int(lut["X-Pixel-VOI-First"])
    # The table is the one written into the file, entry for entry (not only what apply_voi, which
    # the server uses to read it, makes of it).
    assert table.tolist() == voi_lut_gamma()

    # The viewer's mapping: the frame's modality values, rounded, clamped into the table.
    slope, intercept, _applied = (float(v) for v in response["X-Pixel-Rescale"].split(","))
    modality = _decode(response) * slope + intercept
    mapped = table[np.clip(np.rint(modality) - first, 0, table.size - 1).astype(np.int64)]
    ds = _released_dataset(image)
    expected = apply_voi(apply_modality_lut(ds.pixel_array, ds).astype(np.int64), ds)
    assert np.array_equal(mapped, expected)
    assert len(np.unique(np.diff(expected[1:].ravel().astype(np.int64)))) > 2  # not a straight line


def test_every_usable_voi_lut_is_offered_by_its_item_number(client, project, radiologist):
    from tests.studies.dicom_variants import dx_with_voi_lut, voi_lut_gamma

    broken = ((4096, 100, 16), [7] * 100)  # LUTData shorter than the descriptor says
    luts = [((4096, 100, 12), voi_lut_gamma()), broken, ((2, 0, 16), [0, 65535])]
    _release(client, project, radiologist, {"dx.dcm": dx_with_voi_lut(luts=luts)})
    image = Image.objects.get(status=ImageStatus.RELEASED)
    client.force_login(radiologist)
    assert client.get(reverse("studies:image_pixels", args=[image.pk, 0]))["X-Pixel-VOI-LUTs"] == "0,2"
    assert _lut(client, image, "1").status_code == 404
    third = _lut(client, image, "2")
    assert (third.status_code, third["X-Pixel-Range"], list(_decode(third)[:, 0])) == (200, "0,65535", [0, 65535])


def test_zero_entries_in_the_descriptor_mean_65536(client, project, radiologist):
    from tests.studies.dicom_variants import dx_with_voi_lut

    data = np.arange(65536, dtype="<u2")[::-1].tobytes()  # OW, inverted
    _release(client, project, radiologist, {"dx.dcm": dx_with_voi_lut(luts=[((0, 0, 16), data)])})
    image = Image.objects.get(status=ImageStatus.RELEASED)
    client.force_login(radiologist)
    lut = _lut(client, image)
    assert (lut.status_code, lut["X-Pixel-Shape"], lut["X-Pixel-Range"]) == (200, "65536,1,1", "0,65535")
    assert _decode(lut)[0, 0] == 65535 and _decode(lut)[-1, 0] == 0


@pytest.mark.parametrize(
    "lut",
    [
        ((4096, 100), list(range(4096))),  # two descriptor values
        ((4096, 100, 12), list(range(100))),  # LUTData shorter than declared (US)
        ((4096, 100, 16), np.arange(100, dtype="<u2").tobytes()),  # and as OW bytes
        ((0, 0, 16), list(range(4096))),  # 0 entries is 65536, not what is there
        ((4096, 100, 7), list(range(4096))),  # a bit depth that does not exist
        ((16, 0, 16), [5] * 16),  # flat: no black to white
    ],
)
def test_a_damaged_voi_lut_is_not_offered_and_the_preview_falls_back(client, project, radiologist, lut):
    from tests.studies.dicom_variants import dx_with_voi_lut

    _release(client, project, radiologist, {"dx.dcm": dx_with_voi_lut(luts=[lut])})
    image = Image.objects.get(status=ImageStatus.RELEASED)
    client.force_login(radiologist)
    response = client.get(reverse("studies:image_pixels", args=[image.pk, 0]))
    assert (response.status_code, response["X-Pixel-VOI-LUTs"]) == (200, "")
    assert _lut(client, image).status_code == 404
    assert client.get(reverse("studies:image_preview", args=[image.pk])).status_code == 200


@pytest.mark.parametrize("index", ["99", "8", "-1", "1", "\x00", "", "0x0", "1e400", "٠", "0 "])
def test_a_bad_voi_number_is_404(client, project, radiologist, index):
    from tests.studies.dicom_variants import dx_with_voi_lut

    _release(client, project, radiologist, {"dx.dcm": dx_with_voi_lut()})
    image = Image.objects.get(status=ImageStatus.RELEASED)
    client.force_login(radiologist)
    assert _lut(client, image, index).status_code == 404
    assert _lut(client, image, "0", frame=1).status_code == 404


def test_an_image_without_a_voi_lut_has_none_to_send(client, ct_image, radiologist, png_bytes, project):
    client.force_login(radiologist)
    assert client.get(reverse("studies:image_pixels", args=[ct_image.pk, 0]))["X-Pixel-VOI-LUTs"] == ""
    assert _lut(client, ct_image).status_code == 404


@pytest.mark.parametrize(
    ("function", "sent"),
    [(None, "LINEAR"), ("SIGMOID", "SIGMOID"), ("LINEAR_EXACT", "LINEAR_EXACT"), ("GAMMA", "LINEAR")],
)
def test_the_windows_voi_function_is_sent(client, project, radiologist, function, sent):
    from tests.studies.dicom_variants import dx_with_voi_lut

    dx = dx_with_voi_lut(luts=[], windows=((2100.0, 1000.0),), voi_function=function)
    _release(client, project, radiologist, {"dx.dcm": dx})
    image = Image.objects.get(status=ImageStatus.RELEASED)
    client.force_login(radiologist)
    response = client.get(reverse("studies:image_pixels", args=[image.pk, 0]))
    assert (response["X-Pixel-VOI-Function"], response["X-Pixel-Windows"], response["X-Pixel-VOI-LUTs"]) == (
        sent,
        "2100.0/1000.0",
        "",
    )


@pytest.mark.parametrize("who", ["outsider", "clinician_elsewhere"])
def test_a_voi_lut_is_404_to_those_who_may_not_see_the_image(client, project, radiologist, who, request):
    from tests.studies.dicom_variants import dx_with_voi_lut

    _release(client, project, radiologist, {"dx.dcm": dx_with_voi_lut()})
    image = Image.objects.get(status=ImageStatus.RELEASED)
    client.force_login(request.getfixturevalue(who))
    assert _lut(client, image).status_code == 404
    client.force_login(radiologist)
    allowed = _lut(client, image)
    assert (allowed.status_code, allowed["X-Pixel-VOI-First"]) == (200, "100")
    Image.objects.filter(pk=image.pk).update(status=ImageStatus.HELD)
    assert _lut(client, image).status_code == 404
