"""What the gate reads: a queue's policy values and the evidence of one window (no Django)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GatePolicyValues:
    """Thresholds of one gate policy version; None switches a criterion off."""

    min_judged_items: int | None = 500
    min_per_label: int | None = 20
    noninferiority_margin: float | None = 0.02
    agreement_floor: float | None = 0.90
    kappa_floor: float | None = 0.80
    recall_floor: float | None = 0.80
    recall_min_items: int = 20
    psi_major: float | None = 0.25
    drifted_share_max: float | None = 0.30
    max_error_rate: float | None = 0.005
    latency_p95_budget_ms: float | None = 50.0
    int8_parity_floor: float | None = 0.995
    confidence: float = 0.95
    anytime_valid: bool = True


@dataclass(frozen=True)
class GateEvidence:
    """Everything the gate reads about one model version in one window."""

    labels: tuple[str, ...]
    confusion: np.ndarray
    paired_differences: np.ndarray
    predictions: int
    errors: int
    latency_p95_ms: float | None
    max_psi: float | None
    drifted_share: float | None
    int8_parity: float | None
    is_int8: bool
