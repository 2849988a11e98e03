"""Cluster-robust covariance against statsmodels MNLogit (cov_type="cluster")."""

import numpy as np
import pytest
import statsmodels.api as sm

from _inference_data import anes96, fit, generated


@pytest.mark.parametrize("data", [anes96, generated])
def test_cluster_covariance_matches_statsmodels(data):
    X, y = data()
    groups = np.random.default_rng(3).integers(0, 25, size=y.size)
    ref = sm.MNLogit(y, sm.add_constant(X)).fit(
        disp=0, method="newton", tol=1e-12, maxiter=100, cov_type="cluster",
        cov_kwds={"groups": groups},
    )
    model = fit(X, y, np.unique(y)[0])
    res = model.inference("cluster", groups=groups)
    np.testing.assert_allclose(res.bse, np.asarray(ref.bse).T.ravel(), rtol=1e-8)
    np.testing.assert_allclose(model.cov_params("cluster", groups=groups),
                               np.asarray(ref.cov_params()), rtol=1e-7, atol=1e-12)
    assert "cluster" in str(model.summary(cov_type="cluster", groups=groups))


def test_cluster_weights_are_repeated_rows_and_labels_any_type():
    X, y = generated(4, 200)
    w = np.random.default_rng(5).integers(1, 4, size=y.size)
    groups = np.array(["g%d" % g for g in np.random.default_rng(6).integers(0, 12, y.size)])
    a = fit(X, y, "a", sample_weight=w).inference("cluster", groups=groups)
    b = fit(np.repeat(X, w, axis=0), np.repeat(y, w), "a").inference(
        "cluster", groups=np.repeat(groups, w))
    np.testing.assert_allclose(a.bse, b.bse, rtol=1e-6)


def test_cluster_bad_input():
    X, y = generated(7, 120)
    model = fit(X, y, "a")
    with pytest.raises(ValueError, match="needs groups"):
        model.cov_params("cluster")
    with pytest.raises(ValueError, match="one label per training row"):
        model.cov_params("cluster", groups=np.zeros(5))
    with pytest.raises(ValueError, match="at least two clusters"):
        model.cov_params("cluster", groups=np.zeros(y.size))
    with pytest.raises(ValueError, match="only with"):
        model.cov_params("HC0", groups=np.arange(y.size))
