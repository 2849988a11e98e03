"""softmaxreg.plot on matplotlib's Agg backend: each plot renders and shows the model's own numbers."""

import io
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from softmaxreg import metrics, plot  # noqa: E402
from softmaxreg.io import ModelBundle, Preprocessor, load_builtin  # noqa: E402
from softmaxreg.models import MLPClassifier, SoftmaxRegression, TemperatureScaling  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def iris():
    data = load_builtin("iris")
    X = data.X.to_numpy(dtype=float)
    X = (X - X.mean(0)) / X.std(0)
    return X, np.asarray(data.y)


@pytest.fixture(scope="module")
def clf(iris):
    return SoftmaxRegression(C=0.5).fit(*iris)


def _renders(disp):
    assert disp.figure_ is disp.ax_.figure
    buf = io.BytesIO()
    disp.figure_.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_cells_are_the_metric(clf, iris, normalize):
    X, y = iris
    disp = plot.ConfusionMatrixDisplay.from_estimator(clf, X, y, normalize=normalize)
    expected = metrics.confusion_matrix(y, clf.predict(X), labels=clf.classes_, normalize=normalize)
    np.testing.assert_array_equal(disp.confusion_matrix, expected)
    np.testing.assert_array_equal(np.asarray(disp.im_.get_array()), expected)
    shown = np.array([[float(t.get_text()) for t in row] for row in disp.text_])
    np.testing.assert_allclose(shown, expected, atol=0.005)
    assert disp.display_labels == [str(c) for c in clf.classes_]
    assert [t.get_text() for t in disp.ax_.get_yticklabels()] == disp.display_labels
    _renders(disp)


def test_confusion_matrix_on_a_given_axes_and_a_bundle(iris):
    X, y = iris
    pre = Preprocessor(standardize=True).fit(X * 10 + 3)
    bundle = ModelBundle(SoftmaxRegression().fit(pre.transform(X * 10 + 3), y), pre)
    fig, (a, b) = plt.subplots(1, 2)
    disp = plot.ConfusionMatrixDisplay.from_estimator(bundle, X * 10 + 3, y, ax=b)
    assert disp.ax_ is b and disp.figure_ is fig
    assert disp.confusion_matrix.sum() == len(y)
    np.testing.assert_array_equal(
        disp.confusion_matrix, metrics.confusion_matrix(y, bundle.predict(X * 10 + 3), labels=bundle.classes_))


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_points_are_the_metric(clf, iris, strategy):
    X, y = iris
    disp = plot.CalibrationDisplay.from_estimator(clf, X, y, n_bins=8, strategy=strategy)
    ece, bins = metrics.expected_calibration_error(y, clf.predict_proba(X), labels=clf.classes_, n_bins=8,
                                                   strategy=strategy, return_bins=True)
    assert disp.ece == ece
    (line,) = disp.lines_
    np.testing.assert_array_equal(line.get_xdata(), bins.confidence)
    np.testing.assert_array_equal(line.get_ydata(), bins.accuracy)
    assert f"{ece:.4f}" in disp.ax_.get_title()
    _renders(disp)


def test_calibration_classwise_and_calibrated(clf, iris):
    X, y = iris
    cal = TemperatureScaling(clf).fit(X[::2], y[::2])
    disp = plot.CalibrationDisplay.from_estimator(cal, X, y, kind="classwise", n_bins=5)
    assert len(disp.lines_) == 3
    _, bins = metrics.expected_calibration_error(y, cal.predict_proba(X), labels=clf.classes_, n_bins=5,
                                                 kind="classwise", return_bins=True)
    for line, b in zip(disp.lines_, bins):
        np.testing.assert_array_equal(line.get_ydata(), b.accuracy)
    assert [line.get_label() for line in disp.lines_] == [str(c) for c in clf.classes_]


def test_coefficients_heat_map(clf, iris):
    disp = plot.CoefficientsDisplay.from_estimator(clf)
    assert disp.image_shape is None
    np.testing.assert_array_equal(disp.coef, clf.coef_)
    np.testing.assert_array_equal(np.asarray(disp.im_.get_array()), clf.coef_)
    lo, hi = disp.im_.get_clim()
    assert lo == -hi == -np.abs(clf.coef_).max()
    _renders(disp)
    centred = plot.CoefficientsDisplay.from_estimator(clf, center=True)
    np.testing.assert_allclose(centred.coef, clf.coef_ - clf.coef_.mean(axis=0), atol=1e-15)


