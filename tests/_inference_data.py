"""Data sets and an exact unpenalized fit shared by the inference tests (not a test module)."""

import numpy as np
import statsmodels.api as sm

from softmaxreg import SoftmaxRegression


def anes96():
    """statsmodels' anes96: party identification (7 classes) on five count-like features."""
    data = sm.datasets.anes96.load_pandas().data
    X = data[["logpopul", "selfLR", "age", "educ", "income"]].to_numpy()
    return X, data["PID"].to_numpy().astype(int)


def generated(seed=0, n=400):
    """Three string classes on a normal feature, a 0/1 feature and a Poisson count."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n), rng.poisson(2.0, n)])
    Z = np.column_stack([np.zeros(n), 0.5 + X @ [1.0, -0.8, 0.3], -0.3 + X @ [-0.5, 0.7, 0.2]])
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > np.cumsum(P, axis=1)).sum(axis=1)
    return X.astype(float), np.array(["a", "b", "c"])[y]


def fit(X, y, reference_class, sample_weight=None, **params):
    """The maximum-likelihood fit (penalty=None) with the given reference class."""
    return SoftmaxRegression(penalty=None, reference_class=reference_class, tol=1e-10,
                             max_iter=200, **params).fit(X, y, sample_weight=sample_weight)


def mnlogit(X, y, **kw):
    """statsmodels' MNLogit on the same design with a constant column (first class reference)."""
    return sm.MNLogit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12,
                                                  maxiter=100, **kw)
