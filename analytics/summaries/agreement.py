"""Agreement and human baseline reports from count tables (no Django import)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import numpy.typing as npt

from analytics.stats.agreement import (
    KAPPA_ADJUSTED_METHOD,
    Agreement,
    Kappa,
    kappa_interval,
    wilson_interval,
)
from analytics.stats.counts import PeriodCounts, fleiss_kappa_from_sums
from analytics.summaries.headlines import HEADLINE_RULE, FigureLight, figure_light

Rule = Literal["each", "consensus"]
RULES: dict[str, str] = {
    "each": "each judgment: the model's label is compared with every judgment of the item, "
    "so an item judged by several inspectors counts once per judgment",
    "consensus": "consensus only: each item counts once, against the human decision of an "
    "item whose judgments are complete and all agree; disputed and pending items are left out",
}
INTERVAL_METHOD = "Wilson score interval, 95%"
KAPPA_TEXT = f"Cohen's kappa, 95% interval: {KAPPA_ADJUSTED_METHOD}"
ONE_LABEL = (
    "Every compared judgment and prediction is one and the same label, so chance-corrected "
    "agreement says nothing here; kappa needs at least two labels."
)


def one_label_only(matrix: npt.ArrayLike) -> bool:
    """Return whether both raters used one and the same label on every item of a table."""
    table = np.asarray(matrix)
    return bool(table.sum() > 0 and np.count_nonzero(table.sum(axis=0) + table.sum(axis=1)) == 1)


def agreement_from_confusion(matrix: npt.ArrayLike) -> Agreement:
    """Return the agreement (diagonal share) of a count table, with its Wilson interval."""
    table = np.asarray(matrix, dtype=np.int64)
    n, agreed = int(table.sum()), int(np.trace(table))
    low, high = wilson_interval(agreed, n)
    return Agreement(n=n, agreed=agreed, rate=agreed / n if n else math.nan, low=low, high=high)


@dataclass(frozen=True)
class ClassFigures:
    """Precision, recall and F1 of one label, the human decision being the reference."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class RaterAgreement:
    """How often the model agreed with one inspector."""

    inspector: str
    n: int
    agreed: int
    rate: float
    low: float
    high: float


@dataclass(frozen=True)
class DayAgreement:
    """Agreement on the items received one day."""

    day: date
    n: int
    agreed: int
    rate: float
    low: float
    high: float


@dataclass(frozen=True)
class AgreementReport:
    """Model versus human: rate, kappa, confusion, per class, per inspector, per day."""

    rule: Rule
    rule_text: str
    interval_method: str
    kappa_method: str
    labels: list[str]
    agreement: Agreement
    kappa: Kappa
    confusion: list[list[int]]
    confusion_normalised: list[list[float]]
    classes: list[ClassFigures]
    inspectors: list[RaterAgreement]
    days: list[DayAgreement]
    other_rule: Rule
    other_rule_agreement: Agreement
    other_rule_kappa: Kappa
    items: int
    items_lacking_prediction: int
    items_with_error_prediction: int
    items_lacking_human_decision: int
    agreement_light: FigureLight
    kappa_light: FigureLight
    # Why there is nothing to compare, as a sentence for the page; "" when there is.
    empty_reason: str


def class_figures(matrix: npt.ArrayLike, labels: Sequence[str]) -> list[ClassFigures]:
    """Return per-label precision, recall and F1 (rows human, columns model); 0 where undefined.

    0 for an undefined ratio is scikit-learn's ``zero_division`` default.
    """
    table = np.asarray(matrix, dtype=np.float64)
    hits = np.diag(table)
    predicted, actual = table.sum(axis=0), table.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(actual > 0, hits / actual, 0.0)
        total = precision + recall
        f1 = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)
    return [
        ClassFigures(
            label=label,
            precision=float(precision[i]),
            recall=float(recall[i]),
            f1=float(f1[i]),
            support=int(actual[i]),
        )
        for i, label in enumerate(labels)
    ]


