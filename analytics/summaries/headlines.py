"""Headline figures and their traffic lights, decided on a bound and a minimum sample.

No Django import. Every light of every report and of the overview comes from
``figure_light``, which asks ``analytics.stats.lights.light_from_bound`` with the
figure's interval: green when even its worst plausible value clears the good line,
red when even its best is past the bad line, amber in between, and grey ("not enough
data") below the rule's minimum sample, with a sentence that says how many there are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from analytics.stats.agreement import KAPPA_ADJUSTED_METHOD
from analytics.stats.calibration_check import CALIBRATION_MIN_N
from analytics.stats.lights import LIGHT_LABELS, Light, light_from_bound
from analytics.stats.quantile_interval import QUANTILE_INTERVAL_METHOD


@dataclass(frozen=True)
class HeadlineRule:
    """When a headline figure is green, amber, red or grey, and on which bound.

    ``good`` and ``bad`` are lines of the figure itself; ``min_n`` is the least number
    of ``noun`` (singular, plural) below which there is no light at all. ``bound`` names
    the interval in sentences, ``method`` says how it is computed. ``point``
    figures have no interval: the value is its own bound (the drifted-feature share,
    whose features are each flagged only beyond the noise of their window).
    """

    key: str
    name: str
    unit: str
    higher_is_better: bool
    good: float
    bad: float
    min_n: int
    noun: tuple[str, str]
    bound: str
    why: str
    method: str
    digits: int = 3
    point: bool = False

    def light(self, *, low: float, high: float, n: int) -> Light:
        """Return the light of a figure whose interval is [low, high] over n observations."""
        if self.higher_is_better:
            return light_from_bound(
                lower=low, upper=high, good=self.good, bad=self.bad, n=n, min_n=self.min_n
            )
        return light_from_bound(
            lower=-high, upper=-low, good=-self.good, bad=-self.bad, n=n, min_n=self.min_n
        )

    def count_text(self, n: int) -> str:
        """Return n with this rule's noun, as "12 compared judgments"."""
        return f"{n} {self.noun[0] if n == 1 else self.noun[1]}"

    def number(self, value: float) -> str:
        """Return a value of this figure as the pages show it."""
        if math.isinf(value):
            return "unbounded"
        return f"{value:.{self.digits}f}{self.unit}"

    @property
    def rule_text(self) -> str:
        """Return the rule in words, for the page's legend."""
        what = self.bound if self.point else f"the whole {self.bound}"
        if self.higher_is_better:
            lines = (
                f"green when {what} is at or above {self.number(self.good)}, red when it is "
                f"below {self.number(self.bad)}"
            )
        else:
            lines = (
                f"green when {what} is at or below {self.number(self.good)}, red when it is "
                f"above {self.number(self.bad)}"
            )
        return f"{lines}, amber otherwise; grey under {self.count_text(self.min_n)}"


# The defaults shown on the overview. Agreement and kappa follow the inspectors' own
# double-inspection agreement on the demo queue (about 0.95); kappa bands are Landis and
# Koch's (1977) "almost perfect" (0.81) and "substantial" (0.61); ECE 0.05 is a calibration
# error a deferral threshold can absorb; latency is the per-item shadow budget. Minimum
# samples: 50 judgments make a Wilson interval about +-0.06 at 0.9; drift was measured to
# flag at most 5% of no-drift windows from 30 items on; ECE's bias needs about 200 items
# (analytics.stats.calibration_check); a 95th percentile has an upper bound from 72 values.
HEADLINE_RULES: tuple[HeadlineRule, ...] = (
    HeadlineRule(
        key="agreement",
        name="Agreement with inspectors",
        unit="",
        higher_is_better=True,
        good=0.95,
        bad=0.90,
        min_n=50,
        noun=("compared judgment", "compared judgments"),
        bound="95% Wilson interval",
        why="share of judgments the model's label matches (each judgment counts)",
        method="Wilson (1927) score interval of the share of agreeing judgments",
    ),
    HeadlineRule(
        key="kappa",
        name="Cohen's kappa",
        unit="",
        higher_is_better=True,
        good=0.81,
        bad=0.61,
        min_n=50,
        noun=("compared judgment", "compared judgments"),
        bound="95% kappa interval",
        why="chance-corrected agreement; Landis and Koch bands",
        method=KAPPA_ADJUSTED_METHOD + ", never of zero width; grey when one label is all",
    ),
    HeadlineRule(
        key="error_rate",
        name="Prediction error rate",
        unit="",
        higher_is_better=False,
        good=0.01,
        bad=0.05,
        min_n=50,
        noun=("prediction", "predictions"),
        bound="95% Wilson interval",
        why="share of predictions that failed",
        method="Wilson (1927) score interval of the share of failed predictions",
        digits=4,
    ),
    HeadlineRule(
        key="drifted_share",
        name="Drifted-feature share",
        unit="",
        higher_is_better=False,
        good=0.05,
        bad=0.20,
        min_n=30,
        noun=("scored item", "scored items"),
        bound="the share of features drifted beyond noise",
        why="share of features whose drift shows beyond the noise of the window",
        method="a feature counts when smoothed PSI passes its line and its no-drift critical "
        "value at the window's size (Yurdakul & Naranjo 2020), or a corrected KS or chi-square "
        "test flags it (sparse bins pooled; Monte-Carlo when even the pooled table is sparse)",
        point=True,
    ),
    HeadlineRule(
        key="ece",
        name="Expected calibration error",
        unit="",
        higher_is_better=False,
        good=0.05,
        bad=0.10,
        min_n=CALIBRATION_MIN_N,
        noun=("item with a consensus decision", "items with a consensus decision"),
        bound="90% interval of ECE's excess over a calibrated model",
        why="gap between confidence and agreement, 10 bins, beside a calibrated model's",
        method="ECE against 2,000 simulated perfectly calibrated windows of the same size "
        "(ECE is biased upward on few items: Kumar et al. 2019, Roelofs et al. 2022)",
    ),
    HeadlineRule(
        key="latency_p95",
        name="Latency p95",
        unit=" ms",
        higher_is_better=False,
        good=50.0,
        bad=200.0,
        min_n=100,
        noun=("timed prediction", "timed predictions"),
        bound="95% interval of the slowest backend's p95",
        why="95th percentile of inference time per item, slowest backend",
        method=QUANTILE_INTERVAL_METHOD,
        digits=1,
    ),
)
HEADLINE_RULE: dict[str, HeadlineRule] = {rule.key: rule for rule in HEADLINE_RULES}


