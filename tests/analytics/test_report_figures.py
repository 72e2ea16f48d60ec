"""Every report figure equals the reference implementation's on the same data."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    precision_recall_fscore_support,
)
from statsmodels.stats.inter_rater import fleiss_kappa
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from analytics.stats.agreement import confusion_matrix as counts_table
from analytics.stats.binning import (
    feature_histograms,
    merge_bins,
    reference_bins_by_feature,
    reference_bins_with_range_by_feature,
)
from analytics.stats.calibration import coverage_bins, reliability_bins
from analytics.stats.counts import (
    LATENCY_EDGES_MS,
    PeriodCounts,
    fleiss_kappa_from_sums,
    fleiss_sums,
    log_histogram,
    percentile_from_histogram,
)
from analytics.stats.drift import DriftThresholds
from analytics.stats.drift_window import WINDOW_ALPHA_SHARE, psi_null, psi_smoothed_from_counts
from analytics.summaries.agreement import agreement_summary, baseline_summary
from analytics.summaries.confidence import confidence_summary, operations_summary
from analytics.summaries.drift import drift_summary

K = 4
LABELS = ["a", "b", "c", "d"]


def _noisy_copy(rng: np.random.Generator, labels: np.ndarray, error: float) -> np.ndarray:
    flip = rng.random(labels.size) < error
    return np.where(flip, rng.integers(0, K, labels.size), labels)


@pytest.fixture
def sample():
    rng = np.random.default_rng(7)
    human = rng.integers(0, K, 2000)
    model = _noisy_copy(rng, human, 0.3)
    confidence = np.clip(rng.beta(5, 2, human.size), 0, 1)
    return human, model, confidence


def _counts(human, model, confidence) -> PeriodCounts:
    agree = human == model
    return PeriodCounts(
        n_classes=K,
        items=human.size,
        scored_ok=human.size,
        confusion_each=counts_table(human, model, K),
        confusion_consensus=counts_table(human, model, K),
        label_counts=np.bincount(model, minlength=K),
        reliability=reliability_bins(confidence, agree),
        coverage=coverage_bins(confidence, agree),
    )


def test_agreement_report_matches_scikit_learn_and_statsmodels(sample):
    human, model, confidence = sample
    report = agreement_summary(
        total=_counts(human, model, confidence), days=[], labels=LABELS, inspector_names={}
    )
    assert report.agreement.rate == pytest.approx(accuracy_score(human, model))
    low, high = proportion_confint(report.agreement.agreed, report.agreement.n, method="wilson")
    assert (report.agreement.low, report.agreement.high) == pytest.approx((low, high))
    assert report.kappa.value == pytest.approx(cohen_kappa_score(human, model))
    assert report.confusion == confusion_matrix(human, model, labels=range(K)).tolist()
    precision, recall, f1, support = precision_recall_fscore_support(
        human, model, labels=range(K), zero_division=0
    )
    assert [c.precision for c in report.classes] == pytest.approx(precision)
    assert [c.recall for c in report.classes] == pytest.approx(recall)
    assert [c.f1 for c in report.classes] == pytest.approx(f1)
    assert [c.support for c in report.classes] == support.tolist()
    assert np.nansum(report.confusion_normalised, axis=1) == pytest.approx(np.ones(K))


def test_kappa_interval_covers_the_true_kappa_about_95_percent_of_the_time():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, K, 200_000)
    population = cohen_kappa_score(truth, _noisy_copy(rng, truth, 0.4))
    covered = 0
    for _ in range(400):
        human = rng.integers(0, K, 300)
        table = counts_table(human, _noisy_copy(rng, human, 0.4), K)
        report = agreement_summary(
            total=PeriodCounts(n_classes=K, confusion_each=table),
            days=[],
            labels=LABELS,
            inspector_names={},
        )
        covered += report.kappa.low <= population <= report.kappa.high
    assert 0.91 <= covered / 400 <= 0.98


def test_baseline_fleiss_from_sums_matches_statsmodels():
    rng = np.random.default_rng(1)
    table = np.zeros((300, K), np.int64)
    for row in table:
        np.add.at(row, rng.integers(0, K, 3), 1)
    sums = fleiss_sums(table[:100]) + fleiss_sums(table[100:])
    assert fleiss_kappa_from_sums(sums, 3) == pytest.approx(fleiss_kappa(table, method="fleiss"))
    report = baseline_summary(total=PeriodCounts(n_classes=K, fleiss={3: sums}))
    assert report.fleiss[0].kappa == pytest.approx(fleiss_kappa(table, method="fleiss"))


def test_baseline_compares_humans_and_model_on_the_same_items(sample):
    human, model, _ = sample
    rng = np.random.default_rng(2)
    second = _noisy_copy(rng, human, 0.2)
    cube = np.zeros((K, K, K), np.int64)
    np.add.at(cube, (human, second, model), 1)
    report = baseline_summary(total=PeriodCounts(n_classes=K, pairs=cube))
    assert report.items == human.size
    assert report.human_kappa.value == pytest.approx(cohen_kappa_score(human, second))
    assert report.human_agreement.rate == pytest.approx(accuracy_score(human, second))
    both = np.concatenate([human, second])
    assert report.model_agreement.rate == pytest.approx(
        accuracy_score(both, np.concatenate([model, model]))
    )


def test_confidence_report_matches_calibration_curve(sample):
    human, model, confidence = sample
    report = confidence_summary(total=_counts(human, model, confidence))
    agree = human == model
    accuracy, mean_confidence = calibration_curve(agree, confidence, n_bins=10)
    filled = np.asarray(report.reliability_count) > 0
    assert np.asarray(report.reliability_accuracy)[filled] == pytest.approx(accuracy)
    assert np.asarray(report.reliability_mean_confidence)[filled] == pytest.approx(mean_confidence)
    at = 70
    kept = confidence >= 0.70
    assert report.coverage_items[at] == kept.sum()
    assert report.coverage_agreement[at] == pytest.approx(agree[kept].mean())
    low, high = proportion_confint(agree[kept].sum(), kept.sum(), method="wilson")
    assert (report.coverage_low[at], report.coverage_high[at]) == pytest.approx((low, high))
    assert sum(report.histogram_agreed) == agree.sum()


def test_drift_report_matches_scipy_within_the_stated_ks_bound():
    rng = np.random.default_rng(5)
    reference = rng.normal(size=(5000, 3))
    current = rng.normal(size=(4000, 3)) + np.array([0.0, 0.3, 1.0])
    bins = reference_bins_by_feature(reference)
    ref_labels, cur_labels = np.array([500, 300, 200, 0]), np.array([380, 420, 180, 20])
    total = PeriodCounts(
        n_classes=K, features=feature_histograms(current, bins), label_counts=cur_labels
    )
    report = drift_summary(
        reference_counts=feature_histograms(reference, bins),
        reference_predictions=ref_labels,
        bins=bins,
        total=total,
        days=[(date(2026, 1, 1), total)],
        labels=LABELS,
        thresholds=DriftThresholds(),
    )
    for figure in report.features:
        exact = stats.ks_2samp(reference[:, figure.index], current[:, figure.index])
        assert figure.ks_statistic <= exact.statistic + 1e-12
        assert exact.statistic <= figure.ks_statistic + figure.ks_error_bound + 1e-12
        reference_share = feature_histograms(reference, bins)[figure.index]
        current_share = feature_histograms(current, bins)[figure.index]
        assert figure.js_distance == pytest.approx(
            jensenshannon(reference_share, current_share, base=2)
        )
    assert [f.level for f in report.features] == ["none", "moderate", "major"]
    assert report.drifted_share == pytest.approx(2 / 3)
    assert report.prediction is not None
    table = np.vstack([ref_labels, cur_labels])
    chi2, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    assert (report.prediction.chi_square, report.prediction.p_value) == pytest.approx(
        (chi2, p_value)
    )
    assert report.days[0].drifted_share == pytest.approx(2 / 3)
    assert report.top[0].index == 2


def test_drift_per_day_equals_each_features_figures_even_with_fewer_bins_for_tied_features():
    rng = np.random.default_rng(11)
    reference = np.column_stack(
        [rng.normal(size=3000), rng.poisson(2.0, 3000), rng.integers(0, 3, 3000)]
    ).astype(float)
    bins = reference_bins_with_range_by_feature(reference)
    assert len({b.fine_edges.size for b in bins}) > 1  # features have different bins
    reference_counts = feature_histograms(reference, bins)
    thresholds = DriftThresholds()
    days = []
    for n, shift in enumerate([0.0, 0.2, 0.8]):
        current = np.column_stack(
            [rng.normal(shift, 1, 900), rng.poisson(2.0 + shift, 900), rng.integers(0, 3, 900)]
        ).astype(float)
        counts = PeriodCounts(n_classes=K, features=feature_histograms(current, bins))
        days.append((date(2026, 1, 1 + n), counts))
    total = PeriodCounts(n_classes=K)
    for _, counts in days:
        total = total + counts

    report = drift_summary(
        reference_counts=reference_counts,
        reference_predictions=[1, 1, 1, 1],
        bins=bins,
        total=total,
        days=days,
        labels=LABELS,
        thresholds=thresholds,
    )

    alpha = thresholds.ks_alpha * WINDOW_ALPHA_SHARE
    for (day, counts), figures in zip(days, report.days, strict=True):
        psis, drifted, gaps, p_values = [], [], [], []
        for r, c, b in zip(reference_counts, counts.features, bins, strict=True):
            coarse_r = merge_bins(r, b.fine_edges, b.coarse_edges)
            coarse_c = merge_bins(c, b.fine_edges, b.coarse_edges)
            kept = (coarse_r + coarse_c) > 0
            value = psi_smoothed_from_counts(coarse_r[kept], coarse_c[kept])
            null = psi_null(n=c.sum(), m=r.sum(), n_bins=int(kept.sum()), alpha=alpha / len(bins))
            psis.append(value)
            drifted.append(value >= null.critical and value >= thresholds.psi_moderate)
            gap = np.abs(np.cumsum(r)[:-1] / r.sum() - np.cumsum(c)[:-1] / c.sum()).max()
            gaps.append(gap)
            effective_n = round(r.sum() * c.sum() / (r.sum() + c.sum()))
            p_values.append(stats.kstwobign.sf(gap * np.sqrt(effective_n)))
        adjusted = multipletests(p_values, method="holm")[1]
        for j, b in enumerate(bins):
            if not b.categorical and adjusted[j] < alpha and gaps[j] >= 0.05:
                drifted[j] = True
        assert figures.day == day
        assert figures.max_psi == pytest.approx(max(psis), rel=1e-12)
        assert figures.drifted_share == pytest.approx(sum(drifted) / len(drifted))
    assert report.days[0].drifted_share == 0.0
    assert report.days[2].drifted_share > 0.0


def test_a_small_day_drawn_from_the_reference_itself_shows_almost_no_drift():
    """Noise in a day of 300 items must not read as drift (D alone flagged most features)."""
    rng = np.random.default_rng(12)
    reference = rng.normal(size=(4000, 64))
    bins = reference_bins_by_feature(reference)
    days = []
    for n in range(10):
        current = feature_histograms(rng.normal(size=(300, 64)), bins)
        days.append((date(2026, 1, 1 + n), PeriodCounts(n_classes=K, features=current)))
    total = PeriodCounts(n_classes=K)
    for _, counts in days:
        total = total + counts

    report = drift_summary(
        reference_counts=feature_histograms(reference, bins),
        reference_predictions=[1, 1, 1, 1],
        bins=bins,
        total=total,
        days=days,
        labels=LABELS,
        thresholds=DriftThresholds(),
    )

    assert max(day.drifted_share for day in report.days) <= 2 / 64
    assert report.drifted_share <= 2 / 64


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.01, 5000, allow_nan=False), min_size=1, max_size=300))
def test_latency_percentiles_are_within_one_bin_of_exact(latencies):
    counts = log_histogram(latencies, LATENCY_EDGES_MS)
    for q in (50, 95, 99):
        estimate = percentile_from_histogram(counts, LATENCY_EDGES_MS, q)
        exact = float(np.percentile(latencies, q, method="inverted_cdf"))
        assert exact / 1.13 <= estimate <= exact * 1.13


def test_operations_report_counts_flips_between_variants():
    this = np.array([0, 1, 2, 2, 3, 1])
    other = np.array([0, 1, 2, 1, 3, 0])
    total = PeriodCounts(
        n_classes=K,
        scored_ok=6,
        scored_error=2,
        errors={"bad input": 2},
        variants={"m:int8": counts_table(this, other, K)},
    )
    report = operations_summary(total=total, labels=LABELS)
    assert report.error_rate == pytest.approx(0.25)
    (variant,) = report.variants
    assert (variant.n, variant.flips) == (6, 2)
    assert variant.classes[2].changed_away == 1
    assert variant.classes[0].changed_to == 1
