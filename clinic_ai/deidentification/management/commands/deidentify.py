"""De-identify every file under INPUT_DIR into OUTPUT_DIR, as a browser upload would.

    python manage.py deidentify INPUT_DIR OUTPUT_DIR --report REPORT.json [--project ID_OR_NAME] [--no-ocr]

Each file is validated by content (the upload's checks), then de-identified by the same code as
the upload pipeline. Released files are written under names made from their new UIDs or content
hashes, never from the input names. Held files (burned-in text suspected) are not written.
Outputs are made (and flushed to disk) in a work folder inside OUTPUT_DIR and renamed into place.
REPORT.json: {"files": [{"input", "status", "output", "reason"}]}, every input exactly once.
"""

import hashlib
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import pydicom
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from clinic_ai.accounts.models import Project
from clinic_ai.deidentification import services
from clinic_ai.studies import imaging


class Command(BaseCommand):
    help = "De-identify every file under INPUT_DIR into OUTPUT_DIR and write a JSON report."

    def add_arguments(self, parser):
        parser.add_argument("input_dir")
        parser.add_argument("output_dir")
        parser.add_argument("--report", required=True, help="Path of the JSON report to write")
        parser.add_argument("--project", help="Use this project's options, keys and mask templates (id or name)")
        parser.add_argument("--no-ocr", action="store_true", help="Do not look for burned-in text in the pixels")

    def handle(self, *args, input_dir, output_dir, report, project=None, no_ocr=False, **options):
        source_root = Path(input_dir).resolve()
        target_root = Path(output_dir).resolve()
        if not source_root.is_dir():
            raise CommandError("INPUT_DIR is not a directory")
        if target_root == source_root or source_root in target_root.parents:
            raise CommandError("OUTPUT_DIR must not be inside INPUT_DIR")
        target_root.mkdir(parents=True, exist_ok=True)
        context = self._context(project, ocr=not no_ocr)
        rows = []
        # The work folder is inside OUTPUT_DIR: a released file is renamed into place, never copied.
        with tempfile.TemporaryDirectory(prefix=".deid-work-", dir=target_root) as scratch:
            for path in sorted(p for p in source_root.rglob("*") if p.is_file() and not p.is_symlink()):
                rows.append(self._one(path, source_root, target_root, Path(scratch), context))
        Path(report).write_text(json.dumps({"files": rows}, indent=2))
        counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("released", "held", "rejected")}
        self.stdout.write(
            f"{len(rows)} files: {counts['released']} released, {counts['held']} held, {counts['rejected']} rejected"
        )

    def _context(self, project, *, ocr: bool):
        if not project:
            return services.context_standalone(ocr=ocr)
        try:
            found = Project.objects.filter(pk=project).first()
        except (ValueError, ValidationError):
            found = None
        found = found or Project.objects.filter(name=project).first()
        if found is None:
            raise CommandError("No such project")
        context = services.context_for_project(found)
        if not ocr:
            context = replace(context, detector=None)
        return context

    def _one(self, path: Path, source_root: Path, target_root: Path, scratch: Path, context) -> dict:
        row = {"input": str(path.relative_to(source_root)), "status": "rejected", "output": None, "reason": ""}
        try:
            kind = imaging.detect_kind(path)
            if kind == "zip":
                raise imaging.RejectedFile("Zip archives are unpacked by browser uploads only; unpack it first.")
            if kind == "dicom":
                imaging.inspect_dicom(path, max_pixels=settings.IMAGE_MAX_PIXELS)
            else:
                imaging.inspect_raster(path, max_pixels=settings.IMAGE_MAX_PIXELS)
        except imaging.RejectedFile as exc:
            row["reason"] = exc.reason
            return row
        work = scratch / f"{hashlib.sha256(str(path).encode()).hexdigest()}.{kind}"
        outcome = services.deidentify_path(path, work, kind=kind, context=context)
        row["status"], row["reason"] = outcome.status, outcome.reason
        if outcome.status == "released":
            if kind == "dicom":
                name = str(pydicom.dcmread(work, stop_before_pixels=True).SOPInstanceUID) + ".dcm"
            else:
                name = hashlib.sha256(work.read_bytes()).hexdigest()[:40] + (".png" if kind == "png" else ".jpg")
            os.replace(work, target_root / name)
            row["output"] = name
        work.unlink(missing_ok=True)
        return row
