"""The fast path (`fastpath.deidentify_bytes`) against the pydicom path it must equal.

Every file we have goes through both: where the fast path answers, its output and audit must be
the pydicom path's, byte for byte; where the pydicom path rejects a file, the fast path must not
answer. So every test of the pydicom path (test_deid_dicom.py) holds for the fast path too, and
the upload pipeline, which takes the fast path first, releases exactly what the library would.
"""

from __future__ import annotations

import importlib.util
import io
import random
import warnings
from functools import cache
from pathlib import Path

import pydicom
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from clinic_ai.deid import DeidOptions, ReleaseValidationError, validate_released
from clinic_ai.deid.dicomio import dicom_to_bytes, read_dicom
from clinic_ai.deid.engine import deidentify_dataset
from clinic_ai.deid.errors import DeidentificationError
from clinic_ai.deid.fastpath import Fallback, deidentify_bytes, parse_part10
from clinic_ai.deid.process import process_dicom

from . import corpus as C
from .corpus import UID_SECRET, identity_for

OPTION_SETS = {
    "default": DeidOptions(),
    "clean-descriptors": DeidOptions(clean_descriptors=True),
    "no-dates-no-characteristics": DeidOptions(retain_modified_dates=False, retain_patient_characteristics=False),
}


def _sample_roots() -> list[Path]:
    roots = [Path(pydicom.__file__).parent / "data" / "test_files"]
    for package, sub in (("data_store", "data"), ("deid_data", "")):  # pydicom-data, deid-data
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            roots.append(Path(next(iter(spec.submodule_search_locations))) / sub)
    return roots


@cache
def _samples() -> dict[str, bytes]:
    files = {}
    for root in _sample_roots():
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix not in (".py", ".pyc", ".json", ".txt", ".gz", ".bz2", ".md"):
                if path.stat().st_size < 20_000_000:
                    files[f"{root.parent.name}/{path.relative_to(root)}"] = path.read_bytes()
    return files


@cache
def _corpus() -> dict[str, bytes]:
    return {name: item.data for name, item in C.build_corpus().items()}


def _process(src: Path, dst: Path, *, template_for=lambda device: None):
    """The upload pipeline's DICOM step (`pipeline.process_dicom`) with the test secrets, no OCR."""
    from .corpus import PATIENT_SECRET, PROJECT_KEY

    return process_dicom(
        src,
        dst,
        options=DeidOptions(),
        uid_secret=UID_SECRET,
        patient_secret=PATIENT_SECRET,
        project_key=PROJECT_KEY,
        template_for=template_for,
        detector=None,
    )


def _identity(ds: Dataset) -> tuple[str, int]:
    return identity_for(ds)


