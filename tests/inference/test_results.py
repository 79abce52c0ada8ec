"""Inference results through the app: services, the worker's code in-process, and every view as
the right role, a wrong role and an outsider."""

import io
import json

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image as PILImage

from clinic_ai.accounts.models import Role
from clinic_ai.inference import services
from clinic_ai.inference.models import InferenceResult, ModelStatus, ModelVersion, ResultStatus
from clinic_ai.studies.models import Image
from tests.conftest import run_pipeline_inline, upload_through_api

pytestmark = pytest.mark.django_db


def _xray_png(size=64, seed=0):
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size, size)) * 80).astype(np.uint8)
    pixels[size // 4 : size // 2, size // 4 : size // 2] = 220
    buffer = io.BytesIO()
    PILImage.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def released_with_result(client, project, radiologist, tiny_ensemble):
    tiny_ensemble(project)
    client.force_login(radiologist)
    upload_through_api(client, project, {"chest.png": _xray_png()})
    run_pipeline_inline()
    image = Image.objects.get()
    return image, InferenceResult.objects.get(image=image)


def test_a_released_image_gets_every_members_and_the_ensembles_opinion_and_heatmaps(released_with_result):
    image, result = released_with_result
    assert result.status == ResultStatus.DONE, result.reason
    assert set(result.probabilities) == {"normal", "pneumonia"}
    assert abs(sum(result.probabilities.values()) - 1) < 1e-5
    assert [m["name"] for m in result.members] == ["plain", "nested"]
    assert set(result.uncertainty) == {"member_std", "entropy", "mutual_information"}
    assert set(result.heatmaps) == {"ensemble", "plain", "nested"}
    from clinic_ai.studies import storage

    with PILImage.open(storage.media_path(result.heatmaps["ensemble"])) as heat:
        assert heat.size == (image.columns, image.rows)  # at the image's resolution
    assert result.versions["ensemble"] == "Tiny v1"
    assert result.attempts == 1 and result.timings["batch_size"] == 1


def test_the_image_page_json_shows_the_result_to_members_and_404s_for_outsiders(
    client, released_with_result, radiologist, clinician, outsider
):
    from clinic_ai.labelling.models import LabellingSettings

    image, result = released_with_result
    url = reverse("inference:image_inference", args=[image.pk])
    client.force_login(radiologist)
    body = client.get(url).json()
    assert body["state"] == "done" and body["ensemble"] == "Tiny v1" and body["can_rerun"]
    heatmap_url = body["heatmaps"]["ensemble"]
    heatmap = client.get(heatmap_url)
    assert heatmap.status_code == 200 and heatmap["Content-Type"] == "image/png"
    # Readers label blind: neither the result, nor its heatmap, nor the image page's panel or review line.
    client.force_login(clinician)
    assert client.get(url).status_code == 403 and client.get(heatmap_url).status_code == 403
    page = client.get(image.get_absolute_url()).content.decode()
    assert 'id="ai-hidden"' in page and 'id="ai-panel"' not in page and 'id="review-line"' not in page
    # ... unless the project lets its readers see the AI result.
    LabellingSettings.objects.update_or_create(project=image.project, defaults={"readers_see_ai_result": True})
    body = client.get(url).json()
    assert body["state"] == "done" and not body["can_rerun"] and client.get(heatmap_url).status_code == 200
    assert 'id="ai-panel"' in client.get(image.get_absolute_url()).content.decode()
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    assert client.get(heatmap_url).status_code == 404


def test_rerun_is_for_uploaders_only_and_queues_the_same_row_again(
    client, released_with_result, radiologist, clinician
):
    image, result = released_with_result
    url = reverse("inference:image_inference_rerun", args=[image.pk])
    client.force_login(clinician)
    assert client.post(url, content_type="application/json").status_code == 403
    client.force_login(radiologist)
    response = client.post(url, content_type="application/json")
    assert response.status_code == 200 and response.json()["state"] == "queued"
    result.refresh_from_db()
    assert result.status == ResultStatus.QUEUED and InferenceResult.objects.count() == 1
    assert (
        client.post(url, content_type="application/json").json()["state"] == "queued"
    )  # a double click queues nothing more


def test_each_job_finishes_once_only_for_the_task_that_claimed_it(released_with_result):
    image, result = released_with_result
    services.result_rerun(actor=None, image=image)
    claimed = services.results_claim(result_ids=[result.pk], claim="task-a")
    assert [r.pk for r in claimed] == [result.pk]
    # Another task (a duplicate delivery) finds the row taken.
    assert services.results_claim(result_ids=[result.pk], claim="task-b") == []
    payload = {"probabilities": {}, "labels": [], "members": [], "uncertainty": {}, "target_class": "normal"}
    assert not services.result_finish(
        result_id=result.pk, claim="task-b", result=payload, heatmaps={}, timings={}, versions={}
    )
    # The same task delivered again (its worker died) takes its own row back, and finishes it once.
    assert [r.pk for r in services.results_claim(result_ids=[result.pk], claim="task-a")] == [result.pk]
    assert services.result_finish(
        result_id=result.pk, claim="task-a", result=payload, heatmaps={}, timings={}, versions={}
    )
    assert not services.result_finish(
        result_id=result.pk, claim="task-a", result=payload, heatmaps={}, timings={}, versions={}
    )
    result.refresh_from_db()
    assert result.status == ResultStatus.DONE and result.attempts == 3


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_probability_fails_the_job_instead_of_being_stored(released_with_result, bad):
    image, result = released_with_result
    services.result_rerun(actor=None, image=image)
    services.results_claim(result_ids=[result.pk], claim="task-a")
    payload = {
        "probabilities": {"normal": 0.4, "pneumonia": 0.6},
        "labels": ["pneumonia"],
        "members": [{"name": "a", "probabilities": {"normal": 0.4, "pneumonia": bad}}],
        "uncertainty": {},
        "target_class": "pneumonia",
    }
    assert services.result_finish(
        result_id=result.pk, claim="task-a", result=payload, heatmaps={}, timings={}, versions={}
    )
    result.refresh_from_db()
    assert result.status == ResultStatus.FAILED and result.reason == services.REASON_NOT_FINITE
    assert result.probabilities != payload["probabilities"]  # nothing of it stored


def test_a_model_that_fails_to_load_fails_its_jobs_with_a_reason(released_with_result, client, radiologist):
    image, result = released_with_result
    from clinic_ai.studies import storage

    for member in result.ensemble.members.select_related("model_version"):
        storage.media_path(member.model_version.file_path).write_bytes(b"not a keras file")
    services.result_rerun(actor=None, image=image)
    run_pipeline_inline()
    result.refresh_from_db()
    assert result.status == ResultStatus.FAILED
    assert result.reason.startswith("The ensemble's models could not be loaded")
    client.force_login(radiologist)
    body = client.get(reverse("inference:image_inference", args=[image.pk])).json()
    assert body["state"] == "failed" and body["reason"] == result.reason and body["can_rerun"]


def test_a_model_with_a_lambda_layer_is_refused_and_cannot_join_an_active_ensemble(project, tmp_path):
    import keras

    from clinic_ai.inference import worker

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.Conv2D(2, 3)(x)
    outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(x))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    model = services.model_version_register(
        actor=None,
        project=project,
        source=path,
        name="evil",
        version="1",
        preprocessing={"input_size": [28, 28], "channels": 1, "mean": 0.0, "std": 1.0},
        class_names=list(project.class_names),
        task_type=project.task_type,
    )
    worker.model_version_validate(model_version_id=model.pk)
    model.refresh_from_db()
    assert model.status == ModelStatus.INVALID and "Lambda" in model.status_reason
    ensemble = services.ensemble_create(actor=None, project=project, name="E", slug="e", members=[(model, 1.0)])
    with pytest.raises(services.RegistryRefused):
        services.ensemble_activate(actor=None, ensemble=ensemble)


