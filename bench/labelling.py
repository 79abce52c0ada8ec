"""Key to next image drawn on the labelling page: ours against the naive flow, in Chromium.

    .venv/bin/python bench/labelling.py [--images 50] [--think-ms 400] [--size 1024]

Sets up a throwaway SQLite database and media root in a temporary folder (migrate, a project, a
reader, N+5 released images uploaded through the app's own API and pipeline, tasks run eagerly),
starts `manage.py runserver` on a free 127.0.0.1 port, and drives Debian's Chromium headless:

- ours: the real page (static/js/labelling.js). The reader presses 1 or 2; the time is taken from
  performance.now() in the keydown handler to the requestAnimationFrame after the next image (already
  fetched and decoded) is put on the page.
- baseline, same run, same server, a second project with the same images: the naive flow (what Label
  Studio does): on the key, POST the label and wait for the answer, then GET the next queue item, then
  fetch its image and wait for decode(), then the same requestAnimationFrame. Our script is blocked on
  that page so nothing is preloaded or cached for the baseline.

The reader "thinks" --think-ms between keys in both flows. Prints one JSON line.
"""

import argparse
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
PASSWORD = secrets.token_urlsafe(16)  # a throwaway user in a throwaway database
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

NAIVE_FLOW = """
async () => {
  const cfg = JSON.parse(document.getElementById("labelling-config").textContent);
  const stage = document.getElementById("label-stage");
  const timings = (window.naiveTimings = []);
  const post = (url, body) => fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRFToken": window.clinicCommon.csrfToken()},
    body: JSON.stringify(body),
  });
  async function next() {
    const response = await fetch(cfg.queueUrl + "?limit=1", {credentials: "same-origin"});
    const item = (await response.json()).items[0];
    const img = new Image();
    img.src = item.preview_url;
    await img.decode();
    stage.replaceChildren(img);
    return item.id;
  }
  let current = await next();
  let busy = false;
  document.addEventListener("keydown", async (event) => {
    if (busy || !/^[12]$/.test(event.key)) return;
    busy = true;
    const start = performance.now();
    const saved = await post(cfg.labelUrl, {image: current, values: [cfg.classes[Number(event.key) - 1]], seconds: 1});
    if (!saved.ok) throw new Error("label refused " + saved.status);
    current = await next();
    requestAnimationFrame(() => { timings.push(performance.now() - start); busy = false; });
  });
}
"""


def chest_like_png(seed: int, size: int) -> bytes:
    """A greyscale image of a radiograph's size with smooth structure and noise (so PNG does not
    compress it to nothing)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    body = np.exp(-(((x - 0.5) / 0.35) ** 2 + ((y - 0.55) / 0.45) ** 2)) * 160
    lungs = np.exp(-(((np.abs(x - 0.5) - 0.17) / 0.11) ** 2 + ((y - 0.45) / 0.22) ** 2)) * -90
    pixels = body + lungs + rng.normal(0, 12, (size, size)) + 40
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_data(env: dict, count: int, size: int) -> dict:
    """Migrate and fill the throwaway database through the app's services and upload API."""
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.test import Client

    from clinic_ai.accounts.models import Role, TaskType, User
    from clinic_ai.accounts.services import membership_set, project_create
    from clinic_ai.deidentification.models import DeidProfile
    from clinic_ai.studies.models import Image, ImageStatus
    from tests.conftest import upload_through_api

    uploader = User.objects.create_user(username="bench-radiologist", password=PASSWORD)
    reader = User.objects.create_user(username="bench-reader", password=PASSWORD)
    images = [chest_like_png(seed, size) for seed in range(count)]
    projects = {}
    for key in ("ours", "baseline"):
        project = project_create(
            actor=None, name=f"Bench {key}", task_type=TaskType.BINARY, class_names=["normal", "pneumonia"]
        )
        membership_set(actor=None, project=project, user=uploader, role=Role.RADIOLOGIST)
        membership_set(actor=None, project=project, user=reader, role=Role.CLINICIAN)
        DeidProfile.objects.update_or_create(project=project, defaults={"ocr_enabled": False})
        client = Client()
        client.force_login(uploader)
        for i, data in enumerate(images):  # one upload each: release order is upload order
            upload_through_api(client, project, {f"chest{i}.png": data}, chunk_size=4 << 20)
        released = Image.objects.filter(project=project, status=ImageStatus.RELEASED, preview_status="ready").count()
        if released != count:
            raise SystemExit(f"only {released} of {count} images were released in {key}")
        projects[key] = str(project.pk)
    from django.db import connections

    connections.close_all()
    return projects