def _row_normalised(table: np.ndarray) -> list[list[float]]:
    rows = table.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(rows > 0, table / np.where(rows > 0, rows, 1), math.nan)
    return [[float(v) for v in row] for row in shares]


def _confusion(counts: PeriodCounts, rule: Rule) -> np.ndarray:
    return counts.confusion_each if rule == "each" else counts.confusion_consensus


def agreement_summary(
    *,
    total: PeriodCounts,
    days: Sequence[tuple[date, PeriodCounts]],
    labels: Sequence[str],
    inspector_names: Mapping[int, str],
    rule: Rule = "each",
) -> AgreementReport:
    """Return the agreement report of a period's counts and its per-day counts."""
    table = _confusion(total, rule)
    other: Rule = "consensus" if rule == "each" else "each"
    inspectors = []
    for inspector_id, (n, agreed) in sorted(total.inspectors.items()):
        low, high = wilson_interval(int(agreed), int(n))
        inspectors.append(
            RaterAgreement(
                inspector=inspector_names.get(inspector_id, str(inspector_id)),
                n=int(n),
                agreed=int(agreed),
                rate=agreed / n if n else math.nan,
                low=low,
                high=high,
            )
        )
    per_day = []
    for day, counts in days:
        figure = agreement_from_confusion(_confusion(counts, rule))
        per_day.append(
            DayAgreement(day, figure.n, figure.agreed, figure.rate, figure.low, figure.high)
        )
    figure = agreement_from_confusion(table)
    kappa = kappa_interval(table)
    return AgreementReport(
        rule=rule,
        rule_text=RULES[rule],
        interval_method=INTERVAL_METHOD,
        kappa_method=KAPPA_TEXT,
        labels=list(labels),
        agreement=figure,
        kappa=kappa,
        confusion=table.tolist(),
        confusion_normalised=_row_normalised(table),
        classes=class_figures(table, labels),
        inspectors=inspectors,
        days=per_day,
        other_rule=other,
        other_rule_agreement=agreement_from_confusion(_confusion(total, other)),
        other_rule_kappa=kappa_interval(_confusion(total, other)),
        items=total.items,
        items_lacking_prediction=total.unscored,
        items_with_error_prediction=total.scored_error,
        items_lacking_human_decision=total.undecided,
        agreement_light=figure_light(
            HEADLINE_RULE["agreement"], low=figure.low, high=figure.high, n=figure.n
        ),
        kappa_light=figure_light(
            HEADLINE_RULE["kappa"],
            low=kappa.low,
            high=kappa.high,
            n=kappa.n,
            undefined=ONE_LABEL if one_label_only(table) else "",
        ),
        empty_reason="" if figure.n else _agreement_empty_reason(total, rule),
    )


def _agreement_empty_reason(total: PeriodCounts, rule: Rule) -> str:
    """Return why no judgment could be compared with the model, as a sentence."""
    if total.items == 0:
        return "No item arrived in this range, so there is nothing to compare yet."
    if total.scored_ok == 0:
        return (
            f"No item of the {total.items} in this range has a successful prediction from "
            "this version yet, so agreement has nothing to compare."
        )
    if rule == "consensus":
        return (
            "No scored item in this range has a complete, unanimous human decision yet; "
            "agreement by consensus needs one."
        )
    return (
        f"No scored item in this range has been judged yet ({total.items} items, "
        f"{total.judgments} judgments); agreement needs judged, scored items."
    )


@dataclass(frozen=True)
class FleissFigure:
    """Fleiss' kappa over items judged by the same number (three or more) of inspectors."""

    raters: int
    items: int
    kappa: float


@dataclass(frozen=True)
class BaselineReport:
    """Human versus human on double-inspected items, beside the model on the same items."""

    rule_text: str
    interval_method: str
    kappa_method: str
    items: int
    human_agreement: Agreement
    human_kappa: Kappa
    model_agreement: Agreement
    model_kappa: Kappa
    model_vs_first: Agreement
    model_vs_second: Agreement
    fleiss: list[FleissFigure]
    empty_reason: str


