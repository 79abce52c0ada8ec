"""`manage.py train_demo_ensemble [--out DIR] [train_demo options...]`

Trains the demo ensemble from scratch on the bundled PneumoniaMNIST train/val split (about 9-10
minutes on 2 CPU cores) with the project's own training code, `clinic_ai.inference.backends.train_demo`,
and writes `DIR/models/*.keras` and `DIR/ensemble.json` (default: a new folder, so the shipped files
are not replaced by accident; pass `--out clinic_ai/inference/demo` to replace them). Nothing is
downloaded. `make run` never trains: it registers the shipped files.
"""

import tempfile

from django.core.management.base import BaseCommand

from clinic_ai.inference.backends import train_demo


class Command(BaseCommand):
    help = "Train the demo ensemble on the bundled PneumoniaMNIST train/val data."

    def add_arguments(self, parser):
        parser.add_argument("--out", help="Output folder (default: a new temporary folder)")
        parser.add_argument("extra", nargs="*", help="Further options of train_demo, after --")

    def handle(self, *args, **options):
        out = options["out"] or tempfile.mkdtemp(prefix="clinic_ai_demo_ensemble_")
        self.stderr.write(f"Training into {out}")
        code = train_demo.main(["--out", out, *options["extra"]])
        if code:
            raise SystemExit(code)
