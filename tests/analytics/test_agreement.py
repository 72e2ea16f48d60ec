"""Agreement, kappa and intervals checked against scikit-learn, statsmodels and simulation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, cohen_kappa_score
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix
from statsmodels.stats.inter_rater import cohens_kappa as statsmodels_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from analytics.stats.agreement import (
    KAPPA_METHOD,
    Agreement,
    Kappa,
    agreement,
    cohen_kappa,
    confusion_matrix,
    fleiss_kappa,
    kappa_from_confusion,
    label_indices,
    wilson_interval,
)

Z_95 = 1.959964


def correlated_raters(
    rng: np.random.Generator, n: int, n_classes: int, agreement_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return two raters where b copies a with the given probability, else guesses."""
    a = rng.integers(0, n_classes, size=n)
    guesses = rng.integers(0, n_classes, size=n)
    b = np.where(rng.random(n) < agreement_rate, a, guesses)
    return a, b


# Random and edge-case rater pairs shared by the reference comparisons: sizes from one
# item to thousands, classes that never occur, one constant rater, total disagreement.
RANDOM_CASES = [
    (seed, n, k, rate)
    for seed, (n, k, rate) in enumerate(
        [(3, 2, 0.5), (7, 3, 0.6), (50, 2, 0.9), (200, 5, 0.7), (1000, 4, 0.3), (5000, 8, 0.95)]
    )
]
EDGE_CASES = {
    "all agree, two classes": ([0, 1, 1, 0, 1], [0, 1, 1, 0, 1], 2),
    "all disagree": ([0, 1, 0, 1], [1, 0, 1, 0], 2),
    "absent classes": ([0, 2, 2, 0, 2], [0, 2, 0, 0, 2], 6),
    "one rater constant": ([1, 1, 1, 1], [0, 1, 2, 1], 3),
    "single disagreement": ([3], [0], 4),
    "kappa below zero": ([0, 0, 1, 1, 0], [1, 1, 0, 0, 0], 2),
}


def all_cases() -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Return the reference-comparison cases as (rater a, rater b, number of classes)."""
    cases = []
    for seed, n, k, rate in RANDOM_CASES:
        a, b = correlated_raters(np.random.default_rng(seed), n, k, rate)
        cases.append((a, b, k))
    for labels_a, labels_b, n_classes in EDGE_CASES.values():
        cases.append((np.array(labels_a), np.array(labels_b), n_classes))
    return cases


CASE_IDS = [f"random-n{n}-k{k}" for _, n, k, _ in RANDOM_CASES] + list(EDGE_CASES)


@st.composite
def rater_pairs(draw: st.DrawFn, min_size: int = 1) -> tuple[np.ndarray, np.ndarray, int]:
    """Draw two raters' label indices over the same items."""
    n_classes = draw(st.integers(min_value=1, max_value=6))
    n = draw(st.integers(min_value=min_size, max_value=60))
    labels = st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)
    a = np.array(draw(labels), dtype=np.int64)
    b = np.array(draw(labels), dtype=np.int64)
    return a, b, n_classes


# --- reference implementations -----------------------------------------------------------


@pytest.mark.parametrize(("a", "b", "k"), all_cases(), ids=CASE_IDS)
def test_agreement_rate_matches_scikit_learn_accuracy(a, b, k):
    result = agreement(a, b)

    assert result.n == a.size
    assert result.agreed == int(np.sum(a == b))
    assert result.rate == pytest.approx(accuracy_score(a, b), abs=1e-15)


@pytest.mark.parametrize(("a", "b", "k"), all_cases(), ids=CASE_IDS)
def test_agreement_interval_is_statsmodels_wilson_interval(a, b, k):
    result = agreement(a, b)
    low, high = proportion_confint(result.agreed, result.n, alpha=0.05, method="wilson")

    assert (result.low, result.high) == pytest.approx((low, high), abs=1e-12)


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
@pytest.mark.parametrize(
    ("successes", "n"), [(0, 1), (1, 1), (0, 10), (10, 10), (3, 10), (1, 1000), (917, 1000)]
)
def test_wilson_interval_matches_statsmodels(successes, n, confidence):
    expected = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")

    assert wilson_interval(successes, n, confidence) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("a", "b", "k"), all_cases(), ids=CASE_IDS)
def test_confusion_matrix_matches_scikit_learn(a, b, k):
    expected = sklearn_confusion_matrix(a, b, labels=range(k))

    np.testing.assert_array_equal(confusion_matrix(a, b, k), expected)