def wait_for_server(url: str, proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"runserver exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("runserver did not answer")


def log_in(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "bench-reader")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def run_ours(browser, base: str, project_id: str, presses: int, think: float) -> list[float]:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(page, base)
    page.goto(f"{base}/projects/{project_id}/label/")
    page.wait_for_selector("html[data-labelling-ready]")
    page.wait_for_function("() => window.clinicLabelling.drawn >= 1")
    page.wait_for_timeout(think * 1000)
    for i in range(presses):
        page.keyboard.press("1" if i % 2 else "2")
        page.wait_for_function(f"() => window.clinicLabelling.timings.length >= {i + 1}", polling="raf")
        page.wait_for_timeout(think * 1000)
    page.wait_for_function("() => document.getElementById('label-save-state').textContent === 'all saved'")
    page.screenshot(path=str(REPO / "test-artifacts" / "bench-labelling.png"))
    timings = page.evaluate("window.clinicLabelling.timings")
    page.context.close()
    return timings


def run_baseline(browser, base: str, project_id: str, presses: int, think: float) -> list[float]:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(page, base)
    page.route("**/static/js/labelling.js*", lambda route: route.abort())  # nothing preloaded for it
    page.goto(f"{base}/projects/{project_id}/label/")
    page.evaluate(NAIVE_FLOW)
    page.wait_for_timeout(think * 1000)
    for i in range(presses):
        page.keyboard.press("1" if i % 2 else "2")
        page.wait_for_function(f"() => window.naiveTimings.length >= {i + 1}", polling="raf")
        page.wait_for_timeout(think * 1000)
    timings = page.evaluate("window.naiveTimings")
    page.context.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=50, help="key presses measured per flow")
    parser.add_argument("--think-ms", type=int, default=400, help="the reader's pause between keys")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_labelling_"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clinic_ai.settings",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
        "MEDIA_ROOT": str(tmp / "media"),
        "QUARANTINE_ROOT": str(tmp / "quarantine"),
        "STATIC_ROOT": str(tmp / "static"),
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "ALLOWED_HOSTS": "127.0.0.1,testserver",
        "LOG_LEVEL": "WARNING",
    }
    server = None
    try:
        projects = setup_data(env, args.images + 5, args.size)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with open(tmp / "runserver.log", "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_server(f"{base}/accounts/login/", server)
        (REPO / "test-artifacts").mkdir(exist_ok=True)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            think = args.think_ms / 1000
            ours = run_ours(browser, base, projects["ours"], args.images, think)
            baseline = run_baseline(browser, base, projects["baseline"], args.images, think)
            browser.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)

    def figures(values):
        return round(float(np.median(values)), 1), round(float(np.percentile(values, 95)), 1)

    ours_median, ours_p95 = figures(ours)
    base_median, base_p95 = figures(baseline)
    print(
        json.dumps(
            {
                "images": args.images,
                "image_px": args.size,
                "think_ms": args.think_ms,
                "ours_median_ms": ours_median,
                "ours_p95_ms": ours_p95,
                "baseline_median_ms": base_median,
                "baseline_p95_ms": base_p95,
                "target_ms": 100,
            }
        )
    )


if __name__ == "__main__":
    main()