def _pydicom_path(data: bytes, options: DeidOptions):
    """What `read_dicom` + `deidentify_dataset` + `dicom_to_bytes` give: (bytes, audit), or the
    refusal. Any other exception is a defect and fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src = read_dicom(data, decode_values=False)
            pseudonym, shift = _identity(src)
            result = deidentify_dataset(
                src, options=options, uid_secret=UID_SECRET, patient_pseudonym=pseudonym, date_shift_days=shift
            )
            return dicom_to_bytes(result.dataset), result.to_audit_dict()
    except DeidentificationError as exc:
        return exc


def _fast_path(data: bytes, options: DeidOptions):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fast = deidentify_bytes(data, options=options, uid_secret=UID_SECRET, identity=_identity)
            return fast.data, fast.result.to_audit_dict()
    except (Fallback, DeidentificationError) as exc:  # left to pydicom, or the identity callable's refusal
        return exc


def _compare(data: bytes, options: DeidOptions) -> str:
    slow, fast = _pydicom_path(data, options), _fast_path(data, options)
    if isinstance(slow, Exception):
        assert isinstance(fast, Exception), "the fast path accepted a file the pydicom path rejects"
        return "both refuse"
    if isinstance(fast, Fallback):
        return "fallback"
    assert not isinstance(fast, Exception), f"fast path raised {type(fast).__name__} on a file pydicom handles"
    assert fast[0] == slow[0], "fast and pydicom paths wrote different bytes"
    assert fast[1] == slow[1], "fast and pydicom paths audited differently"
    return "same"


@pytest.mark.parametrize("options", OPTION_SETS.values(), ids=OPTION_SETS.keys())
@pytest.mark.parametrize("name", list(C.CORPUS_SOURCES))
def test_planted_corpus_takes_the_fast_path_and_matches_pydicom(name: str, options: DeidOptions) -> None:
    assert _compare(_corpus()[name], options) == "same"


@pytest.mark.parametrize("options", OPTION_SETS.values(), ids=OPTION_SETS.keys())
def test_without_audit_paths_the_output_and_counts_are_the_same(options: DeidOptions) -> None:
    for name, data in _corpus().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full = deidentify_bytes(data, options=options, uid_secret=UID_SECRET, identity=_identity)
            lean = deidentify_bytes(data, options=options, uid_secret=UID_SECRET, identity=_identity, audit_paths=False)
        assert lean.data == full.data, name
        assert full.result.acted_on and not lean.result.acted_on, name
        assert {**lean.result.to_audit_dict(), "acted_on": None} == {**full.result.to_audit_dict(), "acted_on": None}


def test_every_sample_file_matches_or_falls_back() -> None:
    outcomes: dict[str, list[str]] = {}
    for name, data in _samples().items():
        outcomes.setdefault(_compare(data, DeidOptions()), []).append(name)
    # The samples hold hundreds of files; most are ordinary little endian objects.
    assert len(outcomes.get("same", [])) > 100, {k: len(v) for k, v in outcomes.items()}
    # Big endian files are left to pydicom.
    assert any("big" in name.lower() or "expb" in name.lower() for name in outcomes.get("fallback", []))


def test_big_endian_and_unusual_files_fall_back() -> None:
    data = Path(pydicom.data.get_testdata_file("MR_small_bigendian.dcm")).read_bytes()
    with pytest.raises(Fallback):
        deidentify_bytes(data, options=DeidOptions(), uid_secret=UID_SECRET, identity=_identity)


@pytest.mark.parametrize("name", ["ct", "us_j2k", "enhanced_mr_multiframe", "deflated", "implicit_rtdose"])
@pytest.mark.parametrize("fraction", [0.2, 0.35, 0.6, 0.9, 0.999])
def test_truncated_files_fall_back(name: str, fraction: float) -> None:
    data = _corpus()[name]
    with pytest.raises(Fallback):
        deidentify_bytes(
            data[: int(len(data) * fraction)], options=DeidOptions(), uid_secret=UID_SECRET, identity=_identity
        )


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d + b"\x08\x00",  # a partial element header after the dataset
        lambda d: d + b"\x00" * 16,  # trailing zeros
        lambda d: d[132:],  # no preamble and prefix
        lambda d: d[:128] + b"DICX" + d[132:],
        lambda d: b"",
    ],
    ids=["partial-header", "trailing-zeros", "no-preamble", "bad-prefix", "empty"],
)
def test_malformed_files_fall_back(mangle) -> None:
    with pytest.raises(Fallback):
        deidentify_bytes(mangle(_corpus()["ct"]), options=DeidOptions(), uid_secret=UID_SECRET, identity=_identity)


def test_elements_out_of_order_fall_back() -> None:
    part = parse_part10(_corpus()["ct"])
    first, second = part.elements[0], part.elements[1]
    body = bytes(part.buffer)
    # Swap the first two elements of the dataset.
    a, b = body[: first.end], body[first.end : second.end]
    header = bytes(part.meta_buffer[: len(part.meta_buffer) - len(body)])
    with pytest.raises(Fallback):
        parse_part10(header + b + a + body[second.end :])


def test_deep_nesting_falls_back() -> None:
    ds = read_dicom(_corpus()["ct"])
    inner = ds
    for _ in range(40):
        item = Dataset()
        inner.ReferencedStudySequence = [item]
        inner = item
    with pytest.raises(Fallback):
        parse_part10(dicom_to_bytes(ds))


def _released(name: str) -> tuple[bytes, str]:
    data = _corpus()[name]
    fast = deidentify_bytes(data, options=DeidOptions(), uid_secret=UID_SECRET, identity=_identity)
    return fast.data, fast.pseudonym


def test_the_policy_validator_accepts_the_output_and_catches_a_reintroduced_leak() -> None:
    validate = validate_released
    data, pseudonym = _released("ct")
    validate(data, expected_pseudonym=pseudonym)

    def out() -> Dataset:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dcmread(io.BytesIO(data))

    ds = out()
    ds.InstitutionName = "Anything"
    with pytest.raises(ReleaseValidationError, match="InstitutionName"):
        validate(dicom_to_bytes(ds))
    ds = out()
    ds.RequestAttributesSequence = [Dataset()]
    with pytest.raises(ReleaseValidationError, match="RequestAttributesSequence"):
        validate(dicom_to_bytes(ds))
    ds = out()
    ds.ReferencedRequestSequence[0].StudyInstanceUID = "1.2.3.4.5.6"
    with pytest.raises(ReleaseValidationError, match="ReferencedRequestSequence>StudyInstanceUID"):
        validate(dicom_to_bytes(ds))
    ds = out()
    ds.StudyDate = "not a date"
    with pytest.raises(ReleaseValidationError, match="StudyDate"):
        validate(dicom_to_bytes(ds))
    ds = out()
    ds.add_new(0x00291010, "LO", "x")
    with pytest.raises(ReleaseValidationError, match="private"):
        validate(dicom_to_bytes(ds))
    with pytest.raises(ReleaseValidationError, match="pseudonym"):
        validate(data, expected_pseudonym="ANON-SOMEONEELSE")


def test_the_pipeline_writes_what_the_fast_path_gives(tmp_path) -> None:
    for name, data in _corpus().items():
        src, dst = tmp_path / f"{name}.dcm", tmp_path / f"{name}-out.dcm"
        src.write_bytes(data)
        outcome = _process(src, dst)
        assert outcome.status in ("released", "held"), (name, outcome.reason)
        slow = _pydicom_path(data, DeidOptions())
        assert not isinstance(slow, Exception)
        # The pipeline derives the pseudonym with the same secrets the corpus helper uses.
        assert dst.read_bytes() == slow[0], name


def test_the_pipeline_takes_the_pydicom_path_for_what_the_fast_path_leaves(tmp_path) -> None:
    src, dst = tmp_path / "big-endian.dcm", tmp_path / "out.dcm"
    src.write_bytes(Path(pydicom.data.get_testdata_file("MR_small_bigendian.dcm")).read_bytes())
    with pytest.raises(Fallback):
        deidentify_bytes(src.read_bytes(), options=DeidOptions(), uid_secret=UID_SECRET, identity=_identity)
    outcome = _process(src, dst)
    assert outcome.status == "released", outcome.reason
    validate_released(dst)


def test_mutated_files_never_split_the_two_paths() -> None:
    """Random damage to the headers of the corpus (bytes changed, cut out, put in): whatever the
    pydicom path does, the fast path agrees or leaves the file to it."""
    rng = random.Random(20261123)
    corpus = list(_corpus().values())
    outcomes: dict[str, int] = {}
    for _ in range(1000):
        data = bytearray(rng.choice(corpus))
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(132, min(6000, len(data)))
            op = rng.random()
            if op < 0.6:
                data[pos] = rng.randrange(256)
            elif op < 0.8:
                del data[pos : pos + rng.randint(1, 8)]
            else:
                data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        outcome = _compare(bytes(data), DeidOptions())
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("same", 0) > 100, outcomes


@pytest.mark.parametrize("junk", [b" ", b"\x1c"])
def test_a_sop_class_uid_with_junk_is_refused_by_both_paths(junk: bytes) -> None:
    # Found by fuzzing: pydicom strips the junk when the engine reads the UID for the file meta.
    # What is left (".2.840...") is no registered SOP class: both paths refuse it (issue 7).
    data = bytearray(_corpus()["ct"])
    at = data.index(b"\x08\x00\x16\x00UI", 132) + 8  # SOPClassUID in the dataset, not the file meta
    data[at : at + 1] = junk
    assert _compare(bytes(data), DeidOptions()) == "both refuse"


def _text_sr(**elements) -> bytes:
    """A small Basic Text SR (no pixels) with the given extra elements: DataElement or keyword=value."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.77"
    ds.PatientID = "MRN-SR-1"
    for keyword, value in elements.items():
        if isinstance(value, pydicom.DataElement):
            ds.add(value)
        else:
            setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_an_explicit_un_of_a_known_tag_is_refused_by_both_paths_whatever_its_length() -> None:
    # pydicom reads a UN of a known tag as its dictionary VR only below 64 KiB, and keeps it as
    # opaque bytes above: either way the type it came with hides what it holds (issue 7).
    long_un = _text_sr(EvaluatorName=pydicom.DataElement(0x00142006, "UN", b"A" * 0x10000))
    # pydicom writes a short UN of a known tag with its dictionary VR: rewrite that header as UN.
    short_un = _text_sr(EvaluatorName="DOE^JOHN").replace(
        b"\x14\x00\x06\x20PN\x08\x00", b"\x14\x00\x06\x20UN\x00\x00\x08\x00\x00\x00"
    )
    for data in (long_un, short_un):
        with pytest.raises(Fallback):
            parse_part10(data)
        assert _compare(data, DeidOptions()) == "both refuse"
    assert _compare(_text_sr(EvaluatorName="DOE^JOHN"), DeidOptions()) == "same"


