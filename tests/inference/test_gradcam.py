"""Grad-CAM through the runtime, on real tiny Keras models trained here in a few seconds.

The pointing game: dark 32x32 images; the positive class has one bright blob at a random place.
A heatmap that explains "positive" must peak inside the blob. Run for a plain model and for one
whose convolutions sit in a nested base model (the case where the textbook recipe breaks).
"""

import json

import keras
import numpy as np
import pytest

from clinic_ai.inference.backends import runtime
from clinic_ai.inference.preprocess import resize

SIZE = 32
RADIUS = 4


def _blob_images(n: int, rng: np.random.Generator):
    x = rng.normal(0.15, 0.05, (n, SIZE, SIZE)).clip(0, 1)
    y = np.arange(n) % 2
    centres = rng.integers(RADIUS + 1, SIZE - RADIUS - 1, (n, 2))
    rr, cc = np.mgrid[:SIZE, :SIZE]
    for i in np.flatnonzero(y):
        r, c = centres[i]
        x[i][(rr - r) ** 2 + (cc - c) ** 2 <= RADIUS**2] = 0.9
    return x[..., None].astype(np.float32), y, centres


def _conv_stack(inp):
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", name="c2")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="c2_bn")(x)
    return keras.layers.Activation("relu", name="c2_relu")(x)


def _head(x):
    x = keras.layers.GlobalMaxPooling2D(name="gmp")(x)
    return keras.layers.Dense(1, name="logit")(x)


def plain_model():
    inp = keras.Input((SIZE, SIZE, 1))
    return keras.Model(inp, _head(_conv_stack(inp)), name="plain")


def nested_model():
    base_in = keras.Input((SIZE, SIZE, 1))
    base = keras.Model(base_in, _conv_stack(base_in), name="base")
    inp = keras.Input((SIZE, SIZE, 1))
    return keras.Model(inp, _head(base(inp)), name="nested")


def _train_and_save(build, tmp_path):
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    x, y, _ = _blob_images(512, rng)
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x, y.astype(np.float32), epochs=6, batch_size=32, verbose=0)
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    return path


