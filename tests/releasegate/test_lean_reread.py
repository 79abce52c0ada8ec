"""Rule 2's lean re-read must be pydicom's reading: the same element tree as pydicom's full conversion
(a Dataset per sequence item), on every pydicom test file and every hostile case. When it cannot
tell, it says so (`_NotLean`) and the gate converts fully: never a different answer."""

import io
import warnings
from collections import Counter

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_files

from clinic_ai.releasegate import dicom as gate
from tests.deidentification.hostile import build_cases, clean_case


def _both(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full_texts, lean_texts = [], []
        try:
            full = gate._pydicom_tree(dcmread(io.BytesIO(data)), full_texts, full_texts, frozenset(), 0, False)
        except Exception:
            return None
        ds = dcmread(io.BytesIO(data))
        try:
            lean = gate._lean_elements(gate._elements(ds), lean_texts, lean_texts, frozenset(), 0)
        except gate._NotLean:
            return "not-lean"
        except Exception:
            return "not-lean"  # (the gate falls back on any exception too)
        # Rule 5 searches the raw bytes and these decoded texts. The lean walk decodes no value the
        # full one does not (values it would have to decode send it to the full conversion).
        assert not Counter(t for t in lean_texts if t) - Counter(t for t in full_texts if t)
        return full, lean


def _readable(paths):
    out = []
    for path in paths:
        with open(path, "rb") as fh:
            data = fh.read()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dcmread(io.BytesIO(data))
        except Exception:
            continue
        out.append(data)
    return out


def test_the_lean_tree_is_pydicoms_tree_on_every_pydicom_test_file():
    files = _readable(get_testdata_files("*.dcm"))
    assert len(files) > 100
    lean_ones = 0
    for data in files:
        both = _both(data)
        if both is None or both == "not-lean":
            continue
        full, lean = both
        assert lean == full
        lean_ones += 1
    assert lean_ones > 100  # the lean reading is the common case, not the fallback


@pytest.mark.parametrize("case", [clean_case(), *build_cases()], ids=lambda c: c.name)
def test_the_lean_tree_is_pydicoms_tree_on_hostile_encodings(case):
    both = _both(case.data)
    if both in (None, "not-lean"):
        return  # pydicom cannot read it, or the gate converts fully: the same answer either way
    full, lean = both
    assert lean == full
