"""The web process never imports TensorFlow or Keras: only the workers load models."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import importlib, pkgutil, sys
import django
django.setup()
from django.urls import get_resolver
import clinic_ai.wsgi  # the WSGI application gunicorn serves

def walk(resolver):
    for pattern in resolver.url_patterns:
        if hasattr(pattern, "url_patterns"):
            walk(pattern)
        else:
            importlib.import_module(pattern.callback.__module__)

walk(get_resolver())
# Every template tag library, and every template the views render.
from django.template import engines
from django.template.loader import get_template
engine = engines["django"].engine
for library in engine.template_libraries:
    pass
from pathlib import Path
for template in sorted(Path("templates").rglob("*.html")):
    get_template(str(template.relative_to("templates")))
# Queueing a step finalises the Celery app, which autodiscovers every app's tasks module.
from clinic_ai.celery import app
app.loader.import_default_modules()
app.finalize(auto=True)
import clinic_ai.pipeline.tasks
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"tensorflow", "keras", "tf_keras", "jax", "torch"})
print("LOADED:" + ",".join(loaded))
print("PIPELINE:" + str("clinic_ai.pipeline.tasks" in sys.modules))
"""


def test_urlconf_views_templates_and_task_modules_load_no_tensorflow():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(":", 1) for line in out.stdout.splitlines() if ":" in line)
    assert lines["PIPELINE"] == "True"  # the probe really loaded the task modules
    assert lines["LOADED"] == "", f"the web process imported {lines['LOADED']}"


def test_the_probe_would_see_tensorflow_if_a_view_module_imported_it():
    """The check above can fail: importing the worker side does load TensorFlow."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    code = "import django; django.setup(); import clinic_ai.inference.worker, sys; print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().endswith("True"), out.stderr[-2000:]
