"""Inference through Redis and real `celery worker` processes, including one killed mid-batch."""

import io
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from clinic_ai.core.models import AuditEvent
from clinic_ai.inference import services
from clinic_ai.inference.models import InferenceResult, ResultStatus
from clinic_ai.pipeline import tasks as pipeline
from tests.conftest import run_pipeline_inline, start_worker, stop_worker, upload_through_api, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _png(size, seed):
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    PILImage.fromarray((rng.random((size, size)) * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_worker_runs_an_uploaded_image_through_the_active_ensemble(
    celery_worker_process, client, project, radiologist, tiny_ensemble
):
    tiny_ensemble(project)
    client.force_login(radiologist)
    upload_through_api(client, project, {"chest.png": _png(96, 0)})
    result = wait_for(
        lambda: InferenceResult.objects.filter(status__in=[ResultStatus.DONE, ResultStatus.FAILED]).first(),
        timeout=120,
        message="the worker's result",
    )
    assert result.status == ResultStatus.DONE, result.reason
    assert set(result.heatmaps) == {"ensemble", "plain", "nested"}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_a_worker_process_killed_mid_batch_loses_nothing_and_each_job_finishes_once(
    client, project, radiologist, project_admin, tiny_ensemble
):
    from clinic_ai.celery import app

    client.force_login(radiologist)
    names = {f"img{i}.png": _png(512, i) for i in range(12)}
    upload_through_api(client, project, names)
    run_pipeline_inline()  # released, no ensemble yet
    tiny_ensemble(project)
    app.control.cancel_consumer("gpu", reply=True)  # other test workers leave "gpu" to ours
    proc, log = start_worker("killed", queues="gpu", concurrency=1)
    try:
        ids = services.project_results_queue(actor=project_admin, project=project)
        assert len(ids) == 12
        pipeline.inference_requested(ids)
        wait_for(
            lambda: InferenceResult.objects.filter(status=ResultStatus.RUNNING).exists(),
            timeout=60,
            interval=0.02,
            message="a batch to start",
        )
        children = _children(proc.pid)
        assert children, "the worker's pool process"
        for child in children:
            os.kill(child, signal.SIGKILL)  # the process running the batch dies (an OOM kill, a crash)
        killed_at = time.monotonic()
        wait_for(
            lambda: InferenceResult.objects.filter(status=ResultStatus.DONE).count() == 12,
            timeout=180,
            message="every result after the kill",
        )
    finally:
        stop_worker(proc)
        app.control.add_consumer("gpu", reply=True)
    assert killed_at
    results = list(InferenceResult.objects.all())
    assert {r.status for r in results} == {ResultStatus.DONE}
    assert max(r.attempts for r in results) >= 2, "the batch was interrupted and claimed again"
    done = AuditEvent.objects.filter(action="inference.done").values_list("object_id", flat=True)
    assert sorted(done) == sorted(str(r.pk) for r in results)  # each job finished exactly once
    assert "WorkerLostError" in log.read_text() or "lost" in log.read_text().lower()
