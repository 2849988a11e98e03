"""softmaxreg.metrics against scikit-learn and hand-computed values."""

import numpy as np
import pytest
import sklearn.calibration
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st

from softmaxreg.functional import log_softmax, softmax
from softmaxreg.metrics import (
    accuracy,
    brier_score,
    confusion_matrix,
    expected_calibration_error,
    log_loss,
    precision_recall_fscore,
)


def _data(seed, n=200, k=4, labels=None):
    rng = np.random.default_rng(seed)
    logits = 2 * rng.normal(size=(n, k))
    proba = softmax(logits)
    y = np.array([rng.choice(k, p=p) for p in proba])
    y_pred = np.argmax(proba, axis=1)
    if labels is not None:
        labels = np.asarray(labels)
        y, y_pred = labels[y], labels[y_pred]
    w = rng.integers(0, 4, size=n).astype(float)
    return logits, proba, y, y_pred, w


LABEL_SETS = [None, ["ant", "bee", "cat", "dog"], [-3, 0, 7, 10]]


# -- against scikit-learn ---------------------------------------------------------


@pytest.mark.parametrize("labels", LABEL_SETS)
@pytest.mark.parametrize("weighted", [False, True])
def test_accuracy_and_log_loss_match_sklearn(labels, weighted):
    logits, proba, y, y_pred, w = _data(0, labels=labels)
    sw = w if weighted else None
    assert accuracy(y, y_pred, sample_weight=sw) == pytest.approx(
        skm.accuracy_score(y, y_pred, sample_weight=sw), rel=1e-12
    )
    ref = skm.log_loss(y, proba, sample_weight=sw)
    assert log_loss(y, proba, sample_weight=sw) == pytest.approx(ref, rel=1e-12)
    assert log_loss(y, logits=logits, sample_weight=sw) == pytest.approx(ref, rel=1e-10)
    assert log_loss(y, log_proba=log_softmax(logits), sample_weight=sw) == pytest.approx(
        ref, rel=1e-10
    )
    ref_sum = skm.log_loss(y, proba, sample_weight=sw, normalize=False)
    assert log_loss(y, proba, sample_weight=sw, normalize=False) == pytest.approx(ref_sum)


def test_log_loss_clips_like_sklearn_but_logits_are_exact():
    y = [0, 1]
    proba = np.array([[1.0, 0.0], [1.0, 0.0]])  # class 1 gets probability 0
    assert log_loss(y, proba) == pytest.approx(skm.log_loss(y, proba), rel=1e-12)
    # logits: the second sample's loss is its full margin, 800, no clip
    logits = np.array([[0.0, -800.0], [0.0, -800.0]])
    expected = (np.log1p(np.exp(-800.0)) + 800.0) / 2
    assert log_loss(y, logits=logits) == pytest.approx(expected, rel=1e-14)


def test_log_loss_binary_shorthand_and_float32():
    y = np.array(["no", "yes", "yes", "no"])
    p1 = np.array([0.2, 0.7, 0.9, 0.4], dtype=np.float32)
    assert log_loss(y, p1) == pytest.approx(skm.log_loss(y, p1), rel=1e-6)
    assert log_loss(y, np.stack([1 - p1, p1], 1)) == pytest.approx(log_loss(y, p1), rel=1e-7)


@pytest.mark.parametrize("labels", LABEL_SETS)
@pytest.mark.parametrize("weighted", [False, True])
def test_brier_score_matches_sklearn_unscaled(labels, weighted):
    _, proba, y, _, w = _data(1, labels=labels)
    sw = w if weighted else None
    ref = skm.brier_score_loss(y, proba, sample_weight=sw, scale_by_half=False)
    assert brier_score(y, proba, sample_weight=sw) == pytest.approx(ref, rel=1e-12)


def test_brier_score_binary_is_twice_sklearn_default():
    rng = np.random.default_rng(2)
    p = rng.uniform(size=50)
    y = rng.integers(0, 2, size=50)
    assert brier_score(y, p) == pytest.approx(2 * skm.brier_score_loss(y, p), rel=1e-12)
    assert brier_score(y, np.stack([1 - p, p], 1)) == pytest.approx(brier_score(y, p))


@pytest.mark.parametrize("labels", LABEL_SETS)
@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
@pytest.mark.parametrize("weighted", [False, True])
def test_confusion_matrix_matches_sklearn(labels, normalize, weighted):
    _, _, y, y_pred, w = _data(3, labels=labels)
    sw = w if weighted else None
    ref = skm.confusion_matrix(y, y_pred, sample_weight=sw, normalize=normalize)
    got = confusion_matrix(y, y_pred, sample_weight=sw, normalize=normalize)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert got.dtype == ref.dtype


