import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from clinic_ai.accounts.models import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _clean_storage_roots():
    for root in (settings.MEDIA_ROOT, settings.QUARANTINE_ROOT):
        Path(root).mkdir(parents=True, exist_ok=True)
    yield
    shutil.rmtree(os.environ["CLINIC_AI_TEST_ROOT"], ignore_errors=True)


@pytest.fixture
def project(db):
    return ProjectFactory()


@pytest.fixture
def member_of(db):
    """member_of(project, role) -> a user with that role in that project."""

    def make(project, role=Role.RADIOLOGIST, **user_fields):
        return MembershipFactory(project=project, role=role, user=UserFactory(**user_fields)).user

    return make


@pytest.fixture
def radiologist(project, member_of):
    return member_of(project, Role.RADIOLOGIST)


@pytest.fixture
def clinician(project, member_of):
    return member_of(project, Role.CLINICIAN)


@pytest.fixture
def project_admin(project, member_of):
    return member_of(project, Role.ADMIN)


@pytest.fixture
def other_radiologist(project, member_of):
    return member_of(project, Role.RADIOLOGIST)


@pytest.fixture
def held_image(client, project, radiologist):
    """An ultrasound the radiologist uploaded, held for masking (burned-in text expected)."""
    from clinic_ai.studies.models import Image, ImageStatus
    from tests.deidentification.synthetic import ultrasound_bytes

    client.force_login(radiologist)
    upload_through_api(client, project, {"us.dcm": ultrasound_bytes()})
    run_pipeline_inline()
    client.logout()
    image = Image.objects.get()
    assert image.status == ImageStatus.HELD
    return image


@pytest.fixture
def outsider(db):
    """A member of another project, not of `project`."""
    other = ProjectFactory()
    return MembershipFactory(project=other, role=Role.CLINICIAN).user


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(name: str, *, queues: str = "cpu,gpu", concurrency: int = 2):
    """A real `celery worker` process on the test broker and database; returns (process, log path)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = Path(os.environ["CLINIC_AI_TEST_ROOT"]) / f"worker-{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "clinic_ai",
                "worker",
                "-Q",
                queues,
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "-n",
                f"{name}-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    from clinic_ai.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited with {proc.returncode}; see {log_path}")
        replies = app.control.ping(timeout=0.5) or []
        if any(node.startswith(f"{name}-{os.getpid()}@") for reply in replies for node in reply):
            return proc, log_path
    proc.kill()
    raise RuntimeError("celery worker did not answer a ping within 60 s")


def stop_worker(proc) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real `celery worker` process consuming from Redis and writing to the test database.

    Tests that use it must commit their data (`django_db(transaction=True)`), as the worker
    is another process with its own connection.
    """
    if settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("tasks run eagerly")
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    proc, _ = start_worker("tests")
    yield proc
    stop_worker(proc)


def wait_for(predicate, *, timeout=60.0, interval=0.2, message="condition"):
    """Poll until predicate() is truthy; for waiting on the worker, never for timing assertions."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


def upload_through_api(client, project, files, *, chunk_size=64 * 1024, study=None):
    """Drive the browser's chunked upload protocol with Django's test client.

    `files` maps the browser's relative name to bytes. Returns (batch id, {name: file id}).
    """
    import json

    from django.urls import reverse

    response = client.post(
        reverse("studies:upload_batch_create", args=[project.pk]),
        data=json.dumps({"study": str(study.pk) if study else ""}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    batch = response.json()
    ids = {}
    for name, data in files.items():
        declared = client.post(
            batch["files_url"], data=json.dumps({"name": name, "size": len(data)}), content_type="application/json"
        )
        assert declared.status_code == 201, declared.content
        ids[name] = declared.json()["id"]
        offset = 0
        while True:
            chunk = data[offset : offset + chunk_size]
            sent = client.post(
                declared.json()["chunk_url"],
                data=chunk,
                content_type="application/octet-stream",
                headers={"X-Chunk-Offset": str(offset)},
            )
            assert sent.status_code == 200, sent.content
            offset = sent.json()["received"]
            if sent.json()["complete"]:
                break
    assert client.post(batch["finish_url"], data="{}", content_type="application/json").status_code == 200
    return batch, ids


def run_pipeline_inline():
    """Run every pending pipeline step in this process, in order, as a worker would.

    Callbacks queued on commit (purging originals, queueing the next task) run too; the queued
    tasks find their step done and do nothing.
    """
    from django.test import TestCase

    from clinic_ai.deidentification import services as deid_services
    from clinic_ai.studies import services
    from clinic_ai.studies.models import Image, ImageStatus, PreviewStatus, UploadedFile, UploadStatus

    while True:
        pending = list(UploadedFile.objects.filter(status=UploadStatus.RECEIVED).values_list("pk", flat=True))
        for upload_id in pending:
            with TestCase.captureOnCommitCallbacks(execute=True):
                services.uploaded_file_process(upload_id=upload_id)
        if not pending:
            break
    for image_id in Image.objects.filter(status=ImageStatus.QUARANTINED).values_list("pk", flat=True):
        with TestCase.captureOnCommitCallbacks(execute=True):
            deid_services.image_deidentify(image_id=image_id)
    for image_id in Image.objects.filter(status=ImageStatus.MASKING).values_list("pk", flat=True):
        with TestCase.captureOnCommitCallbacks(execute=True):
            deid_services.image_mask_apply(image_id=image_id)
    for image_id in Image.objects.filter(preview_status=PreviewStatus.PENDING).values_list("pk", flat=True):
        services.image_preview_render(image_id=image_id)
    run_inference_inline()


def run_inference_inline(claim="inline"):
    """Run every queued inference result in this process, through the worker's code."""
    from clinic_ai.inference.models import InferenceResult, ResultStatus
    from clinic_ai.inference.services import results_for_released_image
    from clinic_ai.studies.models import Image, ImageStatus

    for image_id in Image.objects.filter(status=ImageStatus.RELEASED).values_list("pk", flat=True):
        results_for_released_image(image_id=image_id)  # what the pipeline does after each release
    queued = list(InferenceResult.objects.filter(status=ResultStatus.QUEUED).values_list("pk", flat=True))
    if queued:
        from clinic_ai.inference import worker  # TensorFlow, only when there is something to run

        worker.results_run(result_ids=queued, claim=claim)


@pytest.fixture
def ct_bytes():
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("CT_small.dcm")).read_bytes()


@pytest.fixture
def png_bytes():
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((64, 48)).save(buffer, format="PNG")
    return buffer.getvalue()
