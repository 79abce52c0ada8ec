"""Ensemble + Grad-CAM throughput: our runtime against the tutorial path, same images, same models.

    .venv/bin/python bench/inference.py [--images 48] [--rounds 3]

Ours: the shipped demo ensemble through ``runtime.load_ensemble(...).predict(batch, gradcam=True)``
(models loaded once, one traced tf.function per member returning logits and Grad-CAM together,
batched). Baseline, as tutorials write it: per image, ``model.predict`` per member, then a separate
eager GradientTape Grad-CAM per member (on the same flat [feature map, logits] model, since the
textbook ``Model(outer.inputs, inner.output)`` cannot even be built for the nested ResNet member),
maps normalised, averaged. The sides alternate in rounds so a busy machine slows both alike; the
outputs are compared so both sides provably do the same work. Peak memory is VmHWM of this process
after the runtime side alone (what a worker holds) and at the end. Prints one JSON line.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from clinic_ai.inference import ensemble as ens  # noqa: E402
from clinic_ai.inference.backends import runtime  # noqa: E402
from clinic_ai.inference.preprocess import resize  # noqa: E402

DEMO = Path(runtime.__file__).resolve().parent.parent / "demo"


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tutorial_path(members, grad_models, weights, x, size):
    """Per image, per member: model.predict, then an eager GradientTape Grad-CAM."""
    out = []
    for i in range(len(x)):
        img = x[i : i + 1]
        logits = [m.predict(img, verbose=0) for m in members]
        combined = ens.combine(np.stack(logits), task="binary", weights=weights)
        target = int(combined.target[0])
        maps = []
        for grad_model in grad_models:
            with tf.GradientTape() as tape:
                features, z = grad_model(img)
                score = z[:, 0] if target == 1 else -z[:, 0]
            grads = tape.gradient(score, features)
            pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
            heatmap = tf.nn.relu(features[0] @ pooled[..., tf.newaxis])[..., 0].numpy()
            heatmap = resize(heatmap, size)
            maps.append(heatmap / (heatmap.max() + 1e-7))
        mean, _ = ens.combine_maps(np.stack(maps), weights)
        out.append((combined.probabilities[0, 1], mean))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    data = np.load(DEMO / "pneumoniamnist_trainval.npz")
    runner = runtime.load_ensemble(DEMO / "ensemble.json")
    x = np.stack([runner.preprocess(im) for im in data["val_images"][: args.images]])
    size = runner.preprocessing.input_size

    runner.predict(x[:2], gradcam=True)  # trace once, as a worker does at its first batch
    ours_times = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        ours = runner.predict(x, gradcam=True)
        ours_times.append(time.perf_counter() - t0)
    single = []
    for i in range(10):
        t0 = time.perf_counter()
        runner.predict(x[i : i + 1], gradcam=True)
        single.append(time.perf_counter() - t0)
    rss_ours = vm_hwm_mb()

    members = [m.model for m in runner.members]
    grad_models = [runtime.feature_model(m.model, m.layer)[0] for m in runner.members]
    tutorial_path(members, grad_models, runner.weights, x[:1], size)  # warm-up
    per_round = np.array_split(np.arange(len(x)), args.rounds)
    base_times, base = [], []
    for idx in per_round:
        t0 = time.perf_counter()
        base.extend(tutorial_path(members, grad_models, runner.weights, x[idx], size))
        base_times.append((time.perf_counter() - t0) / len(idx) * len(x))
        t0 = time.perf_counter()
        runner.predict(x, gradcam=True)
        ours_times.append(time.perf_counter() - t0)

    # same answers on both sides (the baseline has no temperature: compare the uncalibrated mean logit)
    raw = runtime.Runner({**runner.spec, "temperature": 1.0}, DEMO).predict(x, gradcam=True)
    prob_diff = max(abs(r.probabilities["pneumonia"] - b[0]) for r, b in zip(raw, base, strict=True))
    map_diff = max(float(np.abs(r.heatmap - b[1]).max()) for r, b in zip(raw, base, strict=True))

    ours_ips = len(x) / statistics.median(ours_times)
    base_ips = len(x) / statistics.median(base_times)
    print(
        json.dumps(
            {
                "ours_images_per_s": round(ours_ips, 1),
                "baseline_images_per_s": round(base_ips, 2),
                "speedup": round(ours_ips / base_ips, 1),
                "ours_single_image_ms": round(1000 * statistics.median(single), 1),
                "peak_rss_mb": round(rss_ours, 1),
                "peak_rss_mb_after_baseline": round(vm_hwm_mb(), 1),
                "images": len(x),
                "members": len(members),
                "batch": runtime.MAX_BATCH,
                "gradcam": True,
                "max_probability_difference": float(f"{prob_diff:.2g}"),
                "max_heatmap_difference": float(f"{map_diff:.2g}"),
                "device": runtime.DEVICE,
                "load_average": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
            }
        )
    )
    _ = ours
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
