"""Agreement and consensus between readers: pure functions over plain values (numpy only, no Django).

Categories are any hashable values; for multi-label projects the caller passes each reader's set of
classes as one category (a frozenset), so two readers agree on an image only when their sets match.
"""

from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two readers who each rated the same subjects, in the same order.

    None when it is undefined: no subjects, or chance agreement is already certain (both readers
    used one and the same category throughout).
    """
    if len(first) != len(second):
        raise ValueError("Both readers must rate the same subjects")
    if not first:
        return None
    categories = sorted(set(first) | set(second), key=repr)
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)))
    for a, b in zip(first, second, strict=True):
        table[index[a], index[b]] += 1
    n = table.sum()
    observed = np.trace(table) / n
    expected = float((table.sum(axis=1) / n) @ (table.sum(axis=0) / n))
    if np.isclose(expected, 1.0):
        return None
    return float((observed - expected) / (1 - expected))


def fleiss_kappa(counts) -> float | None:
    """Fleiss' kappa from a subjects × categories table of how many readers put each subject in each
    category. Every subject must have the same number of readers (at least two).

    None when it is undefined (no subjects, or every rating in one category).
    """
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2 or table.shape[0] == 0:
        return None
    raters = table.sum(axis=1)
    if not np.allclose(raters, raters[0]) or raters[0] < 2:
        raise ValueError("Every subject needs the same number of readers, at least two")
    n = raters[0]
    p_j = table.sum(axis=0) / table.sum()
    p_i = ((table * table).sum(axis=1) - n) / (n * (n - 1))
    p_bar = p_i.mean()
    p_e = float((p_j * p_j).sum())
    if np.isclose(p_e, 1.0):
        return None
    return float((p_bar - p_e) / (1 - p_e))


def category_counts(ratings: Sequence[Sequence[Hashable]]) -> tuple[np.ndarray, list]:
    """Per-subject lists of ratings -> (subjects × categories count table, categories)."""
    categories = sorted({r for subject in ratings for r in subject}, key=repr)
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(ratings), len(categories)), dtype=int)
    for row, subject in enumerate(ratings):
        for rating in subject:
            table[row, index[rating]] += 1
    return table, categories


def project_kappa(ratings: Sequence[Sequence[Hashable]]) -> tuple[str, float | None]:
    """Cohen's kappa when each subject has two readers, Fleiss' kappa when more: (name, value)."""
    if not ratings:
        return "", None
    if len({len(r) for r in ratings}) != 1:
        raise ValueError("Every subject needs the same number of readers")
    if len(ratings[0]) == 2:
        return "Cohen's kappa", cohen_kappa([r[0] for r in ratings], [r[1] for r in ratings])
    if len(ratings[0]) > 2:
        return "Fleiss' kappa", fleiss_kappa(category_counts(ratings)[0])
    return "", None


def majority(ratings: Sequence[Hashable]) -> Hashable | None:
    """The rating given by more than half of the readers, or None (a tie, or no majority)."""
    if not ratings:
        return None
    value, count = Counter(ratings).most_common(1)[0]
    return value if count * 2 > len(ratings) else None
