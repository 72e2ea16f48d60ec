"""The promotion gate under repeated looks: false passes and items to pass, anytime-valid vs fixed.

Simulates judged streams (analytics.gate.streams: ten labels, inspectors 95% right,
10% of items on panels of two or three) and looks at the gate after every 100 judged
items, as a lead checking daily would. Prints, for the non-inferiority criterion and
for the agreement floor alone, how often a candidate that should not pass does, and
how many judged items a good candidate needs, with the anytime-valid bound the gate
uses and with the fixed-sample interval on the same streams. Also times the bounds.
Pure numpy/SciPy: no database, no services.

    .venv/bin/python bench/gate_sequential.py [--streams 4000] [--items 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.gate.rules import GateEvidence, GatePolicyValues, gate_evaluate
from analytics.gate.streams import (
    StreamModel,
    agreement_passes,
    first_pass,
    noninferiority_passes,
    paired_differences,
    panel_counts,
)
from analytics.stats.sequential import empirical_bernstein_bounds

MARGIN = 0.02


def _accuracy_for(mean_difference: float) -> float:
    """Return the model accuracy whose true mean paired difference is this."""
    slope = (
        StreamModel(model_accuracy=0.95).noninferiority_mean()
        - StreamModel(model_accuracy=0.94).noninferiority_mean()
    ) / 0.01
    return 0.95 + mean_difference / slope


def _median(values: np.ndarray) -> str:
    """Return a median of items to pass, or '>' the horizon when most streams never pass."""
    median = float(np.median(values))
    return f"{median:,.0f}" if np.isfinite(median) else "never (most streams)"


def noninferiority_report(*, streams: int, items: int, seed: int) -> None:
    """Print false-pass rates and items to pass for the non-inferiority criterion."""
    looks = np.arange(100, items + 1, 100)
    panel_items = int(items * 0.1 + 6 * np.sqrt(items * 0.09)) + 10
    print(f"\nNon-inferiority (margin {MARGIN}), {streams:,} streams, a look every 100 judged items"
          f" to {items:,}, 500-item minimum")  # fmt: skip
    print(
        f"{'true difference':>16} {'anytime-valid':>14} {'fixed t':>9}"
        f" {'median AV':>22} {'median fixed':>14}"
    )
    rng = np.random.default_rng(seed)
    for difference in (-0.04, -0.03, -0.02, 0.0, 0.01, 0.02):
        model = StreamModel(model_accuracy=_accuracy_for(difference))
        started = time.perf_counter()
        anytime = np.zeros((0, looks.size), dtype=bool)
        fixed = np.zeros((0, looks.size), dtype=bool)
        # In chunks, so 4,000 streams x 40,000 items stay within memory.
        for chunk in np.array_split(np.arange(streams), max(1, streams * panel_items // 2_000_000)):
            differences = paired_differences(
                rng=rng, model=model, streams=chunk.size, items=panel_items
            )
            counts = panel_counts(rng=rng, model=model, streams=chunk.size, looks=looks)
            a, f = noninferiority_passes(
                differences=differences, counts=counts, judged=looks, margin=MARGIN, min_judged=500
            )
            anytime, fixed = np.vstack((anytime, a)), np.vstack((fixed, f))
        print(
            f"{model.noninferiority_mean():>+16.3f} {anytime.any(axis=1).mean():>14.1%}"
            f" {fixed.any(axis=1).mean():>9.1%} {_median(first_pass(anytime, looks)):>22}"
            f" {_median(first_pass(fixed, looks)):>14}   ({time.perf_counter() - started:.1f} s)"
        )


def agreement_report(*, streams: int, items: int, seed: int) -> None:
    """Print false-pass rates and items to pass for the agreement floor alone."""
    looks = np.arange(100, items + 1, 100)
    rng = np.random.default_rng(seed)
    for minimum in (0, 500):
        print(
            f"\nAgreement floor 0.90 alone, {streams:,} streams,"
            f" a look every 100 items to {items:,}, minimum {minimum}"
        )
        print(
            f"{'true agreement':>15} {'anytime-valid':>14} {'peeking Wilson':>15}"
            f" {'median AV':>12} {'median fixed':>13}"
        )
        for agreement in (0.89, 0.90, 0.91, 0.93, 0.95):
            anytime, fixed = agreement_passes(
                rng=rng, agreement=agreement, streams=streams, looks=looks, floor=0.90,
                min_judged=minimum,
            )  # fmt: skip
            print(
                f"{agreement:>15.2f} {anytime.any(axis=1).mean():>14.1%}"
                f" {fixed.any(axis=1).mean():>15.1%}"
                f" {_median(first_pass(anytime, looks)):>12}"
                f" {_median(first_pass(fixed, looks)):>13}"
            )


def timing_report() -> None:
    """Print how long the bounds and one whole gate evaluation take."""
    rng = np.random.default_rng(0)
    values = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], p=[0.01, 0.04, 0.9, 0.04, 0.01], size=200_000)
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        empirical_bernstein_bounds(values=values, low=-1.0, high=1.0)
        runs.append(time.perf_counter() - started)
    print(f"\nEmpirical-Bernstein CS over 200,000 values: {1000 * float(np.median(runs)):.1f} ms")
    k = 10
    confusion = np.diag(rng.integers(90_000, 110_000, k)) + rng.integers(0, 500, (k, k))
    evidence = GateEvidence(
        labels=tuple(str(i) for i in range(k)), confusion=confusion,
        paired_differences=values[:100_000], predictions=1_000_000, errors=100,
        latency_p95_ms=5.0, max_psi=0.05, drifted_share=0.0, int8_parity=None, is_int8=False,
    )  # fmt: skip
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        gate_evaluate(policy=GatePolicyValues(), evidence=evidence)
        runs.append(time.perf_counter() - started)
    print(
        "gate_evaluate at ~1 M judged items, 100,000 panel items:"
        f" {1000 * float(np.median(runs)):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=4000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    arguments = parser.parse_args()
    timing_report()
    agreement_report(streams=arguments.streams, items=arguments.items, seed=arguments.seed)
    noninferiority_report(streams=arguments.streams, items=arguments.items, seed=arguments.seed)
    if arguments.items < 40_000:
        noninferiority_report(
            streams=min(arguments.streams, 1000), items=40_000, seed=arguments.seed
        )


if __name__ == "__main__":
    main()
