"""The modules the web process may use never pull in TensorFlow or Keras (only backends/ does)."""

import subprocess
import sys

from tests.conftest import REPO


def test_pure_inference_modules_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "import clinic_ai.inference, clinic_ai.inference.ensemble, clinic_ai.inference.preprocess\n"
        "import clinic_ai.inference.evaluation, clinic_ai.inference.overlay\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_check_above_can_fail():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, clinic_ai.inference.backends.runtime; assert 'tensorflow' not in sys.modules",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
