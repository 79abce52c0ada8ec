"""Hostile originals (issue 7's classes 1-6, built byte by byte, random identifiers each run)
through the real DICOM step: nothing planted ever leaves in a released file."""

from __future__ import annotations

import io
import random
import string
import struct
import warnings

import pydicom
import pytest

from clinic_ai.deid.options import DeidOptions
from clinic_ai.deid.process import process_dicom
from tests.deidentification.corpus import PATIENT_SECRET, PROJECT_KEY, UID_SECRET

from . import build as b

RNG = random.Random()


def _word(n: int = 8) -> str:
    return RNG.choice(string.ascii_uppercase) + "".join(RNG.choices(string.ascii_lowercase, k=n - 1))


class Plants:
    def __init__(self) -> None:
        self.family, self.given = _word(), _word()
        self.name = f"{self.family}^{self.given}"
        self.patient_id = "MRN" + "".join(RNG.choices(string.digits, k=8))
        self.uid = "1.2.826.0.1.3680043." + ".".join(str(RNG.randint(1, 99999)) for _ in range(4))
        self.birth_date = f"19{RNG.randint(30, 99)}0{RNG.randint(1, 9)}1{RNG.randint(0, 9)}"

    def values(self) -> list[str]:
        return [self.family, self.given, self.patient_id, self.uid, self.birth_date]


def _base(p: Plants) -> dict:
    elements = b.original_elements()
    elements[0x00100010] = ("PN", p.name)
    elements[0x00100020] = ("LO", p.patient_id)
    elements[0x00100030] = ("DA", p.birth_date)
    elements[0x00080018] = ("UI", p.uid)
    return elements


def _explicit(elements: dict) -> bytes:
    return b.part10(elements)


def two_readings(p: Plants) -> bytes:
    # Implicit VR: the first element's length bytes spell "OB"; read as explicit VR, its "value"
    # is a second header holding the real name, ID and UID.
    hidden = b.encode({0x00100010: ("PN", p.name), 0x00100020: ("LO", p.patient_id), 0x00080018: ("UI", p.uid)})
    value = struct.pack("<L", len(hidden)) + hidden
    value += b" " * (0x424F - len(value))
    first = struct.pack("<HH", 0x0008, 0x0005) + b"OB\x00\x00" + value
    elements = _base(p)
    elements[0x00100010] = ("PN", "Other^Person")
    elements[0x00100020] = ("LO", "PID-0")
    elements[0x00080018] = ("UI", "1.2.3.4.5.6.7")
    rest = b.encode({k: v for k, v in elements.items() if k > 0x00080005}, implicit=True)
    return b.part10(elements, transfer_syntax=b.IMPLICIT_LE, body=first + rest)


def undefined_length_body_part(p: Plants) -> bytes:
    elements = _base(p)
    elements[0x00100010] = ("PN", "Other^Person")
    head = b.encode({k: v for k, v in elements.items() if k < 0x00180015}, implicit=True)
    item = b.encode({0x00100010: ("PN", p.name)}, implicit=True)
    hidden = (
        struct.pack("<HHL", 0x0018, 0x0015, b.UNDEFINED)
        + struct.pack("<HHL", 0xFFFE, 0xE000, len(item))
        + item
        + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    )
    # a defect that sends the file down the pydicom path: a stray element out of order
    tail = b.encode({k: v for k, v in elements.items() if k > 0x00180015}, implicit=True)
    stray = b.encode({0x00080070: ("LO", "ACME")}, implicit=True)
    return b.part10(elements, transfer_syntax=b.IMPLICIT_LE, body=head + hidden + stray + tail)


def repeating_groups_out_of_range(p: Plants) -> bytes:
    elements = _base(p)
    elements[0x60204000] = ("LT", f"{p.name} {p.patient_id}")
    elements[0x50202500] = ("LT", p.name)
    return _explicit(elements)


def long_un_person_name(p: Plants) -> bytes:
    elements = _base(p)
    elements[0x00142006] = ("UN", (p.name + " ").encode() * 1 + b" " * 70000)  # EvaluatorName, 64 KiB+
    return _explicit(elements)


def wrong_vr_person_name(p: Plants) -> bytes:
    elements = _base(p)
    elements[0x00142006] = ("LO", p.name)  # EvaluatorName is a PN
    return _explicit(elements)


def sequence_sent_as_ob(p: Plants) -> bytes:
    elements = _base(p)
    item = b.encode({0x00100010: ("PN", p.name)})
    elements[0x00082218] = ("OB", struct.pack("<HHL", 0xFFFE, 0xE000, len(item)) + item)
    return _explicit(elements)


def text_in_structural_values(p: Plants) -> bytes:
    elements = _base(p)
    elements[0x0020000D] = ("UI", f"1.2.840.10008.{p.family}")
    elements[0x00080030] = ("TM", p.given)
    elements[0x00101010] = ("AS", p.family[:4])
    elements[0x00081140] = ("SQ", [{0x00081150: ("UI", p.name), 0x00081155: ("UI", "1.2.3.4")}])
    return _explicit(elements)


def text_in_sop_class(p: Plants) -> bytes:
    elements = _base(p)
    elements[0x00080016] = ("UI", f"{p.family} {p.patient_id}")
    return b.part10(elements)


CASES = [
    two_readings,
    undefined_length_body_part,
    repeating_groups_out_of_range,
    long_un_person_name,
    wrong_vr_person_name,
    sequence_sent_as_ob,
    text_in_structural_values,
    text_in_sop_class,
]


def _everything_readable(data: bytes) -> str:
    texts = [data.decode("latin-1")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        for elem in ds.iterall():
            if elem.tag != 0x7FE00010:
                value = elem.value
                texts.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return "\n".join(texts).lower()


@pytest.mark.parametrize("options", [DeidOptions(), DeidOptions(clean_descriptors=True)], ids=["default", "clean"])
@pytest.mark.parametrize("make", CASES, ids=[case.__name__ for case in CASES])
def test_a_hostile_original_is_never_released_with_what_was_planted(tmp_path, make, options):
    plants = Plants()
    src, dst = tmp_path / "in.dcm", tmp_path / "out.dcm"
    src.write_bytes(make(plants))
    outcome = process_dicom(
        src,
        dst,
        options=options,
        uid_secret=UID_SECRET,
        patient_secret=PATIENT_SECRET,
        project_key=PROJECT_KEY,
        template_for=lambda device: None,
        detector=None,
    )
    assert outcome.status in ("released", "held", "rejected")
    if outcome.status == "rejected":
        assert outcome.reason and not dst.exists()
        for value in plants.values():
            assert value.lower() not in outcome.reason.lower()
        return
    text = _everything_readable(dst.read_bytes())
    for value in plants.values():
        assert value.lower() not in text, (make.__name__, outcome.status)


@pytest.mark.parametrize(
    "blob",
    [
        b"Tech: Doe^Jane ",  # a label before the name
        b"Ref: -Doe^Jane",
        b"\x00\x2cDoe^Jane",  # a length byte (",") just before it
        b"^Doe^Jane",  # a stray caret first
        b"Doe^Jane",
    ],
)
def test_the_raw_scan_finds_a_name_whatever_comes_before_it(blob):
    """The gate's raw scan of the original (a value it cannot place, e.g. inside an opaque private
    element) must still yield the name: otherwise a de-identifier that copied it would not be caught."""
    from clinic_ai.releasegate.harvest import harvest

    needles = harvest(b"\x01\x02garbage\x00" + blob + b"\x00\xff")
    assert "Doe^Jane" in needles.names
    assert {"Doe", "Jane"} <= needles.words