@pytest.mark.parametrize("extra", [{"Rows": 64}, {"Rows": None, "Columns": None}], ids=["rows-only", "empty-size"])
def test_a_device_without_a_usable_size_is_no_template_device(tmp_path, extra) -> None:
    src, dst = tmp_path / "sr.dcm", tmp_path / "out.dcm"
    src.write_bytes(_text_sr(Manufacturer="ACME", **extra))
    outcome = _process(src, dst, template_for=lambda device: pytest.fail("no device should be looked up"))
    # An outcome, not an exception: with Rows and Columns both present (empty), the file claims to
    # be an image without pixel data and is rejected for that; with Rows alone it is released.
    assert (outcome.status, outcome.device) == (("rejected", None) if "Columns" in extra else ("released", None))


def _damaged(name: str, find: bytes, replace_with: bytes, offset: int = 0) -> bytes:
    data = _corpus()[name]
    at = data.index(find, 132) + offset
    return data[:at] + replace_with + data[at + len(replace_with) :]


@pytest.mark.parametrize(
    "damaged",
    [
        # Found by fuzzing: each of these made the pydicom path raise instead of rejecting.
        lambda: _damaged("ct", b"\x08\x00\x80\x00LO", b"\x4c\x99", offset=4),  # an unknown VR
        lambda: _damaged("us_j2k", b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff", b"\x00\x00\x00\x00", offset=12),
    ],
    ids=["unknown-vr", "damaged-fragments"],
)
def test_damaged_files_are_rejected_with_a_reason_not_an_exception(tmp_path, damaged) -> None:
    src, dst = tmp_path / "in.dcm", tmp_path / "out.dcm"
    src.write_bytes(damaged())
    outcome = _process(src, dst)
    assert outcome.status == "rejected" and outcome.reason and not dst.exists()
