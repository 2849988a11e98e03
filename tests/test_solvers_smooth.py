"""lbfgs and newton_cg on LinearSoftmaxLoss: scikit-learn's optimum, criteria, warnings, callbacks."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from softmaxreg.loss import LinearSoftmaxLoss
from softmaxreg.solvers import lbfgs, newton_cg, newton_refine

SOLVERS = {"lbfgs": lbfgs, "newton-cg": newton_cg}


def dataset(name):
    if name == "synthetic":
        X, y = make_classification(300, 8, n_informative=5, n_classes=4, random_state=0)
    else:
        X, y = {"iris": load_iris, "wine": load_wine}[name](return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("name", ["iris", "wine", "synthetic"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("C", [0.1, 10.0])
def test_reaches_sklearn_optimum(name, solver, C):
    X, y = dataset(name)
    loss = LinearSoftmaxLoss(X, y, l2_reg_strength=1.0 / (C * len(y)))
    res = SOLVERS[solver](loss, np.zeros(loss.n_params), tol=1e-10, max_iter=1000)
    sk = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    ref = loss.loss(loss.pack(sk.coef_, sk.intercept_))
    assert res.converged
    assert res.fun == pytest.approx(loss.loss(res.x), rel=1e-15)
    assert res.fun <= ref * (1 + 1e-6)
    assert abs(res.fun - ref) <= 1e-6 * ref
    # tol=1e-10 is below what f can resolve (f changes by ~g**2/h); both solvers
    # then stop on "no further change in floating point", with a tiny gradient.
    assert res.grad_norm <= 1e-7
    assert np.max(np.abs(loss.gradient(res.x))) == res.grad_norm
    coef, _ = loss.unpack(res.x)
    np.testing.assert_allclose(coef, sk.coef_, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("solver", SOLVERS)
def test_max_iter_gives_convergence_warning(solver):
    X, y = dataset("wine")
    loss = LinearSoftmaxLoss(X, y, l2_reg_strength=1e-4)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        res = SOLVERS[solver](loss, np.zeros(loss.n_params), tol=1e-12, max_iter=2)
    assert not res.converged and res.n_iter == 2


@pytest.mark.parametrize("solver", SOLVERS)
def test_callback_sees_each_iteration_and_can_stop(solver):
    X, y = dataset("iris")
    loss = LinearSoftmaxLoss(X, y, l2_reg_strength=1e-3)
    seen = []

    def callback(x, f, n_iter):
        seen.append((n_iter, f))
        return n_iter == 3

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a requested stop is no failure
        res = SOLVERS[solver](loss, np.zeros(loss.n_params), tol=1e-12, callback=callback)
    assert [n for n, _ in seen] == [1, 2, 3]
    assert res.n_iter == 3 and not res.converged and res.message == "stopped by callback"
    assert [f for _, f in seen] == res.history[:3]


@pytest.mark.parametrize("solver", SOLVERS)
def test_history_decreases_and_ends_at_fun(solver):
    X, y = dataset("synthetic")
    loss = LinearSoftmaxLoss(X, y, l2_reg_strength=1e-3)
    res = SOLVERS[solver](loss, np.zeros(loss.n_params), tol=1e-8, max_iter=500)
    h = np.array(res.history)
    assert np.all(np.diff(h) <= 1e-15 * np.abs(h[:-1]))
    assert h[-1] == res.fun


def test_already_optimal_start_takes_no_iteration():
    X, y = dataset("iris")
    loss = LinearSoftmaxLoss(X, y, l2_reg_strength=1e-2)
    x = lbfgs(loss, np.zeros(loss.n_params), tol=1e-10).x
    res = newton_cg(loss, x, tol=1e-6)
    assert res.n_iter == 0 and res.converged
    np.testing.assert_array_equal(res.x, x)


def test_newton_cg_handles_unidentified_symmetric_coding():
    # No penalty and all rows free: the Hessian is singular along the shift of all
    # rows; trust-region CG must still converge (to a minimizer of the loss).
    X, y = dataset("iris")
    loss = LinearSoftmaxLoss(X[::3], y[::3])
    res = newton_cg(loss, np.zeros(loss.n_params), tol=1e-6, max_iter=200)
    assert np.max(np.abs(loss.gradient(res.x))) <= 1e-6


def test_newton_refine_reaches_the_minimizer_from_a_loose_fit():
    from softmaxreg.solvers import newton_refine

    X, y = load_wine(return_X_y=True)  # unscaled: an ill-conditioned Hessian
    loss = LinearSoftmaxLoss(X[:, [0, 6, 9]], y, reference_class=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        loose = lbfgs(loss, np.zeros(loss.n_params), tol=1e-4, max_iter=500)
    res = newton_refine(loss, loose.x)
    assert res.converged and res.n_iter <= 10
    assert np.max(np.abs(loss.gradient(res.x))) < 1e-12
    assert res.fun <= loose.fun
    # Newton from the minimizer does not move it.
    again = newton_refine(loss, res.x)
    np.testing.assert_allclose(again.x, res.x, rtol=1e-12, atol=1e-14)


def test_preconditioned_steihaug_takes_the_newton_step_and_respects_the_m_norm():
    from softmaxreg.solvers._newton_cg import _steihaug

    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.normal(size=(30, 30)))[0]
    A = Q @ np.diag(np.logspace(-3, 3, 30)) @ Q.T
    g = rng.normal(size=30)
    A_inv = np.linalg.inv(A)
    newton = -A_inv @ g
    # M = A: one CG step gives the exact Newton step.
    p, Hp, norm, steps = _steihaug(lambda v: A @ v, g, 1e6, 30, lambda r: A_inv @ r)
    assert steps == 1
    assert norm == pytest.approx(np.sqrt(newton @ A @ newton), rel=1e-8)
    np.testing.assert_allclose(p, newton, rtol=1e-8)
    np.testing.assert_allclose(Hp, A @ p, rtol=1e-8, atol=1e-10)
    # A radius below ||newton||_M: the step ends on the boundary of the M-norm ball.
    radius = 0.5 * np.sqrt(newton @ A @ newton)
    p, _, norm, _ = _steihaug(lambda v: A @ v, g, radius, 30, lambda r: A_inv @ r)
    assert np.sqrt(p @ A @ p) == pytest.approx(radius, rel=1e-10) and norm == radius
    # Without M the ball is Euclidean and CG needs many steps on this spectrum.
    p, _, _, steps = _steihaug(lambda v: A @ v, g, 1e-2, 30)
    assert np.linalg.norm(p) == pytest.approx(1e-2, rel=1e-10)
    p, _, norm, steps = _steihaug(lambda v: A @ v, g, 1e6, 30)
    assert steps > 10 and norm == pytest.approx(np.linalg.norm(p), rel=1e-8)


def test_preconditioning_reaches_the_exact_optimum_with_far_fewer_hessian_products():
    X, y = make_classification(2000, 12, n_informative=8, n_classes=4, random_state=1)
    X = X * np.logspace(-1.5, 1.5, 12) + 2.0  # ill-conditioned, not centered
    loss = LinearSoftmaxLoss(X, y, l2_reg_strength=1e-6)
    x0 = np.zeros(loss.n_params)
    pre = newton_cg(loss, x0, tol=1e-7, max_iter=200)
    assert pre.converged and pre.grad_norm <= 1e-7
    # Exact Newton steps on the dense Hessian barely move it: it is the optimum.
    exact = newton_refine(loss, pre.x)
    assert exact.fun == pytest.approx(pre.fun, rel=1e-12)
    np.testing.assert_allclose(pre.x, exact.x, atol=1e-4 * np.abs(exact.x).max())
    # Plain CG needs over ten times the Hessian products, if it gets there at all.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = newton_cg(loss, x0, tol=1e-7, max_iter=100, precondition=False)
    assert plain.n_hessp > 10 * pre.n_hessp
    assert not plain.converged or plain.fun >= pre.fun - 1e-12


def test_newton_cg_without_a_preconditioner_method_runs_plain_cg():
    class Quadratic:
        A, b = np.diag(np.logspace(0, 4, 40)), np.ones(40)

        def loss_gradient(self, x):
            return 0.5 * x @ self.A @ x - self.b @ x, self.A @ x - self.b

        def hessp(self, x, v):
            return self.A @ v

    res = newton_cg(Quadratic(), np.zeros(40), tol=1e-7, initial_radius=1e3)
    assert res.converged
    np.testing.assert_allclose(res.x, 1.0 / np.diag(Quadratic.A), rtol=0, atol=1e-7)
    assert res.n_hessp > 20


def test_newton_cg_is_newton_on_a_badly_scaled_small_problem():
    """Uncentred features on scales from 0.1 to 100 (condition number ~1e8): with fewer parameters than
    the preconditioning threshold, CG runs into its cap each iteration unless the class blocks are used.
    The unpenalized maximum likelihood is reached in a Newton-like number of iterations, as statsmodels'
    MNLogit reaches it."""
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)) * [1, 10, 100, 0.1] + 5
    y = rng.integers(0, 3, 200)
    loss = LinearSoftmaxLoss(X, y, reference_class=0)
    res = newton_cg(loss, np.zeros(loss.n_params), tol=1e-8)
    assert res.converged and res.n_iter <= 30
    ref = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", disp=0, maxiter=100)
    assert res.fun * len(y) == pytest.approx(-ref.llf, rel=1e-10)