def test_coefficients_images_for_image_data():
    data = load_builtin("digits")  # 8 x 8 images: 64 features
    X = data.X.to_numpy(dtype=float) if hasattr(data.X, "to_numpy") else np.asarray(data.X, dtype=float)
    clf = SoftmaxRegression(C=0.1, max_iter=30).fit(X[:600] / 16, np.asarray(data.y)[:600])
    disp = plot.CoefficientsDisplay.from_estimator(clf)
    assert disp.image_shape == (8, 8)
    mosaic = np.asarray(disp.im_.get_array())
    assert mosaic.shape == (2 * 9 - 1, 5 * 9 - 1)  # 10 classes as 2 rows of 5 tiles, 1-pixel gaps
    for k in range(10):
        r0, c0 = (k // 5) * 9, (k % 5) * 9
        np.testing.assert_array_equal(mosaic[r0:r0 + 8, c0:c0 + 8], clf.coef_[k].reshape(8, 8))
    texts = [t.get_text() for t in disp.ax_.texts]
    assert texts == [str(c) for c in clf.classes_]
    _renders(disp)
    assert plot.CoefficientsDisplay.from_estimator(clf, image_shape=False).image_shape is None
    assert plot.CoefficientsDisplay.from_estimator(clf, image_shape=(4, 16)).image_shape == (4, 16)


def test_training_curve_softmax_regression_and_mlp(iris):
    X, y = iris
    for est, unit in ((SoftmaxRegression(solver="lbfgs"), "iteration"),
                      (SoftmaxRegression(solver="sgd", max_iter=12, tol=None, random_state=0), "epoch"),
                      (MLPClassifier(hidden_layer_sizes=(5,), random_state=0), "epoch")):
        est.fit(X, y)
        disp = plot.TrainingCurveDisplay.from_estimator(est)
        np.testing.assert_array_equal(disp.line_.get_ydata(), est.history_)
        np.testing.assert_array_equal(disp.line_.get_xdata(), np.arange(1, len(est.history_) + 1))
        assert disp.ax_.get_xlabel() == unit
        assert disp.validation_scores is None
        _renders(disp)


def test_training_curve_shows_validation_scores(iris):
    X, y = iris
    mlp = MLPClassifier(hidden_layer_sizes=(5,), early_stopping=True, random_state=0).fit(X, y)
    disp = plot.TrainingCurveDisplay.from_estimator(mlp, log=True)
    np.testing.assert_array_equal(disp.validation_scores, mlp.validation_scores_)
    assert disp.ax_.get_yscale() == "log"
    _renders(disp)


def test_bad_input(clf, iris):
    X, y = iris
    with pytest.raises(ValueError, match="not fitted|call fit"):
        plot.confusion_matrix(SoftmaxRegression(), X, y)
    with pytest.raises(ValueError, match="one label per row"):
        plot.confusion_matrix(clf, X, y[:-1])
    with pytest.raises(ValueError, match="one label per row"):
        plot.calibration(clf, X, y[:, None])
    with pytest.raises(ValueError, match="normalize"):
        plot.confusion_matrix(clf, X, y, normalize="rows")
    with pytest.raises(ValueError, match="n_bins"):
        plot.calibration(clf, X, y, n_bins=0)
    with pytest.raises(TypeError, match="Axes"):
        plot.calibration(clf, X, y, ax="left")
    with pytest.raises(ValueError, match="image_shape"):
        plot.coefficients(clf, image_shape=(3, 3))
    with pytest.raises(ValueError, match="MLPClassifier has none"):
        plot.coefficients(MLPClassifier(hidden_layer_sizes=(3,), random_state=0).fit(X, y))
    with pytest.raises(ValueError, match="not fitted"):
        plot.training_curve(SoftmaxRegression())
    assert plt.get_fignums() == []  # nothing was drawn for bad input


def test_missing_matplotlib_names_the_extra(clf, iris, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install softmaxreg\[plot\]"):
        plot.confusion_matrix(clf, *iris)


def test_functions_return_the_axes_they_drew_on(clf, iris):
    """The functions return a matplotlib Axes (``ax`` when given); the Displays carry the numbers."""
    from matplotlib.axes import Axes

    X, y = iris
    fig, axes = plt.subplots(2, 2)
    drawn = [plot.confusion_matrix(clf, X, y, ax=axes[0, 0]), plot.calibration(clf, X, y, ax=axes[0, 1]),
             plot.coefficients(clf, ax=axes[1, 0]), plot.training_curve(clf, ax=axes[1, 1])]
    assert drawn == [axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]]
    new = plot.calibration(clf, X, y)
    assert isinstance(new, Axes) and new.figure is not fig
    assert [len(a.get_title()) > 0 for a in drawn[:2]] == [True, True]
    assert plot.ConfusionMatrixDisplay.from_estimator(clf, X, y).confusion_matrix.sum() == len(y)
