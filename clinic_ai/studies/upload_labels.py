"""Labels chosen at upload: one for the whole upload, from class folders, or from a CSV.

They are worked out from the browser's relative path (or a zip member's path) while that name is
still known: names are erased UPLOAD_NAME_RETENTION_HOURS after the upload. Everything here reads
names and text and returns labels or line numbers; no message quotes a name or a cell, as those may
name a patient.
"""

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field

from clinic_ai.accounts.models import Project
from clinic_ai.labelling.models import UNGRADABLE
from clinic_ai.labelling.services import LabelRefused, label_values_clean

# Words that mark the first row of a CSV as a header rather than a file and its label.
NAME_HEADERS = {"file", "filename", "file name", "file_name", "name", "path", "relative path", "image", "images"}
LABEL_HEADERS = {"label", "labels", "class", "classes", "category", "diagnosis", "finding", "findings", "value"}
# A multi-label row lists its classes in one cell: "effusion;nodule" or "effusion|nodule".
VALUE_SEPARATORS = (";", "|")
MAX_BAD_ROWS_REPORTED = 20
MAX_NAME_LENGTH = 1024


class LabelCsvRefused(Exception):
    """The CSV as a whole cannot be used; `reason` is for the uploader (it quotes nothing from the file)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def path_parts(name: str) -> list[str]:
    """The folders and file name of a relative path as browsers and zips write it ("a/b\\c.dcm")."""
    return [part for part in name.replace("\\", "/").split("/") if part.strip() and part.strip() != "."]


def _class_lookup(project: Project) -> dict[str, str]:
    """Class names (and "ungradable") by their case-folded form: `Normal/` is the class `normal`."""
    return {name.strip().casefold(): name for name in [*project.class_names, UNGRADABLE]}


def folder_label(name: str, project: Project) -> list[str] | None:
    """The nearest enclosing folder whose name is a class wins: `normal/pneumonia/x.png` is pneumonia."""
    classes = _class_lookup(project)
    for folder in reversed(path_parts(name)[:-1]):
        found = classes.get(folder.strip().casefold())
        if found is not None:
            return [found]
    return None


def csv_candidates(name: str) -> list[str]:
    """The keys a file is looked up by in the CSV: its whole relative path first, then shorter tails
    of it, down to the bare file name (a CSV of bare names labels the files of a folder or a zip)."""
    parts = [part.casefold() for part in path_parts(name)]
    return ["/".join(parts[start:]) for start in range(len(parts))]


def name_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _csv_key(name: str) -> str:
    return "/".join(part.casefold() for part in path_parts(name))


def _cell_values(cell: str, project: Project) -> list[str]:
    classes = _class_lookup(project)
    raw = [cell]
    for separator in VALUE_SEPARATORS:
        raw = [piece for chunk in raw for piece in chunk.split(separator)]
    values = [classes.get(piece.strip().casefold(), piece.strip()) for piece in raw if piece.strip()]
    return label_values_clean(project=project, values=values)


@dataclass
class LabelCsv:
    mapping: dict = field(default_factory=dict)  # normalised name -> label values
    rows: int = 0  # data rows read (not the header, not blank lines)
    bad_rows: list = field(default_factory=list)  # [{"line": n, "reason": "..."}], the first few
    bad_count: int = 0

    def report(self) -> dict:
        return {
            "rows": self.rows,
            "labelled": len(self.mapping),
            "bad_rows": self.bad_rows,
            "bad_count": self.bad_count,
        }

    def _bad(self, line: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad_rows) < MAX_BAD_ROWS_REPORTED:
            self.bad_rows.append({"line": line, "reason": reason})


def _is_header(cells: list[str]) -> bool:
    name, label = (cells + ["", ""])[:2]
    return name.strip().casefold() in NAME_HEADERS or label.strip().casefold() in LABEL_HEADERS


def _text(data: bytes) -> str:
    if b"\x00" in data:
        # UTF-16 text, a spreadsheet saved as .xlsx, an image: none of them is a CSV we can read.
        raise LabelCsvRefused(
            "The labels file is not a CSV (it holds binary data). Save it as “CSV UTF-8” and choose it again."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LabelCsvRefused(
            "The labels file is not UTF-8 text. Save it as “CSV UTF-8 (comma delimited)” and choose it again."
        ) from None


def _dialect(text: str):
    first = next((line for line in text.splitlines() if line.strip()), "")
    for delimiter in (",", ";", "\t"):
        if delimiter in first:
            return delimiter
    raise LabelCsvRefused(
        "The labels file is not a CSV of two columns (a file name, then its label), separated by commas."
    )


def parse_label_csv(data: bytes, *, project: Project) -> LabelCsv:
    """Read a CSV of file name → label. Bad rows are reported by line number and left out; a file
    that is not a CSV, or has no usable row, is refused as a whole."""
    text = _text(data)
    if not text.strip():
        raise LabelCsvRefused("The labels file is empty.")
    delimiter = _dialect(text)
    result = LabelCsv()
    first_line = {}  # normalised name -> the line that named it first
    header_seen = False
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for cells in reader:
            line = reader.line_num
            cells = [cell.strip() for cell in cells]
            while cells and not cells[-1]:
                cells.pop()
            if not cells:
                continue
            if result.rows == 0 and not header_seen and _is_header(cells):
                header_seen = True
                continue
            result.rows += 1
            if len(cells) != 2 or not cells[0]:
                result._bad(line, "needs two columns: a file name, then its label")
                continue
            name, cell = cells
            if len(name) > MAX_NAME_LENGTH:
                result._bad(line, f"the file name is longer than {MAX_NAME_LENGTH} characters")
                continue
            key = _csv_key(name)
            if not key:
                result._bad(line, "the file name is empty")
                continue
            try:
                values = _cell_values(cell, project)
            except LabelRefused as exc:
                result._bad(line, f"{exc.reason.rstrip('.').lower()} (classes: {', '.join(project.class_names)})")
                continue
            if key in first_line:
                result._bad(line, f"names the same file as line {first_line[key]}")
                continue
            first_line[key] = line
            result.mapping[key] = values
    except csv.Error:
        raise LabelCsvRefused(
            "The labels file is not a readable CSV (a quote is not closed, or a cell is too long)."
        ) from None
    if not result.mapping:
        first = f" Line {result.bad_rows[0]['line']}: {result.bad_rows[0]['reason']}." if result.bad_rows else ""
        raise LabelCsvRefused(f"No row of the labels file gives a file name and a class of this project.{first}")
    return result


# --- The summary an uploader reads --------------------------------------------------------------


def label_text(values) -> str:
    return " + ".join(values)


def summary_text(*, mode: str, counts: Counter, unmatched: int, bad_csv_rows: int = 0, order: list[str] = ()) -> str:
    """ "12 labelled normal, 30 pneumonia, 3 names not in the CSV": counts, never names. Labels come
    in `order` (the project's classes), then any other (multi-label combinations) by name."""
    rank = {label: index for index, label in enumerate(order)}
    ordered = sorted(counts.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))
    parts = []
    for index, (label, count) in enumerate(ordered):
        parts.append(f"{count} labelled {label}" if index == 0 else f"{count} {label}")
    if not parts:
        parts.append("none labelled")
    if unmatched:
        noun, what = {
            "csv": (("name", "names"), "not in the CSV"),
            "folders": (("file", "files"), "not in a class folder"),
        }.get(mode, (("file", "files"), "without a label"))
        parts.append(f"{unmatched} {noun[unmatched != 1]} {what}")
    if bad_csv_rows:
        parts.append(f"{bad_csv_rows} {'row' if bad_csv_rows == 1 else 'rows'} of the CSV left out")
    return ", ".join(parts)