def test_confusion_matrix_label_subset_and_order_like_sklearn():
    y = [0, 1, 2, 2, 3]
    yp = [0, 2, 2, 1, 5]
    for labels in ([2, 0], [3, 2, 1, 0], [0, 1, 2, 4]):
        np.testing.assert_array_equal(
            confusion_matrix(y, yp, labels=labels), skm.confusion_matrix(y, yp, labels=labels)
        )
    with pytest.raises(ValueError, match="none of the given labels"):
        confusion_matrix(y, yp, labels=[9])
    w = np.array([0.5, 1, 1.5, 2, 2.5])
    np.testing.assert_allclose(
        confusion_matrix(y, yp, sample_weight=w), skm.confusion_matrix(y, yp, sample_weight=w)
    )


@pytest.mark.parametrize("labels", LABEL_SETS)
@pytest.mark.parametrize("average", [None, "macro", "weighted", "micro"])
@pytest.mark.parametrize("weighted", [False, True])
def test_precision_recall_fscore_matches_sklearn(labels, average, weighted):
    _, _, y, y_pred, w = _data(4, n=60, labels=labels)
    sw = w if weighted else None
    for beta in (1.0, 0.5):
        ref = skm.precision_recall_fscore_support(
            y, y_pred, sample_weight=sw, beta=beta, average=average, zero_division=0.0
        )
        got = precision_recall_fscore(y, y_pred, sample_weight=sw, beta=beta, average=average)
        for a, b in zip(got[:3], ref[:3]):
            np.testing.assert_allclose(a, b, rtol=1e-12)
        if average is None:
            np.testing.assert_allclose(got.support, ref[3])


def test_precision_recall_fscore_label_subset_and_zero_division():
    y = ["a", "b", "c", "c"]
    yp = ["a", "c", "c", "a"]
    labels = ["c", "b", "x"]  # "b" is never predicted, "x" never occurs
    ref = skm.precision_recall_fscore_support(y, yp, labels=labels, zero_division=0.0)
    got = precision_recall_fscore(y, yp, labels=labels)
    for a, b in zip(got[:4], ref):
        np.testing.assert_allclose(a, b)
    assert got.labels.tolist() == labels


# -- expected calibration error ----------------------------------------------------


def test_ece_hand_computed_top_label():
    # top probabilities 0.95 (right), 0.85 (wrong), 0.55 (right), 0.52 (wrong);
    # 5 uniform bins of width 0.2: (0.4, 0.6] holds 0.55 and 0.52 -> acc 0.5,
    # conf 0.535; (0.8, 1.0] holds 0.95 and 0.85 -> acc 0.5, conf 0.9.
    y = [0, 0, 1, 1]
    p = [[0.95, 0.05], [0.15, 0.85], [0.45, 0.55], [0.52, 0.48]]
    ece, bins = expected_calibration_error(y, p, n_bins=5, return_bins=True)
    assert ece == pytest.approx(0.5 * abs(0.5 - 0.535) + 0.5 * abs(0.5 - 0.9), abs=1e-15)
    np.testing.assert_allclose(bins.lower, [0.4, 0.8])
    np.testing.assert_allclose(bins.upper, [0.6, 1.0])
    np.testing.assert_allclose(bins.confidence, [0.535, 0.9])
    np.testing.assert_allclose(bins.accuracy, [0.5, 0.5])
    np.testing.assert_allclose(bins.count, [2, 2])
    # weights (3, 1, 1, 1): top bin acc 3/4, conf (3*.95 + .85)/4
    ece_w = expected_calibration_error(y, p, n_bins=5, sample_weight=[3, 1, 1, 1])
    expected = (2 / 6) * abs(0.5 - 0.535) + (4 / 6) * abs(0.75 - (3 * 0.95 + 0.85) / 4)
    assert ece_w == pytest.approx(expected, abs=1e-15)


def test_ece_hand_computed_classwise_and_quantile():
    y = [0, 1, 1, 0]
    p1 = np.array([0.1, 0.3, 0.8, 0.9])  # probability of class 1
    p = np.stack([1 - p1, p1], 1)
    # class 1, two uniform bins: (0, .5] = {.1, .3}, one true -> |.5 - .2|;
    # (.5, 1] = {.8, .9}, one true -> |.5 - .85|.  Class 0 (p = .9, .7, .2, .1)
    # mirrors it: |.5 - .15| and |.5 - .8|, the same mean 0.325.
    c1 = 0.5 * 0.3 + 0.5 * 0.35
    assert expected_calibration_error(y, p, n_bins=2, kind="classwise") == pytest.approx(c1)
    # equal mass with 4 bins: one sample per bin, |event - p| averaged.
    per_sample = np.abs(np.array([0, 1, 1, 0]) - p1).mean()
    got = expected_calibration_error(y, p, n_bins=4, kind="classwise", strategy="quantile")
    assert got == pytest.approx(per_sample, abs=1e-15)


