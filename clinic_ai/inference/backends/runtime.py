"""Loading model versions safely and running an ensemble with Grad-CAM in one compiled pass.

``load_ensemble(spec)`` -> ``Runner``; ``runner.predict(batch, gradcam=True)`` -> one
``ImageResult`` per image. Per member there is ONE ``tf.function`` with a fixed input signature
(batch dimension None) that returns the logits and, from the same forward pass, the Grad-CAM term
for every class: the gradient of each class's LOGIT with respect to the last convolutional
feature map (probabilities saturate: a confident sigmoid has a float32 gradient of exactly 0).
The ensemble decides the target class afterwards from all members' outputs and picks that class's
map, so nothing runs twice. For a binary model the "normal" map is the negative of the "pneumonia"
one before the ReLU, so one gradient serves both.

Nested base models (``h = base(inp)``, the transfer-learning shape): the last convolution's output
tensor lives in the base model's own graph and is not connected to the outer model's input, so the
textbook ``Model(outer.inputs, inner_layer.output)`` fails. ``feature_model`` re-runs the outer
graph on a fresh input and descends into nested models layer by layer, which yields a flat model
with the same layers (shared weights) whose outputs are [feature map, logits].

Models are loaded once per process and kept (keyed by path, size and modification time), with
``safe_mode=True``; a Lambda layer (arbitrary Python) is refused before anything is deserialised.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from clinic_ai.inference import ensemble as ens  # noqa: E402
from clinic_ai.inference.preprocess import PreprocessSpec, resize, to_model_input  # noqa: E402

__all__ = ["ImageResult", "ModelRefused", "Runner", "feature_model", "find_last_conv", "load_ensemble", "load_model"]

_EPS = 1e-7
TTA_SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def shift_images(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(N, H, W, C) moved by (dy, dx) pixels, the uncovered edge repeated (no wrap-around)."""
    h, w = x.shape[1:3]
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return x[:, rows][:, :, cols]


MAX_BATCH = 64


def configure_devices() -> str:
    """Memory growth on every GPU (several workers may share one); otherwise all CPU cores."""
    gpus = tf.config.list_physical_devices("GPU")
    try:
        if gpus:
            for gpu in gpus:
                tf.config.experimental.set_memory_growth(gpu, True)
            return "gpu"
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        tf.config.threading.set_intra_op_parallelism_threads(cores)
        tf.config.threading.set_inter_op_parallelism_threads(min(cores, 2))
    except RuntimeError:
        pass  # TensorFlow already initialised by the host process: its settings stand
    return "gpu" if gpus else "cpu"


DEVICE = configure_devices()


