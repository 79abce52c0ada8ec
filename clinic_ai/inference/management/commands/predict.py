"""`manage.py predict [--ensemble SLUG] [--gradcam] [--heatmap-dir DIR] [--class NAME] PATH...`

The worker's code path (same display pixels, preprocessing, ensemble and Grad-CAM) over files given
on the command line; one JSON object per line on stdout (the contract in PRODUCT.md). A file that
cannot be read gets a line with "error" and the exit status is 1.
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from PIL import Image

from clinic_ai.inference import worker
from clinic_ai.inference.models import Ensemble
from clinic_ai.studies import imaging


def default_ensemble() -> Ensemble:
    active = list(Ensemble.objects.filter(is_active=True).order_by("slug"))
    if len(active) == 1:
        return active[0]
    preferred = [e for e in active if e.slug == settings.DEFAULT_ENSEMBLE]
    if preferred:
        return preferred[0]
    if not active:
        raise CommandError("No active ensemble: run `manage.py demo_setup` or activate one.")
    raise CommandError("Several active ensembles; choose one with --ensemble: " + ", ".join(e.slug for e in active))


class Command(BaseCommand):
    help = "Run an ensemble (and Grad-CAM) over image files; one JSON line per file."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--ensemble", help="Ensemble slug (default: the active one)")
        parser.add_argument("--gradcam", action="store_true", help="Also write heatmaps (8-bit PNG, image size)")
        parser.add_argument("--heatmap-dir", help="Where heatmaps go (default: a new temporary folder)")
        parser.add_argument(
            "--class", dest="target_class", help="Explain this class in the heatmaps (default: the ensemble's call)"
        )

    def handle(self, *args, **options):
        if options["ensemble"]:
            ensemble = Ensemble.objects.filter(slug=options["ensemble"]).first()
            if ensemble is None:
                raise CommandError(f"No ensemble with the slug {options['ensemble']!r}.")
        else:
            ensemble = default_ensemble()
        try:
            runner = worker.runner_for(ensemble)
        except worker.EnsembleUnavailable as exc:
            raise CommandError(exc.reason) from None
        if options["target_class"] and options["target_class"] not in runner.class_names:
            raise CommandError("Unknown class; the ensemble's classes are: " + ", ".join(runner.class_names))
        heatmap_dir = None
        if options["gradcam"]:
            heatmap_dir = Path(options["heatmap_dir"] or tempfile.mkdtemp(prefix="clinic_ai_heatmaps_"))
            heatmap_dir.mkdir(parents=True, exist_ok=True)
            if not options["heatmap_dir"]:
                self.stderr.write(f"Heatmaps: {heatmap_dir}")
        failed = False
        for index, name in enumerate(options["paths"]):
            line = {"path": name}
            try:
                kind = imaging.detect_kind(name)
                if kind == "zip":
                    raise imaging.RejectedFile("Zip files are not images; unpack them first.")
                pixels = imaging.display_pixels(name, kind)
            except imaging.RejectedFile as exc:
                line["error"], failed = exc.reason, True
            except OSError as exc:
                line["error"], failed = f"The file could not be read ({exc.strerror or type(exc).__name__}).", True
            else:
                result = runner.predict_pixels(
                    [pixels], gradcam=options["gradcam"], target_class=options["target_class"]
                )[0]
                line.update(_line(result))
                if heatmap_dir is not None:
                    line["heatmaps"] = _write_heatmaps(result, heatmap_dir, f"{index:04d}-{Path(name).stem}")
            self.stdout.write(json.dumps(line))
        if failed:
            sys.exit(1)


def _line(result) -> dict:
    target = result.target_class
    member_std = result.uncertainty.get("member_std", 0.0)
    return {
        "label": result.labels[0] if len(result.labels) == 1 else result.labels,
        "probabilities": result.probabilities,
        "uncertainty": member_std,
        "uncertainty_details": result.uncertainty,
        "target_class": target,
        "members": {m["name"]: m["probabilities"] for m in result.members},
    }


def _write_heatmaps(result, folder: Path, stem: str) -> dict:
    maps = {"ensemble": result.heatmap, **result.member_heatmaps}
    written = {}
    for name, heat in maps.items():
        values = np.nan_to_num(np.asarray(heat, dtype=np.float64))
        top = values.max()
        grey = np.zeros(values.shape, dtype=np.uint8) if top <= 0 else np.round(255 * values / top).astype(np.uint8)
        path = folder / f"{stem}-{name}.png"
        Image.fromarray(grey, mode="L").save(path)
        written[name] = str(path)
    return written
