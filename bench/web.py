"""Page latency under 20 concurrent sessions: `manage.py runserver` against `gunicorn -w 2` (sync)
and `gunicorn -w 2 --threads 8` (what `make run` uses).

    .venv/bin/python bench/web.py [--sessions 20] [--requests 30] [--rounds 2] [--servers ...]

Sets up its own SQLite database and storage in a temporary folder (demo users, a few released
images put through the real pipeline in this process), then starts each server in turn on
127.0.0.1 with the same settings (DEBUG off, as `make run`). Each session logs in, then makes a
bounded number of page visits: the worklist, then an image page and its preview, each visit
timed request by request; each session is a process of its own. The servers alternate over the
rounds, so a drift of the machine's load falls on all of them. Needs Redis (REDIS_URL, default
database 13: the log-in throttle's cache). Prints one JSON line.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
PASSWORD = secrets.token_urlsafe(16)  # a throwaway user in a throwaway database
USERS = ("demo-radiologist", "demo-clinician", "demo-admin")


def _environment(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clinic_ai.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECRET_KEY_FILE": str(root / "no-key-file"),
        "DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{root / 'bench.sqlite3'}",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13"),
        "MEDIA_ROOT": str(root / "media"),
        "QUARANTINE_ROOT": str(root / "quarantine"),
        "STATIC_ROOT": str(root / "static"),
        "DEMO_PASSWORD": PASSWORD,
        "ALLOWED_HOSTS": "127.0.0.1,testserver",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "LOG_LEVEL": "WARNING",
    }


SETUP = r"""
import io, json, sys
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from PIL import Image as PILImage
from pydicom.data import get_testdata_file
from clinic_ai.accounts.models import Project, User
from clinic_ai.studies.models import Image

call_command("migrate", verbosity=0)
call_command("demo_setup", stdout=io.StringIO())
project = Project.objects.get()
client = Client()
client.force_login(User.objects.get(username="demo-radiologist"))
files = {n: open(get_testdata_file(n), "rb").read() for n in ("CT_small.dcm", "MR_small.dcm", "emri_small.dcm")}
for i in range(int(sys.argv[1])):
    buffer = io.BytesIO()
    PILImage.linear_gradient("L").rotate(i * 7).resize((256 + i, 256)).save(buffer, format="PNG")
    files[f"x{i}.png"] = buffer.getvalue()
batch = client.post(f"/projects/{project.pk}/uploads/", data="{}", content_type="application/json").json()
for name, data in files.items():
    declared = client.post(batch["files_url"], data=json.dumps({"name": name, "size": len(data)}),
                           content_type="application/json").json()
    client.post(declared["chunk_url"], data=data, content_type="application/octet-stream",
                headers={"X-Chunk-Offset": "0"})
client.post(batch["finish_url"], data="{}", content_type="application/json")
ids = [str(pk) for pk in Image.objects.filter(status="released", preview_status="ready").values_list("pk", flat=True)]
print(json.dumps(ids))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/accounts/login/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not answer within 60 s")