class ModelRefused(Exception):
    """A model file that will not be run, with a reason an administrator can act on."""


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _class_names_in(config) -> set[str]:
    found = set()
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("class_name"), str):
                found.add(item["class_name"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _refuse_lambda_in_archive(path: str) -> None:
    """Read the archive's config.json and refuse Lambda layers before Keras deserialises anything."""
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ModelRefused("The model file is not a Keras 3 .keras archive.") from exc
    if "Lambda" in _class_names_in(config):
        raise ModelRefused(
            "The model contains a Lambda layer, which can run arbitrary code when loaded; it is refused. "
            "Rebuild the model with standard or registered custom layers."
        )


def _walk_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk_layers(layer)


def load_model(path: str | os.PathLike[str]) -> keras.Model:
    path = os.fspath(path)
    _refuse_lambda_in_archive(path)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise ModelRefused(
                "The model contains code that cannot be loaded safely (safe_mode); it is refused."
            ) from exc
        raise ModelRefused("The model file could not be loaded by Keras.") from exc
    except Exception as exc:
        raise ModelRefused("The model file could not be loaded by Keras.") from exc
    if any(isinstance(layer, keras.layers.Lambda) for layer in _walk_layers(model)):
        raise ModelRefused("The model contains a Lambda layer, which can run arbitrary code; it is refused.")
    return model


# --------------------------------------------------------------------------------------------------
# Grad-CAM on flat and nested models
# --------------------------------------------------------------------------------------------------


def _rewire(model: keras.Model, inputs, prefix: str, record: list):
    """Call ``model``'s layers on ``inputs`` one by one, descending into nested models.

    ``record`` receives (layer path, output tensor) for every layer, in execution order.
    """
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:
            x = inputs
            for layer in model.layers:
                x = _call(layer, (x,), {}, prefix, record)
            return x
        model = graph

    def operation_fn(op):
        return lambda *args, **kwargs: _call(op, args, kwargs, prefix, record)

    return model._run_through_graph(inputs, operation_fn=operation_fn)


def _call(op, args, kwargs, prefix, record):
    if isinstance(op, keras.Model):
        inner = args[0] if len(args) == 1 else list(args)
        return _rewire(op, inner, f"{prefix}{op.name}/", record)
    out = op(*args, **kwargs)
    record.append((f"{prefix}{op.name}", out))
    return out


def _spatial(tensor) -> bool:
    shape = getattr(tensor, "shape", None)
    return shape is not None and len(shape) == 4 and (shape[1] or 0) > 1 and (shape[2] or 0) > 1


def feature_model(model: keras.Model, layer: str | None = None) -> tuple[keras.Model, str]:
    """A flat model with the same layers: input -> [feature map of ``layer``, logits].

    ``layer`` is a path ("base/s3_out" inside a nested model); by default the last layer whose output
    is 4-D with height and width above 1 (a 1x1 "logits" convolution is not a feature map).
    """
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelRefused("Only models with one input and one output are supported.")
    inp = keras.Input(model.inputs[0].shape[1:], name="image")
    record: list = []
    logits = _rewire(model, inp, "", record)
    candidates = [(name, t) for name, t in record if _spatial(t)]
    if not candidates:
        raise ModelRefused("The model has no convolutional feature map for Grad-CAM.")
    if layer is None:
        layer, features = candidates[-1]
    else:
        matches = [t for name, t in candidates if name == layer]
        if not matches:
            raise ModelRefused("The stored Grad-CAM layer is not a feature map of this model.")
        features = matches[-1]
    return keras.Model(inp, [features, logits], name=f"{model.name}_gradcam"), layer


def find_last_conv(model: keras.Model) -> str:
    return feature_model(model)[1]


def _compiled(flat: keras.Model, input_shape, outputs: int):
    """One traced graph per member: logits and, per class output, sum_k alpha_k A_k (before ReLU)."""

    @tf.function(input_signature=[tf.TensorSpec([None, *input_shape], tf.float32)], reduce_retracing=True)
    def run(x):
        with tf.GradientTape(persistent=outputs > 1) as tape:
            tape.watch(x)  # records the graph even when every weight is frozen
            features, logits = flat(x, training=False)
            scores = [tf.reduce_sum(logits[:, k]) for k in range(outputs)]
        maps = []
        for score in scores:
            grads = tape.gradient(score, features)
            alpha = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            maps.append(tf.reduce_sum(alpha * features, axis=-1))
        del tape
        return logits, tf.stack(maps, axis=1)

    @tf.function(input_signature=[tf.TensorSpec([None, *input_shape], tf.float32)], reduce_retracing=True)
    def logits_only(x):
        return flat(x, training=False)[1]

    return run, logits_only


@dataclass
class _Member:
    path: str
    model: keras.Model
    layer: str
    run: object
    logits_only: object


_CACHE: dict[tuple, _Member] = {}
_CACHE_LOCK = threading.Lock()


def _member(path: str, layer: str | None) -> _Member:
    real = os.path.realpath(path)
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns, layer)
    with _CACHE_LOCK:
        member = _CACHE.get(key)
        if member is None:
            model = load_model(real)
            flat, layer_found = feature_model(model, layer)
            outputs = int(model.outputs[0].shape[-1])
            run, logits_only = _compiled(flat, tuple(model.inputs[0].shape[1:]), outputs)
            # a replaced file's old graphs are dropped, so a long-lived worker does not accumulate them
            for stale in [k for k in _CACHE if k[0] == real and k[1:3] != key[1:3]]:
                del _CACHE[stale]
            member = _CACHE[key] = _Member(real, model, layer_found, run, logits_only)
    return member


# --------------------------------------------------------------------------------------------------
# Ensemble runner
# --------------------------------------------------------------------------------------------------


@dataclass
class ImageResult:
    probabilities: dict[str, float]
    labels: list[str]  # the class(es) at the stored threshold(s)
    members: list[dict]  # name, weight, probabilities
    uncertainty: dict[str, float]  # member_std (of the target class), entropy, mutual_information
    target_class: str  # the class the heatmaps explain
    heatmap: np.ndarray | None = None  # (H, W) in [0, 1]: weighted mean of member maps
    heatmap_std: np.ndarray | None = None  # (H, W): pixel-wise disagreement between members
    member_heatmaps: dict[str, np.ndarray] = field(default_factory=dict)

    def to_json(self) -> dict:
        """Everything but the arrays, for a JSON line or a result row."""
        return {
            "probabilities": self.probabilities,
            "labels": self.labels,
            "members": self.members,
            "uncertainty": self.uncertainty,
            "target_class": self.target_class,
        }


def _spec_dict(spec) -> tuple[dict, Path]:
    if isinstance(spec, dict):
        return spec, Path(spec.get("_base_dir", "."))
    path = Path(spec)
    return json.loads(path.read_text()), path.parent


class Runner:
    def __init__(self, spec: dict, base_dir: Path):
        self.spec = spec
        self.task = spec.get("task", "binary")
        if self.task not in ens.TASKS:
            raise ModelRefused("Unknown task type in the ensemble spec.")
        self.class_names = list(spec["class_names"])
        self.preprocessing = PreprocessSpec.from_json(spec["preprocessing"])
        self.temperature = float(spec.get("temperature", 1.0))
        self.threshold = spec.get("threshold", 0.5)
        self.combination = spec.get("combination", "mean_logit")
        # Test-time augmentation: each member's logits are the mean over the image and its one-pixel
        # shifts (TTA_SHIFTS); heatmaps come from the unshifted image only.
        self.tta = bool(spec.get("tta", False))
        outputs = 1 if self.task == "binary" else len(self.class_names)
        if self.task == "binary" and len(self.class_names) != 2:
            raise ModelRefused("A binary ensemble needs exactly two class names.")
        want_in = (*self.preprocessing.input_size, self.preprocessing.channels)
        self.members: list[_Member] = []
        self.member_names: list[str] = [str(m["name"]) for m in spec["members"]]
        for m in spec["members"]:
            member = _member(str(base_dir / m["file"]), m.get("last_conv_layer"))
            got_in = tuple(member.model.inputs[0].shape[1:])
            got_out = tuple(member.model.outputs[0].shape[1:])
            if got_in != want_in:
                raise ModelRefused(f"Member {m['name']!r} expects input {got_in}, the spec says {want_in}.")
            if got_out != (outputs,):
                raise ModelRefused(f"Member {m['name']!r} has output {got_out}, the spec needs ({outputs},).")
            self.members.append(member)
        self.weights = ens.normalised_weights([m.get("weight", 1.0) for m in spec["members"]], len(self.members))

    def preprocess(self, pixels: np.ndarray) -> np.ndarray:
        return to_model_input(pixels, self.preprocessing)

    def predict_pixels(
        self, images: list[np.ndarray], *, gradcam: bool = False, target_class: str | None = None
    ) -> list[ImageResult]:
        """Display pixels (``imaging.display_pixels``) -> results, heatmaps at each image's own size."""
        x = np.stack([self.preprocess(p) for p in images])
        sizes = [tuple(p.shape[:2]) for p in images]
        return self.predict(x, gradcam=gradcam, target_class=target_class, image_sizes=sizes)

    def predict(
        self,
        batch: np.ndarray,
        *,
        gradcam: bool = False,
        target_class: str | None = None,
        image_sizes: list[tuple[int, int]] | None = None,
    ) -> list[ImageResult]:
        """Preprocessed images (N, h, w, c) -> one result per image.

        Heatmaps (``gradcam=True``) explain the ensemble's decision unless ``target_class`` names
        another class; they are upsampled to ``image_sizes[i]`` (default: the model input size).
        """
        x = np.asarray(batch, dtype=np.float32)
        expected = (*self.preprocessing.input_size, self.preprocessing.channels)
        if x.ndim != 4 or x.shape[1:] != expected:
            raise ValueError(f"batch must have shape (N, {', '.join(map(str, expected))})")
        if image_sizes is not None and len(image_sizes) != len(x):
            raise ValueError("one image size per image")
        results: list[ImageResult] = []
        for start in range(0, len(x), MAX_BATCH):
            chunk = x[start : start + MAX_BATCH]
            sizes = image_sizes[start : start + MAX_BATCH] if image_sizes is not None else None
            results.extend(self._predict_chunk(chunk, gradcam, target_class, sizes))
        return results

    def _predict_chunk(self, x, gradcam, target_class, sizes):
        tensor = tf.constant(x)
        logits, cams = [], []
        for member in self.members:
            if gradcam:
                z, s = member.run(tensor)
                cams.append(s.numpy())
            else:
                z = member.logits_only(tensor)
            z = z.numpy()
            if self.tta:
                shifted = [member.logits_only(tf.constant(shift_images(x, dy, dx))).numpy() for dy, dx in TTA_SHIFTS]
                z = np.mean([z, *shifted], axis=0)
            logits.append(z)
        combined = ens.combine(
            np.stack(logits),
            task=self.task,
            weights=self.weights,
            temperature=self.temperature,
            combination=self.combination,
            threshold=self.threshold,
        )
        targets = combined.target
        if target_class is not None:
            if target_class not in self.class_names:
                raise ValueError("unknown target class")
            targets = np.full(len(x), self.class_names.index(target_class))

        out = []
        for i in range(len(x)):
            t = int(targets[i])
            result = ImageResult(
                probabilities={c: float(p) for c, p in zip(self.class_names, combined.probabilities[i], strict=True)},
                labels=[c for c, d in zip(self.class_names, combined.decisions[i], strict=True) if d],
                members=[
                    {
                        "name": name,
                        "weight": float(w),
                        "probabilities": {
                            c: float(p)
                            for c, p in zip(self.class_names, combined.member_probabilities[k, i], strict=True)
                        },
                    }
                    for k, (name, w) in enumerate(zip(self.member_names, self.weights, strict=True))
                ],
                uncertainty={
                    "member_std": float(combined.member_std[i, t]),
                    "entropy": float(combined.entropy[i]),
                    "mutual_information": float(combined.mutual_information[i]),
                },
                target_class=self.class_names[t],
            )
            if gradcam:
                size = tuple(sizes[i]) if sizes is not None else self.preprocessing.input_size
                maps = np.stack([self._member_map(cam[i], t, size) for cam in cams])
                result.heatmap, result.heatmap_std = ens.combine_maps(maps, self.weights)
                result.member_heatmaps = dict(zip(self.member_names, maps, strict=True))
            out.append(result)
        return out

    def _member_map(self, cam: np.ndarray, target: int, size) -> np.ndarray:
        if self.task == "binary":
            raw = cam[0] if target == 1 else -cam[0]
        else:
            raw = cam[target]
        m = resize(np.maximum(raw, 0.0), size)
        return (m / (m.max() + _EPS)).astype(np.float32)


_RUNNERS: dict[tuple, Runner] = {}


def load_ensemble(spec: dict | str | os.PathLike[str]) -> Runner:
    """An ensemble spec (the dict of ensemble.json, or its path; member files relative to it) -> Runner.

    A dict spec may carry ``_base_dir`` for its member files. Runners and members are cached per
    process: calling this for every batch is cheap.
    """
    data, base_dir = _spec_dict(spec)
    files = []
    for m in data["members"]:
        st = os.stat(base_dir / m["file"])
        files.append((str((base_dir / m["file"]).resolve()), st.st_size, st.st_mtime_ns))
    key = (json.dumps(data, sort_keys=True, default=str), tuple(files))
    runner = _RUNNERS.get(key)
    if runner is None:
        runner = _RUNNERS[key] = Runner(data, base_dir)
    return runner
