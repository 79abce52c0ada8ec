"""The release gate, rule by rule: for each rule a file it must stop and one it must pass.

Files are built byte by byte (tests/releasegate/build.py); the gate is the real one.
"""

from __future__ import annotations

import struct

import pytest

from clinic_ai.releasegate import GateOptions, GateRefused, check_dicom_release

from . import build as b

OPTIONS = GateOptions(
    retain_modified_dates=True, retain_patient_characteristics=True, clean_descriptors=False, clean_pixel_data=False
)


def refusal(output: bytes, *, original: bytes | None = None, options: GateOptions = OPTIONS) -> GateRefused:
    with pytest.raises(GateRefused) as caught:
        check_dicom_release(
            b.original() if original is None else original, output, options=options, expected_pseudonym=b.PSEUDONYM
        )
    return caught.value


def passes(output: bytes, *, original: bytes | None = None, options: GateOptions = OPTIONS) -> None:
    check_dicom_release(
        b.original() if original is None else original, output, options=options, expected_pseudonym=b.PSEUDONYM
    )


def assert_no_value_quoted(refused: GateRefused, *values: str) -> None:
    for value in (b.ORIGINAL_NAME, b.ORIGINAL_ID, b.ORIGINAL_STUDY_UID, b.ORIGINAL_INSTANCE_UID, *values):
        assert value not in refused.reason
        assert value not in str(refused)


# --------------------------------------------------------------------------- rule 1: structure
@pytest.mark.parametrize("syntax", [b.EXPLICIT_LE, b.IMPLICIT_LE, b.EXPLICIT_BE])
def test_a_correct_output_passes_in_each_transfer_syntax(syntax):
    passes(b.released(transfer_syntax=syntax), original=b.original(syntax))


def test_an_implicit_file_whose_first_length_spells_a_vr_is_refused_as_two_readings():
    # The length bytes of the first element are "OB\0\0": pydicom would switch to explicit VR.
    elements = b.released_elements()
    body = b.encode(elements, implicit=True)
    first = struct.pack("<HHL", 0x0008, 0x0005, 0x0000424F) + b"X" * 0x424F
    refused = refusal(b.part10(elements, transfer_syntax=b.IMPLICIT_LE, body=first + body))
    assert refused.rule == "structure"
    assert "two readings" in refused.reason


def test_explicit_vr_bytes_that_are_not_a_vr_are_refused():
    body = b.encode(b.released_elements())
    bad = body.replace(b"\x08\x00\x60\x00CS", b"\x08\x00\x60\x00\x02\x00", 1)
    assert bad != body
    assert refusal(b.part10(b.released_elements(), body=bad)).rule == "structure"


def test_an_undefined_length_on_a_non_sequence_is_refused():
    elements = b.released_elements()
    body = b.encode({k: v for k, v in elements.items() if k < 0x00180015})
    hidden = b.encode({0x00100010: ("PN", b.ORIGINAL_NAME)})
    body += (
        b.header(0x00180015, "UN", b.UNDEFINED)
        + struct.pack("<HHL", 0xFFFE, 0xE000, len(hidden))
        + hidden
        + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    )
    body += b.encode({k: v for k, v in elements.items() if k > 0x00180015})
    refused = refusal(b.part10(elements, body=body))
    assert refused.rule == "structure"
    assert "undefined length" in refused.reason
    assert_no_value_quoted(refused)


def test_elements_out_of_order_are_refused():
    elements = b.released_elements()
    shuffled = {0x00080060: elements[0x00080060], **{k: v for k, v in elements.items() if k != 0x00080060}}
    assert refusal(b.part10(shuffled, sort=False)).rule == "structure"


def test_trailing_bytes_are_refused():
    assert refusal(b.released() + b"\x00\x00\x00\x00").rule == "structure"


def test_a_vr_other_than_the_dictionarys_is_refused():
    # EvaluatorName is a PN: sent as LO, a name would dodge every PN rule.
    refused = refusal(b.released({0x00142006: ("LO", "Quinn^Michaela")}))
    assert refused.rule == "structure"
    assert "EvaluatorName" in refused.reason


def test_an_odd_length_and_a_numeric_length_not_a_multiple_are_refused():
    body = b.encode(b.released_elements()).replace(b"\x28\x00\x10\x00US\x02\x00", b"\x28\x00\x10\x00US\x03\x00", 1)
    assert refusal(b.part10(b.released_elements(), body=body)).rule == "structure"
    assert refusal(b.released({0x00189087: ("FD", b"\x00\x00\x00\x00")})).rule == "structure"