@pytest.mark.parametrize(("a", "b", "k"), all_cases(), ids=CASE_IDS)
def test_kappa_matches_scikit_learn(a, b, k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on a one-item sample
        expected = cohen_kappa_score(a, b, labels=list(range(k)))

    assert cohen_kappa(a, b, k).value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("a", "b", "k"), all_cases(), ids=CASE_IDS)
def test_kappa_and_standard_error_match_statsmodels(a, b, k):
    table = confusion_matrix(a, b, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' z-test divides by 0 on edge cases
        expected = statsmodels_cohens_kappa(table)
    result = kappa_from_confusion(table)

    assert result.value == pytest.approx(expected.kappa, abs=1e-12)
    assert result.standard_error**2 == pytest.approx(expected.var_kappa, abs=1e-12)
    # When one rater is constant the variance is exactly 0 and statsmodels' rounding can
    # land at -1e-17, whose square root is nan; this module clips it to 0 instead.
    if not math.isnan(expected.std_kappa):
        assert result.standard_error == pytest.approx(expected.std_kappa, abs=1e-12)
    assert result.n == a.size
    assert result.method == KAPPA_METHOD


@pytest.mark.parametrize(("a", "b", "k"), all_cases(), ids=CASE_IDS)
def test_kappa_interval_is_value_plus_minus_z_standard_errors_clipped(a, b, k):
    result = cohen_kappa(a, b, k)

    assert result.low == pytest.approx(max(-1.0, result.value - Z_95 * result.standard_error))
    assert result.high == pytest.approx(min(1.0, result.value + Z_95 * result.standard_error))


def test_kappa_interval_is_clipped_to_one_where_statsmodels_is_not():
    table = np.array([[9, 1], [0, 10]])
    expected = statsmodels_cohens_kappa(table)
    result = kappa_from_confusion(table)

    assert expected.kappa_upp > 1.0
    assert result.high == 1.0
    assert result.low == pytest.approx(expected.kappa_low, abs=1e-6)


def test_cohen_kappa_equals_kappa_of_its_confusion_matrix():
    a, b = correlated_raters(np.random.default_rng(99), 300, 4, 0.8)

    assert cohen_kappa(a, b, 4) == kappa_from_confusion(confusion_matrix(a, b, 4))


@pytest.mark.parametrize(
    ("items", "categories", "raters"), [(2, 2, 2), (10, 3, 2), (30, 4, 5), (200, 6, 12)]
)
def test_fleiss_kappa_matches_statsmodels(items, categories, raters):
    rng = np.random.default_rng(items * 1000 + raters)
    # Items differ in how clear-cut they are, so raters agree more than chance.
    item_probabilities = rng.dirichlet(np.full(categories, 0.5), size=items)
    counts = np.array([rng.multinomial(raters, p) for p in item_probabilities])

    expected = statsmodels_fleiss_kappa(counts, method="fleiss")

    assert fleiss_kappa(counts) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "counts",
    [
        [[3, 0], [0, 3], [3, 0]],  # unanimous on every item
        [[1, 1], [1, 1], [1, 1]],  # split on every item
        [[0, 4, 0], [2, 2, 0], [0, 0, 4], [1, 1, 2]],  # an unused category
    ],
    ids=["unanimous", "split", "unused category"],
)
def test_fleiss_kappa_matches_statsmodels_on_edge_cases(counts):
    expected = statsmodels_fleiss_kappa(np.array(counts), method="fleiss")

    assert fleiss_kappa(counts) == pytest.approx(expected, abs=1e-12)


# --- degenerate cases --------------------------------------------------------------------