@dataclass(frozen=True)
class FigureLight:
    """A figure's light, its page label and the sentence that says why."""

    key: str
    light: Light
    label: str
    n: int
    min_n: int
    sentence: str
    method: str


def _decided_sentence(rule: HeadlineRule, light: Light, low: float, high: float) -> str:
    """Return why a light with enough data is what it is."""
    number = rule.number
    if rule.point:
        where = f"{rule.bound} is {number(low)}"
        if light == "green":
            return f"{where}, within {number(rule.good)}."
        if light == "red":
            return f"{where}, past {number(rule.bad)}."
        return f"{where}, between {number(rule.good)} and {number(rule.bad)}."
    interval = f"the {rule.bound} [{number(low)}, {number(high)}]"
    if rule.higher_is_better:
        if light == "green":
            return f"{interval} lies at or above {number(rule.good)}."
        if light == "red":
            return f"{interval} lies below {number(rule.bad)}."
        return (
            f"{interval} is neither wholly at or above {number(rule.good)} "
            f"nor wholly below {number(rule.bad)}."
        )
    if light == "green":
        return f"{interval} lies at or below {number(rule.good)}."
    if light == "red":
        return f"{interval} lies above {number(rule.bad)}."
    return (
        f"{interval} is neither wholly at or below {number(rule.good)} "
        f"nor wholly above {number(rule.bad)}."
    )


def figure_light(
    rule: HeadlineRule, *, low: float, high: float, n: int, undefined: str = ""
) -> FigureLight:
    """Return the light of a figure with interval [low, high] over n observations.

    ``undefined`` is a sentence saying why the figure means nothing here whatever n is
    (one label only, for kappa): the light is then grey with that sentence.
    """
    if undefined:
        light: Light = "insufficient"
        sentence = undefined
    elif n < rule.min_n:
        light = "insufficient"
        sentence = f"{rule.count_text(n)}; lights need {rule.min_n}."
    elif math.isnan(low) or math.isnan(high):
        light = "insufficient"
        sentence = f"No {rule.bound} could be computed from {rule.count_text(n)}."
    else:
        light = rule.light(low=low, high=high, n=n)
        sentence = _decided_sentence(rule, light, low, high)
        sentence = sentence[0].upper() + sentence[1:]
    return FigureLight(
        key=rule.key,
        light=light,
        label=LIGHT_LABELS[light],
        n=n,
        min_n=rule.min_n,
        sentence=sentence,
        method=rule.method,
    )


@dataclass(frozen=True)
class Headline:
    """One figure of one model version, its interval where it has one, and its light."""

    rule: HeadlineRule
    value: float | None
    low: float | None
    high: float | None
    n: int
    light: FigureLight
    # What else a reader needs to read the figure (a calibrated model's ECE at this n).
    note: str = ""


def finite_or_none(value: float | None) -> float | None:
    """Return value, or None for NaN and infinities (no data)."""
    return value if value is not None and math.isfinite(value) else None