def test_a_wrong_file_meta_group_length_is_refused():
    data = bytearray(b.released())
    struct.pack_into("<L", data, 140, struct.unpack_from("<L", data, 140)[0] - 2)
    assert refusal(bytes(data)).rule == "structure"


def test_a_deflated_data_set_cannot_be_vouched_for():
    data = b.meta(b.DEFLATED, b.CT_STORAGE, "2.25.111111111111111111111111111111111") + b"\x00" * 10
    refused = refusal(data)
    assert refused.rule == "structure"
    assert "cannot vouch" in refused.reason


# --------------------------------------------------------------------------- rule 2: two readings
def test_a_value_pydicom_reads_as_a_sequence_is_refused_as_two_readings():
    # A UN value holding an item: the gate's reader sees bytes, pydicom (which turns a UN with a
    # known SQ tag back into a sequence) sees a sequence with a person's name inside.
    item = b.encode({0x00100010: ("PN", b.ORIGINAL_NAME)})
    value = struct.pack("<HHL", 0xFFFE, 0xE000, len(item)) + item
    refused = refusal(b.released({0x00082218: ("UN", value)}))
    assert refused.rule == "two-readings"
    assert_no_value_quoted(refused)


def test_a_file_both_readers_read_alike_passes_rule_two():
    passes(b.released({0x00082218: ("SQ", [{0x00080100: ("SH", "T-D4000"), 0x00080102: ("SH", "SRT")}])}))


# --------------------------------------------------------------------------- rule 3: allow-list
@pytest.mark.parametrize(
    ("tag", "value", "words"),
    [
        (0x00090010, ("LO", "ACME PHI CREATOR"), "private"),
        (0x00080000, ("UL", struct.pack("<L", 10)), "group length"),
        (0x60003000, ("OW", b"\x00\x00"), "overlays"),
        (0x50000005, ("US", b"\x00\x00"), "curves"),
        (0x60204000, ("LT", "Doe Jane"), "overlays"),  # outside the overlay range: still refused
        (0x0018FFF0, ("LT", "Doe Jane"), "unknown"),
        (0x00080070, ("UN", b"ACME"), "unknown VR"),
        (0x00101040, ("LO", "42 Wallaby Way"), "removes"),
        (0x00080050, ("SH", "ACC1"), "empty or a dummy"),
        (0x0020000D, ("UI", "1.2.3.4.5"), "not replaced"),
        (0x00100010, ("PN", "ANON-ZZZZZZZZZZZZZZZZZZZZ"), "pseudonym"),
        (0x00142006, ("PN", "Ratched^Mildred"), "person names"),  # EvaluatorName, not in the profile
    ],
)
def test_elements_outside_the_allow_list_are_refused(tag, value, words):
    refused = refusal(b.released({tag: value}))
    assert refused.rule == "allow-list"
    assert words in refused.reason
    assert_no_value_quoted(refused, "ACME PHI CREATOR", "Doe Jane", "Ratched", "42 Wallaby")


def test_what_the_options_keep_passes_and_is_refused_without_them():
    no_options = GateOptions(
        retain_modified_dates=False,
        retain_patient_characteristics=False,
        clean_descriptors=False,
        clean_pixel_data=False,
    )
    markers = {
        0x00120064: ("SQ", [b.code("113100", "Basic Application Confidentiality Profile")]),
        0x00280303: ("CS", "REMOVED"),
    }
    passes(b.released({**markers, 0x00080020: None, 0x00080030: ("TM", ""), 0x00101010: None}), options=no_options)
    refused = refusal(b.released(markers), options=no_options)  # StudyDate, StudyTime, PatientAge kept
    assert refused.rule == "allow-list"


def test_markers_must_match_the_options_in_force():
    assert refusal(b.released({0x00120062: None})).rule == "markers"
    one_code = {0x00120064: ("SQ", [b.code("113100", "Basic Application Confidentiality Profile")])}
    assert refusal(b.released(one_code)).rule == "markers"
    assert refusal(b.released({0x00280303: ("CS", "UNMODIFIED")})).rule == "markers"
    pixels = GateOptions(
        retain_modified_dates=True, retain_patient_characteristics=True, clean_descriptors=False, clean_pixel_data=True
    )
    assert refusal(b.released(), options=pixels).rule == "markers"  # 113101 and BurnedInAnnotation missing


def test_the_file_meta_must_name_our_implementation_and_match_the_data_set():
    data = b.released().replace(b.OUR_IMPLEMENTATION.encode(), b"2.25.238617640568329922866947457739796975675")
    assert refusal(data).rule == "allow-list"