def test_kappa_is_one_when_both_raters_give_one_identical_label_unlike_scikit_learn():
    a = b = np.full(25, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns that kappa is undefined here
        assert math.isnan(cohen_kappa_score(a, b, labels=[0, 1, 2]))

    assert cohen_kappa(a, b, 3) == Kappa(
        value=1.0, standard_error=0.0, low=1.0, high=1.0, n=25, method=KAPPA_METHOD
    )


def test_kappa_is_zero_with_zero_standard_error_when_one_rater_is_constant():
    a, b = np.array([1, 1, 1]), np.array([1, 0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels takes the square root of -1e-17
        reference = statsmodels_cohens_kappa(confusion_matrix(a, b, 2))

    result = cohen_kappa(a, b, 2)

    assert reference.var_kappa == pytest.approx(0.0, abs=1e-15)
    assert result.value == 0.0
    assert result.standard_error == pytest.approx(0.0, abs=1e-7)


def test_kappa_is_zero_when_raters_each_give_one_different_label():
    result = cohen_kappa(np.zeros(10, dtype=int), np.ones(10, dtype=int), 2)

    assert result.value == 0.0


def test_kappa_of_no_items_is_nan():
    result = cohen_kappa(np.array([], dtype=int), np.array([], dtype=int), 3)

    assert result.n == 0
    assert all(math.isnan(x) for x in (result.value, result.standard_error, result.low))
    assert math.isnan(result.high)


def test_agreement_of_no_items_has_nan_rate_and_the_whole_unit_interval():
    result = agreement([], [])

    assert isinstance(result, Agreement)
    assert (result.n, result.agreed, result.low, result.high) == (0, 0, 0.0, 1.0)
    assert math.isnan(result.rate)


def test_wilson_interval_of_no_trials_is_the_whole_unit_interval():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_fleiss_kappa_is_one_when_every_rating_is_one_category_unlike_statsmodels():
    counts = np.array([[0, 3], [0, 3], [0, 3]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels divides 0 by 0 here
        assert math.isnan(statsmodels_fleiss_kappa(counts, method="fleiss"))

    assert fleiss_kappa(counts) == 1.0


def test_fleiss_kappa_of_no_items_is_nan():
    assert math.isnan(fleiss_kappa(np.zeros((0, 3))))


# --- validation --------------------------------------------------------------------------


def test_raters_with_different_numbers_of_items_are_rejected():
    with pytest.raises(ValueError, match="different numbers of items"):
        agreement([0, 1, 2], [0, 1])


def test_label_index_outside_the_classes_is_rejected():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        cohen_kappa(np.array([0, 1, 3]), np.array([0, 1, 2]), 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        confusion_matrix(np.array([0, -1]), np.array([0, 1]), 3)


def test_non_integer_labels_are_rejected():
    with pytest.raises(TypeError, match="integer"):
        agreement(np.array([0.0, 1.0]), np.array([0.0, 1.0]))


def test_confusion_matrix_must_be_square():
    with pytest.raises(ValueError, match="square"):
        kappa_from_confusion(np.ones((2, 3)))


def test_fleiss_kappa_rejects_items_with_different_numbers_of_raters():
    with pytest.raises(ValueError, match="same number of raters"):
        fleiss_kappa([[2, 1], [1, 1]])


def test_fleiss_kappa_rejects_a_single_rater():
    with pytest.raises(ValueError, match="at least two raters"):
        fleiss_kappa([[1, 0], [0, 1]])


def test_wilson_interval_rejects_more_successes_than_trials():
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 4)


# --- label_indices -----------------------------------------------------------------------


def test_label_indices_maps_labels_to_their_position_in_order():
    order = ["ok", "scratch", "dent"]

    indices = label_indices(["dent", "ok", "ok", "scratch", "dent"], order)

    np.testing.assert_array_equal(indices, [2, 0, 0, 1, 2])
    assert np.issubdtype(indices.dtype, np.integer)


def test_label_indices_follows_order_not_alphabet():
    indices = label_indices(["b", "a", "c"], ["c", "b", "a"])

    np.testing.assert_array_equal(indices, [1, 2, 0])


def test_label_indices_names_the_unknown_label():
    with pytest.raises(ValueError, match="'crack'"):
        label_indices(["ok", "crack", "dent"], ["ok", "scratch", "dent"])


def test_label_indices_rejects_a_label_that_sorts_after_every_known_label():
    with pytest.raises(ValueError, match="'zzz'"):
        label_indices(["ok", "zzz"], ["ok", "dent"])


def test_label_indices_rejects_an_order_with_a_repeated_label():
    with pytest.raises(ValueError, match="repeats"):
        label_indices(["ok"], ["ok", "dent", "ok"])


def test_label_indices_of_no_labels_is_empty():
    assert label_indices([], ["ok"]).shape == (0,)


# --- properties --------------------------------------------------------------------------


@given(rater_pairs())
def test_agreement_rate_lies_in_the_unit_interval(pair):
    a, b, _ = pair

    assert 0.0 <= agreement(a, b).rate <= 1.0


@given(rater_pairs())
def test_agreement_interval_contains_the_rate(pair):
    a, b, _ = pair
    result = agreement(a, b)

    assert 0.0 <= result.low <= result.rate <= result.high <= 1.0


@given(rater_pairs())
def test_kappa_is_symmetric_in_its_two_raters(pair):
    a, b, k = pair
    forward, backward = cohen_kappa(a, b, k), cohen_kappa(b, a, k)

    assert forward.value == pytest.approx(backward.value, abs=1e-12)
    assert forward.standard_error == pytest.approx(backward.standard_error, abs=1e-12)


@given(rater_pairs())
def test_kappa_interval_contains_kappa_and_stays_within_minus_one_and_one(pair):
    a, b, k = pair
    result = cohen_kappa(a, b, k)

    assert -1.0 <= result.low <= result.value <= result.high <= 1.0
    assert result.standard_error >= 0.0


@given(rater_pairs(min_size=2))
def test_kappa_is_one_on_identical_non_constant_labels(pair):
    a, _, k = pair
    a = a.copy()
    a[0], a[1] = 0, k  # guarantee two distinct labels
    result = cohen_kappa(a, a, k + 1)

    assert result.value == pytest.approx(1.0, abs=1e-12)
    assert result.standard_error == pytest.approx(0.0, abs=1e-6)


@given(rater_pairs(), st.randoms(use_true_random=False))
def test_figures_do_not_depend_on_row_order(pair, random):
    a, b, k = pair
    permutation = np.array(random.sample(range(a.size), a.size), dtype=np.intp)
    shuffled_a, shuffled_b = a[permutation], b[permutation]

    assert agreement(shuffled_a, shuffled_b) == agreement(a, b)
    np.testing.assert_array_equal(
        confusion_matrix(shuffled_a, shuffled_b, k), confusion_matrix(a, b, k)
    )
    assert cohen_kappa(shuffled_a, shuffled_b, k) == cohen_kappa(a, b, k)


@given(rater_pairs(min_size=0))
def test_confusion_matrix_sums_to_the_number_of_items(pair):
    a, b, k = pair
    table = confusion_matrix(a, b, k)

    assert table.shape == (k, k)
    assert table.sum() == a.size
    assert np.trace(table) == agreement(a, b).agreed


# --- coverage by simulation --------------------------------------------------------------

SAMPLES = 2000
SAMPLE_SIZE = 200


def test_wilson_interval_covers_the_true_agreement_about_95_percent_of_the_time():
    true_rate = 0.9
    rng = np.random.default_rng(20240601)
    agreed_counts = rng.binomial(SAMPLE_SIZE, true_rate, size=SAMPLES)

    intervals = np.array([wilson_interval(int(x), SAMPLE_SIZE) for x in agreed_counts])
    covered = (intervals[:, 0] <= true_rate) & (true_rate <= intervals[:, 1])

    assert 0.93 <= covered.mean() <= 0.97


def population_kappa(joint: np.ndarray) -> float:
    """Return Cohen's kappa of a joint distribution of two raters' labels."""
    observed = np.trace(joint)
    expected = joint.sum(axis=1) @ joint.sum(axis=0)
    return float((observed - expected) / (1.0 - expected))


def test_kappa_interval_covers_the_true_kappa_about_95_percent_of_the_time():
    # Latent-class model: each item has a true class; each rater reports it with its own
    # accuracy and otherwise guesses uniformly, so the joint law and kappa are exact.
    prevalence = np.array([0.6, 0.3, 0.1])
    accuracy_a, accuracy_b = 0.85, 0.7
    k = prevalence.size
    guess = np.full((k, k), 1.0 / k)
    given_truth_a = accuracy_a * np.eye(k) + (1 - accuracy_a) * guess  # [truth, label]
    given_truth_b = accuracy_b * np.eye(k) + (1 - accuracy_b) * guess
    joint = np.einsum("t,ti,tj->ij", prevalence, given_truth_a, given_truth_b)
    true_kappa = population_kappa(joint)

    rng = np.random.default_rng(20240602)
    shape = (SAMPLES, SAMPLE_SIZE)
    truth = rng.choice(k, size=shape, p=prevalence)
    a = np.where(rng.random(shape) < accuracy_a, truth, rng.integers(0, k, size=shape))
    b = np.where(rng.random(shape) < accuracy_b, truth, rng.integers(0, k, size=shape))
    sample = np.arange(SAMPLES)[:, None]
    tables = np.bincount((sample * k * k + a * k + b).ravel(), minlength=SAMPLES * k * k).reshape(
        SAMPLES, k, k
    )

    results = [kappa_from_confusion(table) for table in tables]
    covered = np.array([r.low <= true_kappa <= r.high for r in results])

    assert 0.4 < true_kappa < 0.7  # a realistic, non-trivial kappa
    assert np.mean([r.value for r in results]) == pytest.approx(true_kappa, abs=0.01)
    assert 0.92 <= covered.mean() <= 0.975