class Session:
    """One browser: its own connection (keep-alive where the server allows it) and cookies."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.conn = None

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, bytes]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://127.0.0.1:{self.port}/accounts/login/"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None  # the server closed an idle connection: open a new one, once
                if attempt:
                    raise
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return response.status, data

    def log_in(self, username: str) -> None:
        status, page = self.request("GET", "/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        body = urlencode({"csrfmiddlewaretoken": token, "username": username, "password": PASSWORD})
        status, _ = self.request("POST", "/accounts/login/", body)
        if status != 302:
            raise RuntimeError(f"log-in failed with {status}")


def _session(port: int, index: int, visits: int, images: list[str], ready) -> tuple[list, list]:
    """One browser, in a process of its own (20 threads in one process would wait on each other's
    GIL between connect and send, and a sync gunicorn worker would wait on them)."""
    rng = random.Random(index)
    session = Session(port)
    latencies: list[tuple[str, float]] = []
    errors: list[str] = []
    try:
        session.log_in(USERS[index % len(USERS)])
    except Exception as exc:  # reported, not raised: the other sessions go on
        errors.append(f"login: {type(exc).__name__}")
    ready.wait()
    for visit in range(visits):
        image = rng.choice(images)
        page = [("worklist", "/worklist/")]
        if visit % 2:
            page = [("image_page", f"/images/{image}/"), ("preview_png", f"/images/{image}/preview.png")]
        for what, path in page:
            started = time.perf_counter()
            try:
                status, _ = session.request("GET", path)
            except Exception as exc:
                errors.append(f"{path}: {type(exc).__name__}")
                continue
            latencies.append((what, time.perf_counter() - started))
            if status != 200:
                errors.append(f"{path}: HTTP {status}")
    return latencies, errors


def _load(port: int, sessions: int, visits: int, images: list[str]) -> dict:
    context = multiprocessing.get_context("fork")
    ready = context.Manager().Barrier(sessions + 1)
    with context.Pool(sessions) as pool:
        pending = pool.starmap_async(_session, [(port, i, visits, images, ready) for i in range(sessions)])
        ready.wait()  # every session has logged in: the clock starts
        started = time.perf_counter()
        results = pending.get()
        elapsed = time.perf_counter() - started
    return {
        "latencies": [sample for latencies, _ in results for sample in latencies],
        "errors": [error for _, errors in results for error in errors],
        "elapsed": elapsed,
    }


SERVERS = {
    "runserver": ["manage.py", "runserver", "--noreload"],
    "gunicorn_w2": ["--workers", "2"],
    "gunicorn_w2_t4": ["--workers", "2", "--threads", "4"],
    "gunicorn_w2_t8": ["--workers", "2", "--threads", "8"],
}


def _server(kind: str, port: int, env: dict, log) -> subprocess.Popen:
    python = sys.executable
    if kind == "runserver":
        command = [python, *SERVERS[kind], f"127.0.0.1:{port}"]
    else:
        gunicorn = str(Path(python).with_name("gunicorn"))
        command = [gunicorn, "clinic_ai.wsgi:application", *SERVERS[kind], "--bind", f"127.0.0.1:{port}"]
        command += ["--timeout", "120", "--no-control-socket"]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 1), "p95_ms": round(cuts[94] * 1000, 1)}


def _summary(samples: list[tuple[str, float]], elapsed: float) -> dict:
    every = [seconds for _, seconds in samples]
    summary = {"requests": len(every), **_percentiles(every), "max_ms": round(max(every) * 1000, 1)}
    summary["requests_per_s"] = round(len(every) / elapsed, 1)
    for what in sorted({what for what, _ in samples}):
        summary[what] = _percentiles([seconds for kind, seconds in samples if kind == what])
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--requests", type=int, default=30, help="page visits per session and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pngs", type=int, default=12)
    parser.add_argument("--servers", default="runserver,gunicorn_w2,gunicorn_w2_t8", help=f"from {', '.join(SERVERS)}")
    args = parser.parse_args()

    load_at_start = os.getloadavg()[0]  # other work on the machine takes CPU from both servers alike
    root = Path(tempfile.mkdtemp(prefix="clinic_ai_bench_web_"))
    try:
        env = _environment(root)
        setup = subprocess.run(
            [sys.executable, "-c", SETUP, str(args.pngs)], cwd=REPO, env=env, capture_output=True, text=True
        )
        if setup.returncode != 0:
            raise SystemExit(setup.stderr[-3000:])
        images = json.loads(setup.stdout.strip().splitlines()[-1])
        if not images:
            raise SystemExit("no image was released during set-up")
        env = {**env, "CELERY_TASK_ALWAYS_EAGER": "false"}
        order = args.servers.split(",")
        results = {kind: {"latencies": [], "errors": [], "elapsed": 0.0} for kind in order}
        for round_ in range(args.rounds):
            for kind in order if round_ % 2 == 0 else order[::-1]:
                port = _free_port()
                with open(root / f"{kind}.log", "ab") as log:
                    proc = _server(kind, port, env, log)
                    try:
                        _wait_until_up(port, proc)
                        run = _load(port, args.sessions, args.requests, images)
                    finally:
                        proc.terminate()
                        try:
                            proc.wait(timeout=20)
                        except subprocess.TimeoutExpired:
                            proc.kill()
                for key in ("latencies", "errors"):
                    results[kind][key] += run[key]
                results[kind]["elapsed"] += run["elapsed"]
        line = {
            "sessions": args.sessions,
            "visits_per_session_and_round": args.requests,
            "rounds": args.rounds,
            "images": len(images),
            "cpus": os.cpu_count(),
            "load_average_at_start": round(load_at_start, 1),
            "load_average_at_end": round(os.getloadavg()[0], 1),
        }
        for kind, result in results.items():
            line[kind] = _summary(result["latencies"], result["elapsed"])
            line[kind]["errors"] = len(result["errors"])
            if result["errors"]:
                line[kind]["first_errors"] = sorted(set(result["errors"]))[:5]
        if {"runserver", "gunicorn_w2"} <= set(line):
            line["p95_runserver_over_gunicorn_w2"] = round(
                line["runserver"]["p95_ms"] / line["gunicorn_w2"]["p95_ms"], 2
            )
        print(json.dumps(line))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