# --------------------------------------------------------------------------- rule 4: value grammar
@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (0x00080030, ("TM", "Doe^Jane")),  # StudyTime holding text
        (0x00101010, ("AS", "Jane")),  # PatientAge holding text
        (0x00180015, ("CS", "doe jane")),  # a code string in lower case
        (0x00080016, ("UI", "Jane Doe MRN55501234")),  # SOPClassUID holding text
        (0x00080016, ("UI", "1.2.840.10008.5.1.4.1.1.999")),  # not a known storage class
        (0x00081150, ("UI", "1.2.840.10008.99.1")),  # an unregistered UID under the DICOM root
        (0x00189087, ("FD", struct.pack("<d", float("nan")))),  # DiffusionBValue not finite
        (0x00080070, ("LO", b"Mari\xe9 ")),  # not ASCII, and no character set declared
        (0x00080020, ("DA", "20240230")),  # no such day
    ],
)
def test_values_outside_their_vr_grammar_are_refused(tag, value):
    changes = {tag: value}
    if tag == 0x00081150:
        changes = {0x00081140: ("SQ", [{0x00081150: value, 0x00081155: ("UI", "2.25.3")}])}
    if tag == 0x00080016:  # the file meta copy follows (another rule compares the two)
        data = b.part10({**b.released_elements(), **changes})
    else:
        data = b.released(changes)
    refused = refusal(data)
    assert refused.rule == "value-grammar", refused.reason
    assert_no_value_quoted(refused, "Doe^Jane", "Jane")


def test_values_in_their_vr_grammar_pass():
    passes(
        b.released(
            {
                0x00080005: ("CS", "ISO_IR 100"),
                0x00080070: ("LO", b"Mari\xe9 "),
                0x00080030: ("TM", "093015.25"),
                0x00180015: ("CS", "HEAD"),
                0x00189087: ("FD", struct.pack("<d", 1000.0)),
                0x00081140: ("SQ", [{0x00081150: ("UI", b.CT_STORAGE), 0x00081155: ("UI", "2.25.3")}]),
            }
        )
    )


# --------------------------------------------------------------------------- rule 5: identifying values
@pytest.mark.parametrize(
    ("planted", "kind"),
    [
        (b.ORIGINAL_INSTANCE_UID, "UID"),
        ("seen 2024-03-11", "date"),
        ("Doe^Jane^Quincy", "person name"),
        ("jane", "name or identifier"),
        ("ref MRN55501234", "name or identifier"),
    ],
)
def test_an_identifying_value_of_the_original_in_the_output_is_refused(planted, kind):
    refused = refusal(b.released({0x00080070: ("LO", planted)}))
    assert refused.rule == "identifying-value"
    assert kind in refused.reason
    assert_no_value_quoted(refused, planted)


def test_an_identifying_value_in_an_opaque_value_of_the_output_is_refused():
    # A kept binary value (a palette's lookup table data) carrying the accession number's bytes.
    refused = refusal(b.released({0x00281201: ("OW", b"\x00ACC98765432")}))
    assert refused.rule == "identifying-value"


def test_a_name_hidden_in_the_original_is_found_by_the_gates_own_reading():
    # The original hides a second name inside an undefined-length BodyPartExamined (Implicit VR):
    # the gate's lenient reader steps inside, so that name leaking is caught too.
    elements = b.original_elements()
    body = b.encode({k: v for k, v in elements.items() if k < 0x00180015}, implicit=True)
    hidden = b.encode({0x00100010: ("PN", "Hidden^Person")}, implicit=True)
    body += (
        struct.pack("<HHL", 0x0018, 0x0015, b.UNDEFINED)
        + struct.pack("<HHL", 0xFFFE, 0xE000, b.UNDEFINED)
        + hidden
        + struct.pack("<HHLHHL", 0xFFFE, 0xE00D, 0, 0xFFFE, 0xE0DD, 0)
    )
    body += b.encode({k: v for k, v in elements.items() if k > 0x00180015}, implicit=True)
    original = b.part10(elements, transfer_syntax=b.IMPLICIT_LE, body=body)
    refused = refusal(b.released({0x00080070: ("LO", "by Hidden")}), original=original)
    assert refused.rule == "identifying-value"
    passes(b.released(), original=original)


def test_a_correct_output_passes_rule_five():
    passes(b.released())


# --------------------------------------------------------------------------- failing closed
def test_anything_the_gate_cannot_read_is_a_refusal():
    assert refusal(b"not a dicom file at all").rule == "structure"
    with pytest.raises(GateRefused) as caught:
        check_dicom_release(b.original(), b.released(), options=None, expected_pseudonym=b.PSEUDONYM)  # type: ignore[arg-type]
    assert caught.value.rule == "unreadable"
    assert caught.value.reason == "The release check could not read the file."