def test_a_model_whose_shapes_do_not_match_its_metadata_is_refused(project, tmp_path):
    import keras

    from clinic_ai.inference import worker

    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs)))
    path = tmp_path / "wrong.keras"
    keras.Model(inputs, outputs).save(path)
    model = services.model_version_register(
        actor=None,
        project=project,
        source=path,
        name="wrong",
        version="1",
        preprocessing={"input_size": [28, 28], "channels": 1, "mean": 0.0, "std": 1.0},
        class_names=list(project.class_names),
        task_type=project.task_type,
    )
    worker.model_version_validate(model_version_id=model.pk)
    model.refresh_from_db()
    assert model.status == ModelStatus.INVALID and "expects input" in model.status_reason


def test_registry_pages_are_for_project_admins(client, project, project_admin, radiologist, outsider):
    url = reverse("inference:registry", args=[project.pk])
    client.force_login(project_admin)
    assert client.get(url).status_code == 200
    client.force_login(radiologist)
    assert client.get(url).status_code == 403
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    for name in ("inference:project_queue", "inference:project_progress"):
        client.force_login(radiologist)
        method = (lambda u: client.post(u, content_type="application/json")) if name.endswith("queue") else client.get
        assert method(reverse(name, args=[project.pk])).status_code == 403
        client.force_login(outsider)
        assert method(reverse(name, args=[project.pk])).status_code == 404


def test_an_admin_registers_a_model_through_the_page_and_bad_metadata_gets_a_form_error(
    client, project, project_admin, tmp_path
):
    from tests.inference.conftest import _tiny_model

    path = _tiny_model(tmp_path / "m.keras", nested=False, bias=0.0)
    client.force_login(project_admin)
    url = reverse("inference:registry", args=[project.pk])
    form = {
        "action": "model",
        "model-name": "cnn",
        "model-version": "2",
        "model-input_height": "28",
        "model-input_width": "28",
        "model-channels": "1",
        "model-mean": "0",
        "model-std": "1",
        "model-validation": '{"val_auroc": 0.99}',
    }
    with open(path, "rb") as fh:
        response = client.post(url, {**form, "model-file": fh})
    assert response.status_code == 302
    model = ModelVersion.objects.get()
    assert model.status == ModelStatus.VALIDATING and model.validation == {"val_auroc": 0.99}
    for bad in ('{"a": NaN}', "[" * 50000 + "]" * 50000, '{"a": "text"}', "not json"):
        with open(path, "rb") as fh:
            response = client.post(url, {**form, "model-version": "3", "model-validation": bad, "model-file": fh})
        assert response.status_code == 400 and b"flat JSON object of numbers" in response.content
    assert ModelVersion.objects.count() == 1


