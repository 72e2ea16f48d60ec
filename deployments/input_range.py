"""Which inputs a model version may decide: those near its reference data (no Django import).

A model answers whatever it is given: an FP32 network fed 1e308 returns NaN, its INT8
variant clamps the same value and answers label 0 with flat probabilities. Neither answer
means anything, so inputs far outside the reference data are refused before any backend
sees them, and the item is left to inspectors.

Each feature's band is its reference range widened on both sides by `margin` times its
span, and never by less than `margin` times the median span of the features: a border
pixel that was 0 or 1 in every reference image must not refuse every shifted or noisy
image (the rule is for absurd values, drift has its own report). A version without
reference data refuses only what float32 (the dtype every model here reads) cannot hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class InputRange:
    """Per-feature lower and upper bounds of the inputs a model version may decide."""

    lower: np.ndarray
    upper: np.ndarray
    from_reference: bool

    @classmethod
    def unbounded(cls, width: int) -> InputRange:
        """Return the range of a version without reference data: what float32 holds."""
        return cls(
            lower=np.full(width, -FLOAT32_MAX), upper=np.full(width, FLOAT32_MAX),
            from_reference=False,
        )  # fmt: skip

    @classmethod
    def around_reference(cls, reference: np.ndarray | None, *, margin: float) -> InputRange | None:
        """Return the band around the reference data, or None without usable reference data."""
        if reference is None or reference.ndim != 2 or not len(reference):
            return None
        data = np.asarray(reference, dtype=np.float64)
        if not np.isfinite(data).all():
            return None
        minimum, maximum = data.min(axis=0), data.max(axis=0)
        span = maximum - minimum
        positive = span[span > 0]
        typical = float(np.median(positive)) if len(positive) else 1.0
        span = np.maximum(span, typical)
        widen = max(0.0, margin) * span
        return cls(
            lower=np.clip(minimum - widen, -FLOAT32_MAX, FLOAT32_MAX),
            upper=np.clip(maximum + widen, -FLOAT32_MAX, FLOAT32_MAX),
            from_reference=True,
        )

    def problems(self, matrix: np.ndarray) -> list[str | None]:
        """Return, per row, why the model may not decide it, or None when it may.

        NaN and infinite values are outside every band. The first offending feature is
        named by its index in the item's features list.
        """
        values = np.asarray(matrix, dtype=np.float64)
        inside = (values >= self.lower) & (values <= self.upper)
        reasons: list[str | None] = [None] * len(values)
        what = (
            "input outside the model's reference range"
            if self.from_reference
            else "input outside the float32 range the model takes"
        )
        for row in np.flatnonzero(~inside.all(axis=1)):
            feature = int(np.argmin(inside[row]))
            reasons[int(row)] = f"{what} (feature {feature} = {values[row, feature]:.6g})"
        return reasons
