"""Clean Descriptors Option: reduce free text to clinical vocabulary.

Rule (deliberately simple, so that it can be audited):

1. A few notations are normalised first: ``W/O`` -> ``WITHOUT``, ``W/`` ->
   ``WITH``, ``+C``/``-C`` -> ``CONTRAST``/``NONCONTRAST``.
2. The text is split into tokens of (Unicode) letters and digits; every
   separator becomes a single space.
3. A token is kept only if (case-insensitively) it is in the allow-list
   :data:`CLINICAL_VOCABULARY` (which has ``T1``, ``2D``, ``3D``...), or it is
   a measurement *with its unit attached*: at most three digits, an optional
   decimal part of at most three digits, then a unit (``5MM``, ``0.625MM``,
   ``120KV``, ``3T``). Bare numbers are dropped: pieces of dates ("11.03"),
   phone numbers or IDs must not survive.
4. The kept tokens, upper-cased, joined by single spaces, are the cleaned
   value. If nothing is kept the caller applies the Basic Profile action.

What this guarantees: the output consists only of words from a fixed,
reviewed list and short numbers. Names, addresses, free-text dates, phone
numbers and identifiers (anything with four or more digits, any word not in
the list, any single letter such as an initial) cannot pass. Residual risk:
a surname that is also a vocabulary word ("Head", "Hand", "Hart" is not in
the list but "Heart" is) survives as that word, out of context. The list is
anatomy, modality, technique and common study-description terms; extend it
only with words that cannot plausibly be names.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["CLINICAL_VOCABULARY", "clean_descriptor", "is_clean_descriptor"]

_WORDS = """
ABDOMEN ABDOMINAL ABDO ACUTE ADC ADRENAL AIR ALIGNMENT ANGIO ANGIOGRAM ANGIOGRAPHY ANKLE ANTERIOR AORTA AORTIC
AP APPENDIX ARM ARTERIAL ARTERY ARTHROGRAM ASL ATTENUATION AUTO AX AXIAL AXIALS
BASELINE BILATERAL BILIARY BLADDER BODY BOLUS BONE BONES BOWEL BRAIN BREAST BREASTS BREATH BREATHHOLD
CALCIUM CALF CARDIAC CAROTID CAROTIDS CAUDAL CEREBRAL CERVICAL CHEST CINE CIRCLE CLAVICLE COCCYX COLON COLOR
COLOUR COMPARISON CONTRAST COR CORONAL CORONALS CORONARY CRANIAL CT CTA CTV CTPA CYSTOGRAM
DELAYED DENTAL DIAGNOSTIC DIFFUSION DIGITAL DISTAL DOPPLER DORSAL DOSE DUAL DUPLEX DWI DYNAMIC
EAR ECG ECHO ELBOW ENERGY ENHANCED ENHANCEMENT EPI EQUILIBRIUM EXAM EXAMINATION EXPIRATION EXPIRATORY EXTREMITY
FACE FACIAL FAT FEMORAL FEMUR FIBULA FIESTA FINGER FINGERS FLAIR FLEXION FLOW FLUORO FLUOROSCOPY FOLLOW FOLLOWUP
FOOT FOREARM FRONTAL FS FSE FULL FUNCTIONAL
GADOLINIUM GAD GALLBLADDER GATED GRADIENT GRE GUIDED
HAND HASTE HEAD HEART HEEL HELICAL HEPATIC HIGH HIP HIPS HRCT HUMERUS
IAC IACS ILIAC IMAGE IMAGES IMAGING IN INFERIOR INSPIRATION INSPIRATORY INTERNAL INTRAVENOUS IR ISOTROPIC IV
JAW JOINT
KIDNEY KIDNEYS KNEE KNEES KUB
LARYNX LAT LATERAL LEFT LEG LIMITED LIVER LOCALIZER LOCALISER LONG LOW LOWER LT LUMBAR LUNG LUNGS
MAMMO MAMMOGRAM MAMMOGRAPHY MANDIBLE MAXILLOFACIAL MEDIAL MEDIASTINUM MINIP MIP MOCO MPR MPRAGE MR MRA MRCP MRI
MRV MSK MULTIPHASE MYELOGRAM
NASAL NECK NEURO NO NON NONCONTRAST NORMAL
OBLIQUE OBSTETRIC OF OPPOSED OPPOSED_PHASE ORAL ORBIT ORBITS OUT OVARIES OVARY
PA PANCREAS PANCREATIC PANORAMIC PARATHYROID PARTIAL PATELLA PD PEDIATRIC PELVIC PELVIS PERFUSION PERIPHERAL
PET PHASE PITUITARY PLAIN PLANNING PORTAL POST POSTERIOR PRE PRONE PROSTATE PROTOCOL PROXIMAL PULMONARY
QUANTITATIVE
RADIUS RECON RECONSTRUCTION RECTUM REFORMAT REFORMATS RENAL RESEARCH RIB RIBS RIGHT ROUTINE RT
SACRUM SAG SAGITTAL SAGITTALS SCAN SCAPULA SCOUT SCREENING SCROTAL SCROTUM SE SEQUENCE SERIES SHOULDER
SHOULDERS SINGLE SINUS SINUSES SKULL SLICE SLICES SOFT SPECT SPINAL SPINE SPIN SPIRAL SPLEEN STANDARD STERNUM
STIR STOMACH STRESS STUDY SUBTRACTION SUPERIOR SUPINE SURVEY SWI
T1 T1W T2 T2W T2STAR TENDON TESTES TESTIS THICK THIGH THIN THORACIC THORAX THROAT THUMB THYROID TIBIA TISSUE
TOE TOES TOF TOMOSYNTHESIS TOPOGRAM TRACHEA TRANSVERSE TRAUMA TRUFI TSE
ULNA ULTRASOUND UPPER URETER URETERS UROGRAM US UTERUS
VASCULAR VEIN VEINS VENOGRAM VENOUS VENTRAL VERTEBRA VERTEBRAE VIBE VIEW VIEWS VOLUME
WATER WEIGHTED WHOLE WINDOW WITH WITHOUT WO WRIST
XR XRAY
2D 3D 4D
CR DX MG NM OT RF SC XA
"""

CLINICAL_VOCABULARY: Final[frozenset[str]] = frozenset(_WORDS.split())

_NORMALISE: Final = (
    (re.compile(r"\bW\s*/\s*O\b", re.IGNORECASE), " WITHOUT "),
    (re.compile(r"\bW\s*/\s*(?=\w)", re.IGNORECASE), " WITH "),
    (re.compile(r"(?<!\w)\+\s*C\b", re.IGNORECASE), " CONTRAST "),
    (re.compile(r"(?<!\w)-\s*C\b", re.IGNORECASE), " NONCONTRAST "),
)
# Unicode-aware: "Schädel" is one (unknown) token, not "Sch" + "del".
_TOKEN_RE: Final = re.compile(r"[^\W_]+(?:\.[0-9]+[^\W_]*)?")
_MEASUREMENT_RE: Final = re.compile(r"^[0-9]{1,3}(?:\.[0-9]{1,3})?(?:MM|CM|ML|KV|KVP|MAS|MS|S|MGY|T)$", re.ASCII)


def _token_ok(token: str) -> bool:
    upper = token.upper()
    return upper in CLINICAL_VOCABULARY or bool(_MEASUREMENT_RE.match(upper))


def clean_descriptor(value: str) -> str | None:
    """The cleaned text, or ``None`` if no allowed token remains."""
    text = str(value)
    for pattern, replacement in _NORMALISE:
        text = pattern.sub(replacement, text)
    kept = [tok.upper() for tok in _TOKEN_RE.findall(text) if _token_ok(tok)]
    return " ".join(kept) if kept else None


def is_clean_descriptor(value: str) -> bool:
    """True if ``value`` is already in cleaned form (used by release validation)."""
    text = str(value).strip(" \x00")
    return not text or clean_descriptor(text) == text
