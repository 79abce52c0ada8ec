"""Combining member outputs into one ensemble opinion: pure numpy, shared by web and worker.

Members give LOGITS, shape (members, images, outputs): one output for a binary task (the logit of
the positive class, the second class name), one per class for multi-class (softmax) and one per
label for multi-label (independent sigmoids).

The combination (``combination`` in the spec):

* ``mean_logit`` (default): the weighted mean of the member logits, divided by the temperature, then
  the activation. Averaging logits rather than probabilities keeps a calibrated scale once a single
  temperature is fitted on the ensemble's mean logit (Guo et al. 2017, fitted after averaging).
* ``mean_probability``: the weighted mean of the member probabilities; the temperature is applied to
  the logit of that mean (log-odds for sigmoid outputs, log-probabilities for softmax), so T = 1
  leaves the plain mean untouched.

Uncertainty comes from the members' own (uncalibrated) probabilities, what each model says:
the weighted standard deviation per class, the entropy of the ensemble's probabilities and the
mutual information (entropy of the weighted mean of member probabilities minus the weighted mean
of their entropies: how much the members disagree, not how unsure they all are). Nats throughout;
multi-label tasks sum the per-label binary values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TASKS = ("binary", "multiclass", "multilabel")
COMBINATIONS = ("mean_logit", "mean_probability")
_EPS = 1e-12


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    # The two-branch form never overflows exp().
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def class_probabilities(logits: np.ndarray, task: str) -> np.ndarray:
    """Logits (..., outputs) -> probabilities per class name (..., classes).

    Binary tasks have one output and two classes: [1 - p, p]. Multi-label probabilities do not sum to 1.
    """
    if task == "binary":
        p = sigmoid(logits[..., 0])
        return np.stack([1.0 - p, p], axis=-1)
    if task == "multiclass":
        return softmax(logits)
    if task == "multilabel":
        return sigmoid(logits)
    raise ValueError(f"unknown task {task!r}")


def _entropy(p: np.ndarray, task: str) -> np.ndarray:
    """Entropy in nats of probabilities (..., classes)."""
    q = np.clip(p, _EPS, 1.0)
    if task == "multilabel":
        r = np.clip(1.0 - p, _EPS, 1.0)
        return -(p * np.log(q) + (1.0 - p) * np.log(r)).sum(axis=-1)
    return -(p * np.log(q)).sum(axis=-1)


def _logit_of(p: np.ndarray, task: str) -> np.ndarray:
    """Inverse of the activation, up to a constant per image (enough for softmax)."""
    q = np.clip(p, _EPS, 1.0 - 1e-15)
    if task == "binary":
        return np.log(q[..., 1:2]) - np.log1p(-q[..., 1:2])
    if task == "multiclass":
        return np.log(q)
    return np.log(q) - np.log1p(-q)


@dataclass(frozen=True)
class Combined:
    probabilities: np.ndarray  # (images, classes): the ensemble's, calibrated
    member_probabilities: np.ndarray  # (members, images, classes): each member's own
    member_std: np.ndarray  # (images, classes): weighted std of the member probabilities
    entropy: np.ndarray  # (images,): of the ensemble's probabilities
    mutual_information: np.ndarray  # (images,)
    decisions: np.ndarray  # (images, classes) bool: the label(s) at the threshold(s)
    target: np.ndarray  # (images,) int: the class whose heatmap is shown by default


def normalised_weights(weights, members: int) -> np.ndarray:
    w = np.ones(members) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (members,) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be one non-negative number per member, not all zero")
    return w / w.sum()


def combine(
    member_logits: np.ndarray,
    *,
    task: str,
    weights=None,
    temperature: float = 1.0,
    combination: str = "mean_logit",
    threshold: float | list[float] = 0.5,
) -> Combined:
    """Member logits (members, images, outputs) -> the ensemble's probabilities, uncertainty, label."""
    z = np.asarray(member_logits, dtype=np.float64)
    if z.ndim != 3:
        raise ValueError("member_logits must have shape (members, images, outputs)")
    if task == "binary" and z.shape[-1] != 1:
        raise ValueError("a binary task has exactly one output (the positive class's logit)")
    if combination not in COMBINATIONS:
        raise ValueError(f"unknown combination {combination!r}")
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    w = normalised_weights(weights, z.shape[0])

    member_p = class_probabilities(z, task)  # (M, B, C)
    mean_p = np.tensordot(w, member_p, axes=1)  # (B, C)
    if combination == "mean_logit":
        mean_logit = np.tensordot(w, z, axes=1)
    else:
        mean_logit = _logit_of(mean_p, task)
    probabilities = class_probabilities(mean_logit / temperature, task)

    std = np.sqrt(np.tensordot(w, (member_p - mean_p) ** 2, axes=1))
    entropy = _entropy(probabilities, task)
    mutual_information = np.maximum(_entropy(mean_p, task) - np.tensordot(w, _entropy(member_p, task), axes=1), 0.0)

    decisions = np.zeros_like(probabilities, dtype=bool)
    if task == "binary":
        positive = probabilities[:, 1] >= float(threshold)
        decisions[:, 1] = positive
        decisions[:, 0] = ~positive
        target = positive.astype(int)
    elif task == "multiclass":
        target = probabilities.argmax(axis=1)
        decisions[np.arange(len(target)), target] = True
    else:
        thresholds = np.broadcast_to(np.asarray(threshold, dtype=np.float64), probabilities.shape[1:])
        decisions = probabilities >= thresholds
        target = probabilities.argmax(axis=1)
    return Combined(
        probabilities=probabilities,
        member_probabilities=member_p,
        member_std=std,
        entropy=entropy,
        mutual_information=mutual_information,
        decisions=decisions,
        target=target,
    )


def combine_maps(member_maps: np.ndarray, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Members' normalised heatmaps (members, H, W) -> (weighted mean, weighted pixel-wise std)."""
    maps = np.asarray(member_maps, dtype=np.float64)
    w = normalised_weights(weights, maps.shape[0])
    mean = np.tensordot(w, maps, axes=1)
    std = np.sqrt(np.tensordot(w, (maps - mean) ** 2, axes=1))
    return mean, std
