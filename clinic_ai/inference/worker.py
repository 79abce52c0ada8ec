"""The worker side of inference: loads models (TensorFlow, through `backends`) and runs batches.

Imported by Celery tasks inside their bodies and by `manage.py predict`, never by the web process.
Models are loaded once per process and kept (`backends.runtime.load_ensemble` caches runners).
"""

from __future__ import annotations

import time

import numpy as np

from clinic_ai.inference import services
from clinic_ai.inference.backends import runtime
from clinic_ai.inference.models import Ensemble, InferenceResult, ModelVersion
from clinic_ai.inference.overlay import heatmap_png
from clinic_ai.studies import imaging, storage

_REASON_LOAD = "The ensemble's models could not be loaded: {}"


def results_run(*, result_ids, claim: str) -> int:
    """Run the claimed results, batched per ensemble. Returns how many rows this task finished."""
    rows = services.results_claim(result_ids=result_ids, claim=claim)
    finished = 0
    by_ensemble: dict = {}
    for row in rows:
        by_ensemble.setdefault(row.ensemble_id, []).append(row)
    for ensemble_id, batch in by_ensemble.items():
        finished += _run_batch(Ensemble.objects.get(pk=ensemble_id), batch, claim)
    return finished


class EnsembleUnavailable(Exception):
    """The ensemble's models could not be loaded; `reason` names why without a traceback."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def runner_for(ensemble: Ensemble) -> runtime.Runner:
    """The ensemble's runner, loaded once per process (the same for the worker and `manage.py predict`)."""
    try:
        runner = runtime.load_ensemble(services.ensemble_spec(ensemble))
        if not getattr(runner, "warmed", False):
            # Trace the compiled graphs once, at load, so no image's timing carries the tracing.
            size = (*runner.preprocessing.input_size, runner.preprocessing.channels)
            runner.predict(np.zeros((1, *size), dtype=np.float32), gradcam=True)
            runner.warmed = True
        return runner
    except Exception as exc:  # noqa: BLE001 - any load failure fails the jobs with a reason shown in the UI
        detail = str(exc.args[0]) if isinstance(exc, runtime.ModelRefused) and exc.args else type(exc).__name__
        raise EnsembleUnavailable(_REASON_LOAD.format(detail)) from None


def _run_batch(ensemble: Ensemble, rows: list[InferenceResult], claim: str) -> int:
    started = time.perf_counter()
    try:
        runner = runner_for(ensemble)
    except EnsembleUnavailable as exc:
        return sum(services.result_fail(result_id=row.pk, claim=claim, reason=exc.reason) for row in rows)
    loaded = time.perf_counter()
    pixels, ready = [], []
    for row in rows:
        try:
            pixels.append(imaging.display_pixels(storage.media_path(row.image.released_path), row.image.kind))
            ready.append(row)
        except (imaging.RejectedFile, OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, imaging.RejectedFile) else "The released file could not be read."
            services.result_fail(result_id=row.pk, claim=claim, reason=reason)
    if not ready:
        return 0
    decoded = time.perf_counter()
    results = runner.predict_pixels(pixels, gradcam=True)
    predicted = time.perf_counter()
    versions = {m.model_version.name: m.model_version.label for m in ensemble.members.select_related("model_version")}
    versions["ensemble"] = ensemble.label
    per_image_ms = 1000 * (predicted - decoded) / len(ready)
    finished = 0
    for row, result in zip(ready, results, strict=True):
        maps = {"ensemble": result.heatmap, **result.member_heatmaps}
        heatmaps = {}
        for name, heat in maps.items():
            relative = services.heatmap_relative_path(row, _safe_name(name))
            storage.atomic_write_bytes(heatmap_png(heat), storage.media_path(relative))
            heatmaps[name] = relative
        timings = {
            "batch_size": len(ready),
            "model_load_ms": round(1000 * (loaded - started), 1),
            "inference_ms_per_image": round(per_image_ms, 2),
            "queued_s": round((row.started_at - row.queued_at).total_seconds(), 2) if row.queued_at else None,
        }
        finished += services.result_finish(
            result_id=row.pk,
            claim=claim,
            result=result.to_json(),
            heatmaps=heatmaps,
            timings=timings,
            versions=versions,
        )
    return finished


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:64] or "member"


def model_version_validate(*, model_version_id) -> None:
    """Load the file with safe_mode, check its input and output against its metadata, find the layer
    Grad-CAM reads."""
    model = ModelVersion.objects.filter(pk=model_version_id).first()
    if model is None:
        return
    try:
        keras_model = runtime.load_model(storage.media_path(model.file_path))
        size = tuple(model.preprocessing.get("input_size", ()))
        channels = model.preprocessing.get("channels")
        got_in = tuple(keras_model.inputs[0].shape[1:])
        if got_in != (*size, channels):
            raise runtime.ModelRefused(f"The model expects input {got_in}; its metadata says {(*size, channels)}.")
        outputs = 1 if model.task_type == "binary" else len(model.class_names)
        got_out = tuple(keras_model.outputs[0].shape[1:])
        if got_out != (outputs,):
            raise runtime.ModelRefused(f"The model has output {got_out}; the project's classes need ({outputs},).")
        layer = model.last_conv_layer or runtime.find_last_conv(keras_model)
    except runtime.ModelRefused as exc:
        services.model_version_validated(model_version_id=model.pk, refused=str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - a file Keras cannot read is refused, with the error's type
        services.model_version_validated(
            model_version_id=model.pk, refused=f"Keras could not load the file ({type(exc).__name__})."
        )
        return
    services.model_version_validated(model_version_id=model.pk, refused=None, last_conv_layer=layer)
