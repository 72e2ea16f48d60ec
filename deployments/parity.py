"""Compare an INT8 model with its FP32 parent: decisions, probabilities, speed (no Django)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from deployments.runtime import ModelRunner

LATENCY_BATCHES = (1, 64, 512)


@dataclass(frozen=True)
class Agreement:
    source: str  # "reference data" or "recent items"
    rows: int
    top1_agreement: float
    max_probability_difference: float
    # label (FP32's decision) -> rows on which INT8 decided something else
    flips_by_class: dict[str, int]
    # "fp32->int8" label pairs, most frequent first
    flip_pairs: dict[str, int]


@dataclass(frozen=True)
class Latency:
    batch: int
    fp32_us_per_row: float
    int8_us_per_row: float

    @property
    def speedup(self) -> float:
        return self.fp32_us_per_row / self.int8_us_per_row if self.int8_us_per_row else 0.0


@dataclass(frozen=True)
class ParityReport:
    agreements: list[Agreement]
    latency: list[Latency]
    fp32_bytes: int
    int8_bytes: int
    minimum_agreement: float
    notes: list[str] = field(default_factory=list)

    @property
    def worst_agreement(self) -> float | None:
        return min((a.top1_agreement for a in self.agreements), default=None)

    @property
    def passes(self) -> bool:
        worst = self.worst_agreement
        return worst is None or worst >= self.minimum_agreement

    def as_dict(self) -> dict[str, object]:
        return {
            "agreements": [asdict(a) for a in self.agreements],
            "latency": [{**asdict(row), "speedup": round(row.speedup, 3)} for row in self.latency],
            "fp32_bytes": self.fp32_bytes,
            "int8_bytes": self.int8_bytes,
            "minimum_agreement": self.minimum_agreement,
            "passes": self.passes,
            "notes": self.notes,
        }


def parity_lines(report: dict[str, object]) -> list[str]:
    """Return a stored parity report (ParityReport.as_dict()) as plain-text table lines."""
    agreements: list[dict] = report.get("agreements", [])  # type: ignore[assignment]
    latency: list[dict] = report.get("latency", [])  # type: ignore[assignment]
    out = [f"{'rows from':<16}{'rows':>8}{'top-1':>10}{'max |dp|':>10}  flips (fp32->int8)"]
    for a in agreements:
        flips = ", ".join(f"{k}:{v}" for k, v in a["flip_pairs"].items()) or "none"
        out.append(
            f"{a['source']:<16}{a['rows']:>8,}{a['top1_agreement']:>10.2%}"
            f"{a['max_probability_difference']:>10.4f}  {flips}"
        )
    out.append(f"{'batch':>6}{'fp32 us/row':>14}{'int8 us/row':>14}{'speed-up':>10}")
    for row in latency:
        out.append(
            f"{row['batch']:>6}{row['fp32_us_per_row']:>14.3f}{row['int8_us_per_row']:>14.3f}"
            f"{row['speedup']:>9.2f}x"
        )
    fp32_bytes, int8_bytes = int(report.get("fp32_bytes", 0)), int(report.get("int8_bytes", 0))  # type: ignore[call-overload]
    if fp32_bytes:
        out.append(
            f"file size: {fp32_bytes:,} -> {int8_bytes:,} bytes ({int8_bytes / fp32_bytes:.0%})"
        )
    out.extend(str(note) for note in report.get("notes", []))  # type: ignore[attr-defined]
    return out


def agreement_measure(
    fp32: ModelRunner, int8: ModelRunner, rows: np.ndarray, labels: list[str], source: str
) -> Agreement:
    """Compare the two models' decisions and probabilities on the same rows."""
    a, b = fp32.predict(rows), int8.predict(rows)
    flipped = a.label_indices != b.label_indices
    by_class: dict[str, int] = {}
    pairs: dict[str, int] = {}
    for i, j in zip(a.label_indices[flipped], b.label_indices[flipped], strict=True):
        by_class[labels[i]] = by_class.get(labels[i], 0) + 1
        pair = f"{labels[i]}->{labels[j]}"
        pairs[pair] = pairs.get(pair, 0) + 1
    return Agreement(
        source=source,
        rows=len(rows),
        top1_agreement=float(np.mean(~flipped)) if len(rows) else 1.0,
        max_probability_difference=float(np.max(np.abs(a.probabilities - b.probabilities)))
        if len(rows)
        else 0.0,
        flips_by_class=dict(sorted(by_class.items())),
        flip_pairs=dict(sorted(pairs.items(), key=lambda kv: -kv[1])),
    )


def microseconds_per_row(
    runner: ModelRunner, rows: np.ndarray, batch: int, seconds: float = 0.25
) -> float:
    """Return the median time per row of repeated runs at this batch size."""
    picked = np.ascontiguousarray(np.resize(rows, (batch, rows.shape[1])), dtype=np.float32)
    runner.predict(picked)
    timings: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(timings) < 5:
        started = time.perf_counter()
        runner.predict(picked)
        timings.append(time.perf_counter() - started)
    return float(np.median(timings)) * 1e6 / batch


def latency_measure(fp32: ModelRunner, int8: ModelRunner, rows: np.ndarray) -> list[Latency]:
    return [
        Latency(
            batch,
            microseconds_per_row(fp32, rows, batch),
            microseconds_per_row(int8, rows, batch),
        )
        for batch in LATENCY_BATCHES
    ]
