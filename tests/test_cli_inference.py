"""``softmaxreg margins``, ``summary --rrr`` and ``train --formula`` end to end through ``main``."""

import numpy as np
import pandas as pd
import pytest

from _inference_data import generated
from softmaxreg import SoftmaxRegression
from softmaxreg import formula as sf
from softmaxreg.cli import main
from softmaxreg.io import load_model


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("margins")
    X, y = generated(20, 300)
    frame = pd.DataFrame({"x": X[:, 0], "flag": X[:, 1], "n": X[:, 2],
                          "region": np.random.default_rng(21).choice(["u", "v"], size=300),
                          "y": y})
    frame.to_csv(d / "train.csv", index=False)
    # Without the categorical column: the CLI's one-hot encoding keeps every level,
    # which an unpenalized fit with an intercept cannot identify.
    frame.drop(columns="region").to_csv(d / "numeric.csv", index=False)
    return d, frame


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_margins_and_rrr_on_a_trained_model(data, capsys):
    d, frame = data
    model = d / "m.srm"
    code, out, err = run(["train", d / "numeric.csv", "--target", "y", "--penalty", "none",
                          "--reference-class", "b", "-o", model, "-q"], capsys)
    assert code == 0, err
    ref = SoftmaxRegression(penalty=None, reference_class="b").fit(
        frame[["x", "flag", "n"]].to_numpy(), frame.y)
    code, out, err = run(["margins", model, d / "numeric.csv", "--at", "mean", "--dummy"], capsys)
    assert code == 0, err
    me = ref.marginal_effects(at="mean", dummy=True)
    assert "Marginal effects" in out and "Discrete change from 0 to 1: flag" in out
    me.features, me.dummy_features = ["x", "flag", "n"], ["flag"]
    assert str(me) in out  # the same table, to the printed digits
    code, out, err = run(["summary", model, "--rrr"], capsys)
    assert code == 0, err
    assert "relative-risk ratios" in out
    table = ref.summary(rrr=True).to_frame()
    for value in table["rrr"]:
        assert f"{value:.4f}" in out
    code, out, err = run(["margins", model, d / "numeric.csv", "--method", "eyex", "--dummy"],
                         capsys)
    assert code == 2 and "elasticity" in err


def test_summary_rrr_needs_standard_errors(data, capsys, tmp_path):
    d, _ = data
    model = tmp_path / "sym.srm"
    assert run(["train", d / "numeric.csv", "--target", "y", "--penalty", "none", "-o", model,
                "-q"], capsys)[0] == 0  # symmetric coding: no standard errors stored
    code, _, err = run(["summary", model, "--rrr"], capsys)
    assert code == 2 and "--rrr needs" in err


def test_train_formula_then_predict_and_margins(data, capsys, tmp_path):
    d, frame = data
    model = tmp_path / "formula.srm"
    code, out, err = run(["train", d / "train.csv", "--formula",
                          "y ~ x + np.log1p(n) + C(region) + x:flag", "--penalty", "none",
                          "--reference-class", "a", "-o", model], capsys)
    assert code == 0, err
    assert "C(region)[T.v]" in out and "np.log1p(n)" in out
    est = load_model(model).estimator
    ref = sf.fit("y ~ x + np.log1p(n) + C(region) + x:flag", frame, penalty=None,
                 reference_class="a")
    np.testing.assert_allclose(est.predict_proba(frame), ref.predict_proba(frame), rtol=1e-6)
    code, out, err = run(["predict", model, d / "train.csv", "-o", tmp_path / "p.csv",
                          "--proba"], capsys)
    assert code == 0, err
    pred = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_allclose(pred[["proba_a", "proba_b", "proba_c"]].to_numpy(),
                               ref.predict_proba(frame), rtol=1e-6)
    code, out, err = run(["margins", model, d / "train.csv"], capsys)
    assert code == 0, err
    assert str(ref.marginal_effects()) in out
    code, out, err = run(["summary", model, "--rrr"], capsys)
    assert code == 0 and "C(region)[T.v]" in out


def test_cli_errors(data, capsys, tmp_path):
    d, _ = data
    model = tmp_path / "l2.srm"
    assert run(["train", d / "train.csv", "--target", "y", "-o", model, "-q"], capsys)[0] == 0
    code, _, err = run(["margins", model, d / "train.csv"], capsys)
    assert code == 2 and "--penalty none" in err
    code, _, err = run(["train", d / "train.csv", "--formula", "z ~ x", "-o", model], capsys)
    assert code == 2 and "z" in err


def test_train_formula_takes_weights_and_refuses_an_intercept_option(data, capsys, tmp_path):
    d, frame = data
    w = np.arange(len(frame)) % 3 + 1.0
    frame.assign(w=w).to_csv(d / "weighted.csv", index=False)
    model = tmp_path / "weighted.srm"
    code, out, err = run(["train", d / "weighted.csv", "--formula", "y ~ x + n", "--penalty", "none",
                          "--reference-class", "b", "--sample-weight", "w", "-o", model], capsys)
    assert code == 0, err
    ref = sf.fit("y ~ x + n", frame, sample_weight=w, penalty=None, reference_class="b")
    np.testing.assert_allclose(load_model(model).estimator.predict_proba(frame), ref.predict_proba(frame),
                               rtol=1e-6)
    code, out, err = run(["train", d / "train.csv", "--formula", "y ~ x", "--no-fit-intercept",
                          "-o", tmp_path / "x.srm"], capsys)
    assert code == 2 and "y ~ x - 1" in err