def _spec(path, tmp_path, layer=None):
    member = {"name": path.stem, "file": path.name, "weight": 1.0}
    if layer:
        member["last_conv_layer"] = layer
    return {
        "task": "binary",
        "class_names": ["absent", "blob"],
        "preprocessing": {"input_size": [SIZE, SIZE], "channels": 1},
        "members": [member],
        "_base_dir": str(tmp_path),
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gradcam")
    return tmp, {"plain": _train_and_save(plain_model, tmp), "nested": _train_and_save(nested_model, tmp)}


@pytest.mark.parametrize("kind", ["plain", "nested"])
def test_heatmap_peak_falls_inside_the_blob(models, kind):
    tmp, paths = models
    runner = runtime.load_ensemble(_spec(paths[kind], tmp))
    x, y, centres = _blob_images(200, np.random.default_rng(99))
    pos = np.flatnonzero(y)

    def hit_rate(target):
        hits = 0
        for result, (r, c) in zip(runner.predict(x[pos], gradcam=True, target_class=target), centres[pos], strict=True):
            assert result.heatmap.shape == (SIZE, SIZE)
            assert 0.0 <= result.heatmap.min() and result.heatmap.max() <= 1.0
            pr, pc = np.unravel_index(np.argmax(result.heatmap), result.heatmap.shape)
            hits += (pr - r) ** 2 + (pc - c) ** 2 <= RADIUS**2
        return hits / len(pos)

    assert hit_rate("blob") >= 0.9, kind
    # control: the map for the other class (what argues against a blob) must not point at it, so the
    # game is decided by the gradient's sign and not by where the image is bright
    assert hit_rate("absent") <= 0.5, kind
    # and the model itself learnt the task, so the game is not played on noise
    labels = [r.labels[0] for r in runner.predict(x, gradcam=False)]
    assert np.mean([(lab == "blob") == bool(t) for lab, t in zip(labels, y, strict=True)]) >= 0.9


def test_nested_model_feature_layer_is_found_inside_the_base(models):
    tmp, paths = models
    model = runtime.load_model(paths["nested"])
    assert runtime.find_last_conv(model) == "base/c2_relu"
    # the textbook recipe fails on this model: the inner tensor is not connected to the outer input
    with pytest.raises(ValueError):
        keras.Model(model.inputs, [model.get_layer("base").get_layer("c2_relu").output, model.output])


def test_fused_pass_matches_the_eager_textbook_computation(models):
    """Same numbers as a separate eager GradientTape on the flat plain model."""
    import tensorflow as tf

    tmp, paths = models
    runner = runtime.load_ensemble(_spec(paths["plain"], tmp))
    x, y, _ = _blob_images(6, np.random.default_rng(3))
    fused = runner.predict(x, gradcam=True, target_class="blob")
    model = runtime.load_model(paths["plain"])
    grad_model = keras.Model(model.inputs, [model.get_layer("c2_relu").output, model.output])
    for i, result in enumerate(fused):
        with tf.GradientTape() as tape:
            features, logit = grad_model(x[i : i + 1], training=False)
            score = logit[:, 0]
        grads = tape.gradient(score, features)
        cam = tf.nn.relu(tf.reduce_sum(tf.reduce_mean(grads, axis=(1, 2), keepdims=True) * features, -1))[0].numpy()
        expected = resize(cam, (SIZE, SIZE))
        expected = expected / (expected.max() + 1e-7)
        assert np.allclose(result.heatmap, expected, atol=1e-4)
        assert result.probabilities["blob"] == pytest.approx(float(tf.sigmoid(logit[0, 0])), abs=1e-5)


def test_confident_negative_gives_a_finite_map_not_nan(models):
    tmp, paths = models
    runner = runtime.load_ensemble(_spec(paths["nested"], tmp))
    results = runner.predict(np.zeros((2, SIZE, SIZE, 1), np.float32), gradcam=True)
    for result in results:
        assert np.isfinite(result.heatmap).all() and np.isfinite(result.heatmap_std).all()
        assert result.target_class == "absent"


def test_stored_layer_name_is_used_and_a_wrong_one_refused(models):
    tmp, paths = models
    runner = runtime.load_ensemble(_spec(paths["nested"], tmp, layer="base/c1"))
    assert runner.members[0].layer == "base/c1"
    with pytest.raises(runtime.ModelRefused):
        runtime.load_ensemble(_spec(paths["nested"], tmp, layer="base/no_such_layer"))


def test_spec_shapes_are_checked_against_the_model(models):
    tmp, paths = models
    spec = _spec(paths["plain"], tmp)
    spec["preprocessing"]["input_size"] = [28, 28]
    with pytest.raises(runtime.ModelRefused, match="expects input"):
        runtime.load_ensemble(spec)
    spec = _spec(paths["plain"], tmp)
    spec.update(task="multiclass", class_names=["a", "b", "c"])
    with pytest.raises(runtime.ModelRefused, match="output"):
        runtime.load_ensemble(spec)


def test_lambda_layer_is_refused_with_a_clear_reason(tmp_path):
    inp = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inp)
    model = keras.Model(inp, _head(_conv_stack(x)))
    path = tmp_path / "unsafe.keras"
    model.save(path)
    # Keras itself refuses it in safe mode; we refuse before Keras deserialises anything
    with pytest.raises(ValueError):
        keras.saving.load_model(path, safe_mode=True)
    with pytest.raises(runtime.ModelRefused, match="Lambda layer"):
        runtime.load_model(path)
    spec = _spec(path, tmp_path)
    with pytest.raises(runtime.ModelRefused, match="Lambda layer"):
        runtime.load_ensemble(spec)


def test_a_file_that_is_not_a_keras_archive_is_refused(tmp_path):
    path = tmp_path / "junk.keras"
    path.write_bytes(b"not a zip")
    with pytest.raises(runtime.ModelRefused, match="not a Keras 3"):
        runtime.load_model(path)


def test_results_serialise_to_json(models):
    tmp, paths = models
    runner = runtime.load_ensemble(_spec(paths["plain"], tmp))
    result = runner.predict(np.zeros((1, SIZE, SIZE, 1), np.float32), gradcam=True)[0]
    line = json.loads(json.dumps(result.to_json()))
    assert set(line) == {"probabilities", "labels", "members", "uncertainty", "target_class"}
    assert sum(line["probabilities"].values()) == pytest.approx(1.0)


def test_models_are_loaded_once_and_reloaded_when_the_file_changes(models, tmp_path):
    tmp, paths = models
    copy = tmp_path / "copy.keras"
    copy.write_bytes(paths["plain"].read_bytes())
    first = runtime.load_ensemble(_spec(copy, tmp_path))
    same = runtime.load_ensemble(_spec(copy, tmp_path))
    assert same is first
    renamed = _spec(copy, tmp_path)
    renamed["members"][0]["name"] = "other"
    other = runtime.load_ensemble(renamed)
    assert other.members[0] is first.members[0]  # one model in memory, two ensembles
    assert other.predict(np.zeros((1, SIZE, SIZE, 1), np.float32))[0].members[0]["name"] == "other"
    copy.write_bytes(paths["nested"].read_bytes())  # a new version under the same name
    reloaded = runtime.load_ensemble(_spec(copy, tmp_path))
    assert reloaded.members[0] is not first.members[0]
    assert reloaded.members[0].layer.startswith("base/")