BASELINE_RULE = (
    "items judged at least twice and scored by the model: the first two judgments (in the "
    "order they were recorded) are compared with each other; the model is compared with each "
    "of those two judgments, so each item counts twice on the model side (intervals treat "
    "the two comparisons as independent, which makes the model's interval slightly narrow)"
)


def baseline_summary(*, total: PeriodCounts) -> BaselineReport:
    """Return the human baseline report from the first-second-model count cube."""
    pairs = total.pairs
    humans = pairs.sum(axis=2)
    model_first = pairs.sum(axis=1)  # first judgment x model
    model_second = pairs.sum(axis=0)  # second judgment x model
    model_each = model_first + model_second
    return BaselineReport(
        rule_text=BASELINE_RULE,
        interval_method=INTERVAL_METHOD,
        kappa_method=KAPPA_TEXT,
        items=int(pairs.sum()),
        human_agreement=agreement_from_confusion(humans),
        human_kappa=kappa_interval(humans),
        model_agreement=agreement_from_confusion(model_each),
        model_kappa=kappa_interval(model_each),
        model_vs_first=agreement_from_confusion(model_first),
        model_vs_second=agreement_from_confusion(model_second),
        fleiss=[
            FleissFigure(raters=m, items=s.items, kappa=fleiss_kappa_from_sums(s, m))
            for m, s in sorted(total.fleiss.items())
        ],
        empty_reason=""
        if pairs.sum()
        else (
            "No item in this range was judged by two inspectors and scored by this version; "
            f"the baseline needs double-inspected items ({total.multi_judged} judged twice or "
            "more in this range)."
        ),
    )


ADJUDICATION_RULE = (
    "each judgment compared separately: every judgment whose label differs from the model's, "
    "on an item an ml_lead has adjudicated, is one comparison (an item judged twice by two "
    "dissenting inspectors counts twice); in each comparison exactly one of the model, the "
    "inspector or neither gave the adjudicated label. Accuracies are over these comparisons, "
    "so they describe disagreements only, not all items; intervals treat the comparisons as "
    "independent"
)


@dataclass(frozen=True)
class AdjudicationOutcomes:
    """Who was right, on adjudicated disagreements, against the adjudicated label."""

    rule_text: str
    interval_method: str
    comparisons: int
    model_right: int
    human_right: int
    both_wrong: int
    model_accuracy: Agreement
    human_accuracy: Agreement
    items_adjudicated: int
    judgments_awaiting: int  # disagreeing judgments on items not adjudicated yet


def adjudication_outcomes(
    *,
    comparisons: Sequence[tuple[str, str, str, int]],
    items_adjudicated: int,
    judgments_awaiting: int,
) -> AdjudicationOutcomes:
    """Return the outcomes of (human label, model label, adjudicated label, count) comparisons.

    Comparisons where human and model agree are not disagreements and are ignored.
    """
    model_right = human_right = both_wrong = 0
    for human, model, truth, count in comparisons:
        if human == model:
            continue
        if model == truth:
            model_right += count
        elif human == truth:
            human_right += count
        else:
            both_wrong += count
    n = model_right + human_right + both_wrong

    def accuracy(right: int) -> Agreement:
        low, high = wilson_interval(right, n)
        return Agreement(n=n, agreed=right, rate=right / n if n else math.nan, low=low, high=high)

    return AdjudicationOutcomes(
        rule_text=ADJUDICATION_RULE,
        interval_method=INTERVAL_METHOD,
        comparisons=n,
        model_right=model_right,
        human_right=human_right,
        both_wrong=both_wrong,
        model_accuracy=accuracy(model_right),
        human_accuracy=accuracy(human_right),
        items_adjudicated=items_adjudicated,
        judgments_awaiting=judgments_awaiting,
    )
