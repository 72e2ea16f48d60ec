"""Simulate judged streams to measure how the gate behaves when it is looked at again and again.

Pure numpy. The model of a stream: each judged item has a true label among
``n_labels`` equally likely ones; every inspector is right with probability
``inspector_accuracy`` and otherwise picks one of the other labels at random; the
model likewise with ``model_accuracy``; all errors are independent. A share
``double_share`` of judged items goes to a panel: of three inspectors with
probability ``panel_of_three``, else of two. The non-inferiority figure of a panel
item is the share of its inspectors the model agrees with minus the share of its
inspector pairs that agree with each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri
from scipy.stats import t as student_t

from analytics.stats.sequential import beta_binomial_clears, empirical_bernstein_bounds


@dataclass(frozen=True)
class StreamModel:
    """How judged items, inspectors and the model behave in a simulated stream."""

    model_accuracy: float = 0.95
    inspector_accuracy: float = 0.95
    n_labels: int = 10
    double_share: float = 0.10
    panel_of_three: float = 0.3

    def noninferiority_mean(self) -> float:
        """Return the true mean paired difference of this stream model."""
        wrong = 1.0 / (self.n_labels - 1)
        q, r = self.model_accuracy, self.inspector_accuracy
        model_inspector = q * r + (1.0 - q) * (1.0 - r) * wrong
        inspector_pair = r * r + (1.0 - r) ** 2 * wrong
        return model_inspector - inspector_pair


def _labels(
    rng: np.random.Generator, accuracy: float, n_labels: int, shape: tuple[int, ...]
) -> np.ndarray:
    """Return labels given against true label 0: right with the accuracy, else another at random."""
    wrong = rng.integers(1, n_labels, size=shape)
    return np.where(rng.random(shape) < accuracy, 0, wrong)


def paired_differences(
    *, rng: np.random.Generator, model: StreamModel, streams: int, items: int
) -> np.ndarray:
    """Return streams x items paired differences of panel items, in judgment order."""
    shape = (streams, items)
    inspectors = _labels(rng, model.inspector_accuracy, model.n_labels, (*shape, 3))
    predicted = _labels(rng, model.model_accuracy, model.n_labels, shape)
    three = rng.random(shape) < model.panel_of_three
    agrees = (inspectors == predicted[..., None]).astype(np.float64)
    share = np.where(three, agrees.mean(axis=-1), agrees[..., :2].mean(axis=-1))
    first, second, third = (inspectors[..., i] for i in range(3))
    pairs_of_three = ((first == second) * 1.0 + (first == third) + (second == third)) / 3.0
    pairs = np.where(three, pairs_of_three, (first == second) * 1.0)
    return share - pairs


def panel_counts(
    *, rng: np.random.Generator, model: StreamModel, streams: int, looks: np.ndarray
) -> np.ndarray:
    """Return how many panel items each stream has at each look (a count of judged items)."""
    steps = np.diff(np.concatenate(([0], looks)))
    return np.cumsum(
        rng.binomial(steps[None, :], model.double_share, size=(streams, looks.size)), axis=1
    )


def noninferiority_passes(
    *,
    differences: np.ndarray,
    counts: np.ndarray,
    judged: np.ndarray,
    margin: float,
    min_judged: int,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Return streams x looks: do the anytime-valid and the fixed-sample bounds clear -margin."""
    lows, _ = empirical_bernstein_bounds(
        values=differences, low=-1.0, high=1.0, confidence=confidence
    )
    size = np.arange(1, differences.shape[1] + 1, dtype=np.float64)
    mean = np.cumsum(differences, axis=1) / size
    squares = np.cumsum(differences**2, axis=1)
    variance = np.maximum(squares - size * mean**2, 0.0) / np.maximum(size - 1.0, 1.0)
    quantile = student_t.ppf(confidence, np.maximum(size - 1.0, 1.0))
    fixed_lows = mean - quantile * np.sqrt(variance / size)
    index = np.clip(counts - 1, 0, differences.shape[1] - 1)
    ready = (judged[None, :] >= min_judged) & (counts >= 2)
    anytime = ready & (np.take_along_axis(lows, index, axis=1) >= -margin)
    fixed = ready & (np.take_along_axis(fixed_lows, index, axis=1) >= -margin)
    return anytime, fixed


def agreement_passes(
    *,
    rng: np.random.Generator,
    agreement: float,
    streams: int,
    looks: np.ndarray,
    floor: float,
    min_judged: int,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Return streams x looks: do the anytime-valid and fixed Wilson agreement bounds clear it."""
    steps = np.diff(np.concatenate(([0], looks)))
    agreed = np.cumsum(rng.binomial(steps[None, :], agreement, size=(streams, looks.size)), axis=1)
    n = np.broadcast_to(looks[None, :], agreed.shape).astype(np.float64)
    ready = n >= min_judged
    anytime = ready & beta_binomial_clears(
        successes=agreed, n=n, threshold=floor, confidence=confidence
    )
    # Wilson's one-sided lower bound >= floor, solved for the count: the score test at the floor.
    z = float(ndtri(confidence))
    rate = agreed / n
    wilson_low = (
        rate + z * z / (2 * n) - z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    ) / (1 + z * z / n)
    fixed = ready & (wilson_low >= floor)
    return anytime, fixed


def first_pass(passes: np.ndarray, looks: np.ndarray) -> np.ndarray:
    """Return the judged items at each stream's first pass, inf when it never passes."""
    return np.where(passes.any(axis=1), looks[np.argmax(passes, axis=1)], np.inf)