def test_ece_classwise_binary_bins_match_sklearn_calibration_curve():
    rng = np.random.default_rng(5)
    p1 = rng.uniform(size=400)
    y = (rng.uniform(size=400) < p1**1.5).astype(int)
    p = np.stack([1 - p1, p1], 1)
    _, bins = expected_calibration_error(y, p, n_bins=10, kind="classwise", return_bins=True)
    prob_true, prob_pred = sklearn.calibration.calibration_curve(y, p1, n_bins=10)
    np.testing.assert_allclose(bins[1].accuracy, prob_true, rtol=1e-12)
    np.testing.assert_allclose(bins[1].confidence, prob_pred, rtol=1e-12)


def test_ece_quantile_bins_hold_equal_mass():
    _, proba, y, _, _ = _data(6, n=300)
    _, bins = expected_calibration_error(y, proba, n_bins=10, strategy="quantile", return_bins=True)
    np.testing.assert_array_equal(bins.count, np.full(10, 30.0))
    assert np.all(bins.lower[1:] == bins.upper[:-1])


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("kind", ["top-label", "classwise"])
def test_ece_integer_weights_equal_repeated_rows(strategy, kind):
    _, proba, y, _, w = _data(7, n=80)
    reps = w.astype(int)
    a = expected_calibration_error(
        y, proba, n_bins=7, strategy=strategy, kind=kind, sample_weight=w
    )
    b = expected_calibration_error(
        np.repeat(y, reps), np.repeat(proba, reps, axis=0), n_bins=7, strategy=strategy, kind=kind
    )
    assert a == pytest.approx(b, abs=1e-13)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 5), n_bins=st.integers(1, 20))
def test_ece_properties(seed, k, n_bins):
    _, proba, y, _, _ = _data(seed, n=40, k=k)
    for strategy in ("uniform", "quantile"):
        for kind in ("top-label", "classwise"):
            ece, bins = expected_calibration_error(
                y, proba, labels=np.arange(k), n_bins=n_bins, strategy=strategy, kind=kind,
                return_bins=True,
            )
            assert 0.0 <= ece <= 1.0
            for b in bins if kind == "classwise" else (bins,):
                assert b.count.sum() == pytest.approx(40)
                assert np.all((b.confidence >= b.lower - 1e-12) & (b.confidence <= b.upper + 1e-12))
    # one bin: ECE is |mean accuracy - mean confidence|
    top = proba.max(1)
    acc = np.mean(np.argmax(proba, 1) == y)
    assert expected_calibration_error(y, proba, labels=np.arange(k), n_bins=1) == pytest.approx(
        abs(acc - top.mean())
    )


# -- properties and bad input -----------------------------------------------------


@pytest.mark.parametrize("metric", ["accuracy", "log_loss", "brier", "confusion"])
def test_integer_weights_equal_repeated_rows(metric):
    logits, proba, y, y_pred, w = _data(8, n=50)
    r = w.astype(int)
    f = {
        "accuracy": lambda yy, pp, lp, sw=None: accuracy(yy, lp, sample_weight=sw),
        "log_loss": lambda yy, pp, lp, sw=None: log_loss(yy, pp, labels=range(4), sample_weight=sw),
        "brier": lambda yy, pp, lp, sw=None: brier_score(yy, pp, labels=range(4), sample_weight=sw),
        "confusion": lambda yy, pp, lp, sw=None: confusion_matrix(
            yy, lp, labels=range(4), sample_weight=sw
        ),
    }[metric]
    np.testing.assert_allclose(
        f(y, proba, y_pred, w), f(np.repeat(y, r), np.repeat(proba, r, 0), np.repeat(y_pred, r))
    )