def test_an_admin_queues_the_whole_project_and_follows_its_progress(
    client, project, project_admin, radiologist, tiny_ensemble
):
    client.force_login(radiologist)
    upload_through_api(client, project, {"a.png": _xray_png(seed=1), "b.png": _xray_png(seed=2)})
    run_pipeline_inline()  # no ensemble yet: nothing is run
    assert not InferenceResult.objects.exists()
    tiny_ensemble(project)
    client.force_login(project_admin)
    queued = client.post(reverse("inference:project_queue", args=[project.pk]), content_type="application/json").json()
    assert queued["queued"] == 2 and queued["queued"] == 2 and queued["done"] == 0
    run_pipeline_inline()
    progress = client.get(reverse("inference:project_progress", args=[project.pk])).json()
    assert progress == {"ensemble": "Tiny v1", "images": 2, "done": 2, "failed": 0, "queued": 0, "running": 0}
    assert json.dumps(progress)  # plain JSON


def test_the_outsider_role_matrix_for_results(client, released_with_result, member_of, outsider):
    image, result = released_with_result
    clinician_in_project = member_of(image.project, Role.CLINICIAN)
    client.force_login(clinician_in_project)
    assert client.get(reverse("inference:image_inference", args=[image.pk])).status_code == 403  # labels blind
    assert (
        client.post(
            reverse("inference:image_inference_rerun", args=[image.pk]), content_type="application/json"
        ).status_code
        == 403
    )
    client.force_login(outsider)
    assert (
        client.post(
            reverse("inference:image_inference_rerun", args=[image.pk]), content_type="application/json"
        ).status_code
        == 404
    )


def test_test_time_augmentation_averages_each_members_logits_over_the_shifted_images(tmp_path):
    import keras

    from clinic_ai.inference.backends import runtime
    from tests.inference.conftest import _tiny_model

    path = _tiny_model(tmp_path / "m.keras", nested=False, bias=0.1)
    spec = {
        "task": "binary",
        "class_names": ["normal", "pneumonia"],
        "preprocessing": {"input_size": [28, 28], "channels": 1, "mean": 0.0, "std": 1.0},
        "members": [{"name": "m", "file": str(path)}],
        "_base_dir": str(tmp_path),
    }
    rng = np.random.default_rng(3)
    x = rng.random((2, 28, 28, 1)).astype(np.float32)
    x[:, 5:12, 15:22] = 1.0  # structure near the middle, so a shift changes the logit
    plain = runtime.load_ensemble(spec).predict(x)
    with_tta = runtime.load_ensemble({**spec, "tta": True}).predict(x)
    model = keras.models.load_model(path)
    # By hand: the image and its four one-pixel shifts with the edge repeated, logits averaged.
    variants = [x]
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        moved = np.empty_like(x)
        for r in range(28):
            for c in range(28):
                moved[:, r, c] = x[:, min(max(r - dy, 0), 27), min(max(c - dx, 0), 27)]
        variants.append(moved)
    logit = np.mean([np.asarray(model(v)).ravel() for v in variants], axis=0)
    expected = 1 / (1 + np.exp(-logit))
    got = np.array([r.probabilities["pneumonia"] for r in with_tta])
    assert np.allclose(got, expected, atol=1e-5)
    assert not np.allclose(got, [r.probabilities["pneumonia"] for r in plain], atol=1e-7)


def test_queueing_a_project_takes_images_whose_result_failed_even_if_another_ensemble_is_done(
    client, project, project_admin, radiologist, tiny_ensemble, django_assert_max_num_queries
):
    """The case an exclude() across the relation gets wrong: a done result of an old ensemble and
    a failed one of the active ensemble on the same image."""
    client.force_login(radiologist)
    upload_through_api(client, project, {f"{i}.png": _xray_png(seed=10 + i) for i in range(3)})
    tiny_ensemble(project, slug="old")
    run_pipeline_inline()
    assert InferenceResult.objects.filter(status=ResultStatus.DONE).count() == 3
    current = tiny_ensemble(project, slug="new")  # activated: the old one is no longer active
    failed = Image.objects.order_by("pk").first()
    InferenceResult.objects.create(image=failed, ensemble=current, status=ResultStatus.FAILED, reason="x")
    with django_assert_max_num_queries(8):
        ids = services.project_results_queue(actor=project_admin, project=project)
    assert len(ids) == 3
    assert set(InferenceResult.objects.filter(ensemble=current).values_list("status", flat=True)) == {"queued"}
    assert services.project_results_queue(actor=project_admin, project=project) == []  # a second click: nothing
