"""The train options --reference-class, --class-weight, --sample-weight, --fit-intercept and the
summary options --cov-type, --alpha, --sort, end to end through the command line."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from softmaxreg.cli import main
from softmaxreg.io import load_model


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def csv(tmp_path):
    """Three classes from a multinomial logit on three features, with a frequency-weight column."""
    rng = np.random.default_rng(0)
    n = 300
    X = rng.normal(size=(n, 3))
    logits = np.c_[X @ [-0.4, 0.6, 0.1], np.zeros(n), X @ [0.5, -0.3, 0.2] + 0.1]
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    y = np.array(["low", "mid", "top"])[[rng.choice(3, p=row) for row in p]]
    frame = pd.DataFrame({"zeta": X[:, 0], "alpha": X[:, 1], "mu": X[:, 2], "w": rng.integers(1, 4, n),
                          "grade": y})
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _table(model_path, key="inference"):
    rec = load_model(model_path).metadata[key]
    return pd.DataFrame({c: rec["data"][c] for c in rec["columns"]})


def test_reference_class_matches_statsmodels_mnlogit(tmp_path, csv, capsys):
    sm = pytest.importorskip("statsmodels.api")
    path, frame = csv
    model = tmp_path / "m.srm"
    code, out, err = run(capsys, "train", path, "--target", "grade", "--sample-weight", "w",
                         "--penalty", "none", "--reference-class", "mid", "-o", model)
    assert code == 0, err
    # frequency weights are repeated rows for statsmodels
    rows = np.repeat(np.arange(len(frame)), frame["w"])
    data = frame.iloc[rows]
    # MNLogit's base is its first category: code "mid" first, then the others in order
    codes = data["grade"].map({"mid": 0, "low": 1, "top": 2}).to_numpy()
    exog = sm.add_constant(data[["zeta", "alpha", "mu"]].to_numpy())
    res = sm.MNLogit(codes, exog).fit(method="newton", tol=1e-14, maxiter=100, disp=0)
    table = _table(model)
    assert list(table["feature"][:4]) == ["intercept", "zeta", "alpha", "mu"]  # the data's order
    for j, label in enumerate(["low", "top"]):
        part = table[table["class"] == label]
        np.testing.assert_allclose(part["coef"], res.params[:, j], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(part["std err"], res.bse[:, j], rtol=1e-6, atol=1e-8)
    assert "mid" not in set(table["class"])


def test_summary_cov_type_alpha_and_sort(tmp_path, csv, capsys):
    path, _ = csv
    model = tmp_path / "m.srm"
    code, out, err = run(capsys, "train", path, "--target", "grade", "--penalty", "none",
                         "--reference-class", "low", "-o", model)
    assert code == 0, err
    code, out, err = run(capsys, "summary", model)
    assert code == 0, err
    names = [line.split()[1] for line in out.splitlines() if line.startswith("mid ")]
    assert names == ["intercept", "zeta", "alpha", "mu", "w"]  # the data's column order
    assert "nonrobust" in out and "95% intervals" in out
    code, hc0, err = run(capsys, "summary", model, "--cov-type", "HC0", "--alpha", "0.1")
    assert code == 0, err
    assert "HC0" in hc0 and "90% intervals" in hc0 and "[0.05" in hc0 and "0.95]" in hc0
    robust, plain = _table(model, "inference_HC0"), _table(model)
    assert not np.allclose(robust["std err"], plain["std err"])
    np.testing.assert_allclose(robust["coef"], plain["coef"])
    code, by_size, err = run(capsys, "summary", model, "--sort")
    assert code == 0, err
    est = load_model(model).estimator
    k = list(est.classes_).index("mid")
    order = [["zeta", "alpha", "mu", "w"][j] for j in np.argsort(-np.abs(est.coef_[k]))]
    names = [line.split()[1] for line in by_size.splitlines() if line.startswith("mid ")]
    assert names == ["intercept", *order]
    code, out, err = run(capsys, "summary", model, "--alpha", "2")
    assert code != 0 and "--alpha" in err
    assert norm.ppf(0.95) > 1.6  # the 90% interval uses z = 1.645


def test_class_weight_and_fit_intercept(tmp_path, csv, capsys):
    path, frame = csv
    code, out, err = run(capsys, "train", path, "--target", "grade", "--class-weight", '{"top": 3}',
                         "--no-fit-intercept", "-o", tmp_path / "a.srm")
    assert code == 0, err
    est = load_model(tmp_path / "a.srm").estimator
    assert est.class_weight == {"top": 3.0} and est.fit_intercept is False
    assert np.all(est.intercept_ == 0)
    code, out, err = run(capsys, "train", path, "--target", "grade", "--class-weight", "balanced",
                         "-o", tmp_path / "b.srm")
    assert code == 0, err
    assert load_model(tmp_path / "b.srm").estimator.class_weight == "balanced"
    for bad, words in ((["--class-weight", "{oops"], "JSON"), (["--class-weight", '{"x": 1}'], "not one of"),
                       (["--reference-class", "nope"], "not one of"), (["--sample-weight", "v"], "no column")):
        code, out, err = run(capsys, "train", path, "--target", "grade", *bad, "-o", tmp_path / "c.srm")
        assert code != 0 and words in err, (bad, err)
    code, out, err = run(capsys, "train", path, "--target", "grade", "--model", "mlp", "--no-fit-intercept",
                         "-o", tmp_path / "d.srm")
    assert code != 0 and "--no-fit-intercept is for --model softmax" in err, err


@pytest.mark.parametrize("prep", [[], ["--standardize"], ["--standardize", "--impute"]])
def test_sample_weight_is_not_a_feature_and_weighs_rows(tmp_path, csv, capsys, prep):
    """Frequency weights equal repeated rows, the standardization's statistics and imputed values included."""
    path, frame = csv
    if "--impute" in prep:
        frame = frame.assign(mu=frame["mu"].mask(frame.index % 7 == 0))
        frame.to_csv(path, index=False)
    code, out, err = run(capsys, "train", path, "--target", "grade", "--sample-weight", "w", *prep,
                         "-o", tmp_path / "w.srm")
    assert code == 0, err
    bundle = load_model(tmp_path / "w.srm")
    assert "w" not in bundle.feature_names and bundle.estimator.n_features_in_ == 3
    repeated = frame.loc[np.repeat(frame.index, frame["w"])].drop(columns="w")
    repeated.to_csv(tmp_path / "r.csv", index=False)
    code, out, err = run(capsys, "train", tmp_path / "r.csv", "--target", "grade", *prep, "-o", tmp_path / "r.srm")
    assert code == 0, err
    other = load_model(tmp_path / "r.srm")
    np.testing.assert_allclose(bundle.estimator.coef_, other.estimator.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(bundle.predict_proba(frame), other.predict_proba(frame), rtol=1e-6, atol=1e-9)


def test_lr_schedule_reaches_both_models(tmp_path, csv, capsys):
    path, frame = csv
    code, out, err = run(capsys, "train", path, "--target", "grade", "--solver", "sgd",
                         "--lr-schedule", "adaptive", "--epochs", "300", "-o", tmp_path / "s.srm")
    assert code == 0, err
    est = load_model(tmp_path / "s.srm").estimator
    assert est.learning_rate_schedule == "adaptive" and est.converged_
    code, out, err = run(capsys, "train", path, "--target", "grade", "--model", "mlp", "--hidden", "8",
                         "--solver", "sgd", "--lr-schedule", "invscaling", "--epochs", "3",
                         "-o", tmp_path / "m.srm")
    assert code == 0, err
    assert load_model(tmp_path / "m.srm").estimator.learning_rate == "invscaling"
    code, out, err = run(capsys, "train", path, "--target", "grade", "--solver", "sgd",
                         "--lr-schedule", "invscaling", "-o", tmp_path / "x.srm")
    assert code != 0 and "inverse_time" in err and not (tmp_path / "x.srm").exists()


def test_integer_labels_class_weight_and_table(tmp_path, csv, capsys):
    """Integer class labels: a JSON --class-weight keyed by them is stored, and the summary names
    the classes as the data does (2, not 2.0000)."""
    path, frame = csv
    frame = frame.assign(grade=frame["grade"].map({"low": 0, "mid": 1, "top": 2}))
    frame.to_csv(path, index=False)
    code, out, err = run(capsys, "train", path, "--target", "grade", "--class-weight", '{"0": 3, "2": 1}',
                         "-o", tmp_path / "a.srm")
    assert code == 0, err
    est = load_model(tmp_path / "a.srm").estimator
    assert est.class_weight == {0: 3.0, 2: 1.0}
    code, out, err = run(capsys, "summary", tmp_path / "a.srm")
    assert code == 0, err
    classes = {line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["intercept"]}
    assert classes == {"0", "1", "2"}


def test_rank_deficient_design_named_by_columns(tmp_path, csv, capsys):
    """Without a penalty, a constant column and a full one-hot column set are named as the data names
    them, with what to do."""
    path, frame = csv
    frame = frame.assign(const=1.0, color=np.array(["red", "blue", "green"])[np.arange(len(frame)) % 3])
    frame.to_csv(path, index=False)
    code, out, err = run(capsys, "train", path, "--target", "grade", "--penalty", "none", "--sample-weight", "w",
                         "-o", tmp_path / "a.srm")
    assert code != 0
    assert "'const' is constant" in err and "color=red" in err and "--formula" in err and "x4" not in err
    from softmaxreg.cli._commands import _with_column_names  # a label such as 'x1' is not a column
    import types

    pre = types.SimpleNamespace(feature_names_out_=["a", "b"], columns_=[])
    assert _with_column_names("y holds labels ['x1', 'x0']", pre, None) == "y holds labels ['x1', 'x0']"
    assert not (tmp_path / "a.srm").exists()
    frame.drop(columns="const").to_csv(path, index=False)
    code, out, err = run(capsys, "train", path, "--target", "grade", "--penalty", "none", "--sample-weight", "w",
                         "--no-fit-intercept", "-o", tmp_path / "b.srm")
    assert code == 0, err  # the one-hot columns take the intercept's place


def test_formula_models_name_their_terms_and_store_hc0(tmp_path, csv, capsys):
    path, frame = csv
    model = tmp_path / "f.srm"
    code, out, err = run(capsys, "train", path, "--target", "grade", "--formula", "grade ~ zeta + mu",
                         "--penalty", "none", "--reference-class", "mid", "-o", model)
    assert code == 0, err
    code, out, err = run(capsys, "summary", model, "--cov-type", "HC0")
    assert code == 0, err
    assert "zeta" in out and "mu" in out and "x0" not in out
    code, out, err = run(capsys, "train", path, "--target", "grade", "--formula", "grade ~ zeta + mu",
                         "--penalty", "none", "-o", tmp_path / "g.srm")  # symmetric coding: no standard errors
    assert code == 0, err
    code, out, err = run(capsys, "summary", tmp_path / "g.srm")
    assert code == 0 and "zeta" in out and "x0" not in out


def test_stdout_is_for_predict_only_and_max_rows_without_labels(tmp_path, csv, capsys):
    path, frame = csv
    code, out, err = run(capsys, "train", path, "--target", "grade", "-o", "-")
    assert code != 0 and "for predict" in err
    code, out, err = run(capsys, "train", path, "--target", "grade", "-o", tmp_path / "m.srm")
    assert code == 0, err
    frame.drop(columns="grade").to_csv(tmp_path / "new.csv", index=False)
    code, out, err = run(capsys, "predict", tmp_path / "m.srm", tmp_path / "new.csv", "--max-rows", "5",
                         "-o", tmp_path / "p.csv")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "p.csv")) == 5


def test_evaluate_warns_of_unseen_categories_and_a_wrong_separator_is_hinted(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "g": rng.choice(["u", "v"], 60),
                          "y": rng.choice(["a", "b"], 60)})
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.assign(g="w").to_csv(tmp_path / "t.csv", index=False)
    assert run(capsys, "train", tmp_path / "d.csv", "--target", "y", "-o", tmp_path / "m.srm")[0] == 0
    code, out, err = run(capsys, "evaluate", tmp_path / "m.srm", tmp_path / "t.csv")
    assert code == 0 and "60 rows of 'g' hold categories not seen in training" in err
    code, out, err = run(capsys, "train", tmp_path / "d.csv", "--format", "tsv", "--target", "y", "-o",
                         tmp_path / "x.srm")
    assert code != 0 and "read as one column" in err