def test_mixed_type_labels_need_explicit_order():
    y = np.array(["a", 1, (2, 3)], dtype=object)
    with pytest.raises(ValueError, match="pass labels"):
        confusion_matrix(y, y)
    cm = confusion_matrix(y, y[[0, 0, 2]], labels=[(2, 3), 1, "a"])
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 0, 1], [0, 0, 1]])
    assert accuracy(y, y[[0, 0, 2]]) == pytest.approx(2 / 3)
    assert accuracy(np.array([1, 2, 3]), np.array(["1", "2", "3"])) == 0.0  # 1 != "1"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: accuracy([], []), "empty"),
        (lambda: accuracy([1, 2], [1]), "same samples"),
        (lambda: accuracy([[1, 2], [3, 4]], [1, 2]), "1-D"),
        (lambda: accuracy([1, 2], [1, 2], sample_weight=[1, -1]), "non-negative"),
        (lambda: accuracy([1, 2], [1, 2], sample_weight=[1, np.nan]), "finite"),
        (lambda: accuracy([1, 2], [1, 2], sample_weight=[0, 0]), "sums to zero"),
        (lambda: log_loss([0, 1], [[0.5, 0.6], [0.5, 0.5]]), "sum to one"),
        (lambda: log_loss([0, 1], [[np.nan, 1], [0.5, 0.5]]), "finite"),
        (lambda: log_loss([0, 1], [[1.5, -0.5], [0.5, 0.5]]), r"\[0, 1\]"),
        (lambda: log_loss([0, 1], [[0.5, 0.5]] * 2, logits=[[0, 0]] * 2), "exactly one"),
        (lambda: log_loss([0, 1], log_proba=[[0.0, 0.0]] * 2), "does not normalize"),
        (lambda: log_loss([0, 0], [[0.5, 0.5]] * 2), "pass labels"),
        (lambda: log_loss([0, 5], [[0.5, 0.5]] * 2, labels=[0, 1]), "not in labels"),
        (lambda: log_loss([0, 1], [[0.5, 0.5]] * 2, labels=[0, 1, 2]), "one label per column"),
        (lambda: brier_score([0, 1], [[0.5, 0.5]] * 2, labels=[0, 0]), "duplicates"),
        (lambda: expected_calibration_error([0, 1], [[0.5, 0.5]] * 2, n_bins=0), "n_bins"),
        (lambda: expected_calibration_error([0, 1], [[0.5, 0.5]] * 2, strategy="x"), "strategy"),
        (lambda: expected_calibration_error([0, 1], [[0.5, 0.5]] * 2, kind="x"), "kind"),
        (lambda: confusion_matrix([0, 1], [0, 1], normalize="rows"), "normalize"),
        (lambda: precision_recall_fscore([0, 1], [0, 1], average="binary"), "average"),
    ],
)
def test_bad_input_says_what_to_fix(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_tuple_labels_stay_whole():
    # A list of equal-length tuples is one label per sample, not a 2-D array.
    y_true = [(0, "x"), (1, "y"), (0, "x"), (1, "y")]
    y_pred = [(0, "x"), (0, "x"), (0, "x"), (1, "y")]
    assert accuracy(y_true, y_pred) == 0.75
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred), [[2, 0], [1, 1]])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5], [0.2, 0.8]])
    expected = -np.mean(np.log([0.9, 0.6, 0.5, 0.8]))
    assert log_loss(y_true, proba) == pytest.approx(expected, rel=1e-12)


def test_ece_spellings_and_bad_options():
    rng = np.random.default_rng(3)
    proba = softmax(rng.normal(size=(60, 3)))
    y = rng.integers(0, 3, size=60)
    for a, b in [("equal-mass", "quantile"), ("equal_width", "uniform")]:
        assert expected_calibration_error(y, proba, strategy=a) == \
            expected_calibration_error(y, proba, strategy=b)
    assert expected_calibration_error(y, proba, kind="class-wise") == \
        expected_calibration_error(y, proba, kind="classwise")
    with pytest.raises(ValueError, match="strategy must be .* got 'kmeans'"):
        expected_calibration_error(y, proba, strategy="kmeans")
    with pytest.raises(ValueError, match="kind must be .* got 'marginal'"):
        expected_calibration_error(y, proba, kind="marginal")


@pytest.mark.parametrize("average", ["macro", "weighted"])
@pytest.mark.parametrize("y_true, y_pred", [([0, 1, 2], [0, 0, 0]), ([0, 1, 2, 2], [0, 0, 2, 1]), ([0, 0], [1, 1])])
def test_zero_division_nan_leaves_classes_out_of_the_average_as_sklearn(average, y_true, y_pred):
    got = precision_recall_fscore(y_true, y_pred, average=average, zero_division=np.nan)
    want = skm.precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=np.nan,
                                               labels=sorted(set(y_true) | set(y_pred)))
    np.testing.assert_allclose([got.precision, got.recall, got.fscore], want[:3])


def test_log_loss_refuses_a_row_of_minus_infinite_logits():
    with pytest.raises(ValueError, match="-inf in every class"):
        log_loss([0, 1], logits=np.array([[-np.inf, -np.inf], [0.0, 0.0]]))
    assert log_loss([0, 1], logits=np.array([[-np.inf, 0.0], [0.0, 0.0]])) == np.inf
