"""Every ``softmaxreg`` command end to end, through ``main`` and the real entry points."""

import io
import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from softmaxreg.cli import main
from softmaxreg.cli._progress import TrainingProgress
from softmaxreg.io import load_builtin, load_model, read_idx, write_idx

DEBIAN = "/usr/share/datasets/fashion-mnist"
needs_debian = pytest.mark.skipif(not os.path.isdir(DEBIAN), reason="dataset-fashion-mnist not installed")
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Iris with an extra categorical column, as CSV/Parquet/NPZ/LibSVM, split 75/25."""
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    out = {}
    for split in ("train", "test"):
        data = load_builtin(f"iris:{split}")
        frame = data.X.copy()
        frame["soil"] = rng.choice(["clay", "sand"], size=len(frame))
        frame["species"] = data.y
        frame.to_csv(d / f"{split}.csv", index=False)
        out[split] = d / f"{split}.csv"
    frame = pd.read_csv(out["train"])
    frame.drop(columns=["species"]).to_csv(d / "unlabelled.csv", index=False)
    frame.to_parquet(d / "train.parquet")
    X = frame.iloc[:, :4].to_numpy()
    codes = pd.factorize(frame.species, sort=True)[0]
    np.savez(d / "train.npz", X=X, y=codes)
    from softmaxreg.io import write_libsvm

    write_libsvm(d / "train.svm", X, codes)
    out.update(dir=d, unlabelled=d / "unlabelled.csv", parquet=d / "train.parquet",
               npz=d / "train.npz", svm=d / "train.svm")
    return out


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory):
    if not os.path.isdir(DEBIAN):
        pytest.skip("dataset-fashion-mnist not installed")
    d = tmp_path_factory.mktemp("fm") / "fashion-mnist"
    d.mkdir()
    for prefix, n in (("train", 2000), ("t10k", 500)):  # a slice of the real files
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{prefix}-{kind}-ubyte.gz"
            write_idx(d / name, read_idx(os.path.join(DEBIAN, name), max_rows=n), compress=True)
    return d.parent


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_evaluate_predict_calibrate_summary_report(tmp_path, files, capsys):
    model = tmp_path / "iris.srm"
    code, out, err = run(capsys, "train", files["train"], "--target", "species", "--standardize",
                         "--test", files["test"], "-o", model, "--C", "10")
    assert code == 0, err
    assert "one-hot encoded column 'soil' (2 categories: clay, sand)" in err
    assert "converged" in out and "test" in out and f"saved SoftmaxRegression to {model}" in out
    assert model.exists()

    code, out, err = run(capsys, "evaluate", model, files["test"], "--json")
    assert code == 0, err
    ev = json.loads(out)
    code, out, err = run(capsys, "predict", model, files["test"], "-o", tmp_path / "p.csv", "--proba")
    assert code == 0, err
    pred = pd.read_csv(tmp_path / "p.csv")
    truth = pd.read_csv(files["test"]).species
    assert ev["metrics"]["value"]["accuracy"] == pytest.approx(np.mean(pred.prediction == truth), abs=1e-15)
    proba = pred[[c for c in pred.columns if c.startswith("proba_")]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    ll = -np.mean(np.log(proba[np.arange(len(truth)), pd.factorize(truth, sort=True)[0]]))
    assert ev["metrics"]["value"]["log_loss"] == pytest.approx(ll, rel=1e-9)
    assert np.sum(ev["confusion_matrix"]) == len(truth)

    code, out, err = run(capsys, "evaluate", model, files["test"])
    assert code == 0 and "confusion matrix" in out and "precision" in out and "ECE" in out

    # raw data without a label column: the stored preprocessing is replayed
    code, out, err = run(capsys, "predict", model, files["unlabelled"], "-o", tmp_path / "u.parquet")
    assert code == 0, err
    assert len(pd.read_parquet(tmp_path / "u.parquet")) == len(pd.read_csv(files["unlabelled"]))

    code, out, err = run(capsys, "calibrate", model, files["test"])
    assert code == 0, err
    assert "temperature T =" in out and "before" in out and "after" in out
    bundle = load_model(model)
    assert bundle.calibration["method"] == "temperature" and bundle.calibration["temperature"] > 0
    code, out, err = run(capsys, "evaluate", model, files["test"], "--json")
    metrics = json.loads(out)["metrics"]
    assert metrics["calibrated"]["log_loss"] <= metrics["uncalibrated"]["log_loss"] + 1e-12
    code, out, err = run(capsys, "calibrate", model, files["test"], "--method", "vector",
                         "-o", tmp_path / "vec.srm")
    assert code == 0 and load_model(tmp_path / "vec.srm").calibration["method"] == "vector"

    code, out, err = run(capsys, "summary", model)
    assert code == 0, err
    assert "std err" in out or "std" in out
    assert "sepal length (cm)" in out and "soil=sand" in out  # names, not x0, x1, ...

    code, out, err = run(capsys, "report", model, files["test"], "-o", tmp_path / "r.html")
    assert code == 0, err
    html = (tmp_path / "r.html").read_text()
    assert "Coefficients" in html and "after calibration" in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")


@pytest.mark.parametrize("kind", ["parquet", "npz", "svm"])
def test_other_formats_train(tmp_path, files, capsys, kind):
    extra = ["--target", "species"] if kind == "parquet" else []
    code, out, err = run(capsys, "train", files[kind], *extra, "-o", tmp_path / "m.srm", "-q")
    assert code == 0, err
    assert err == ""  # --quiet
    code, out, err = run(capsys, "predict", tmp_path / "m.srm", files[kind], "-o", "-")
    assert code == 0, err
    assert out.splitlines()[0] == "prediction" and len(out.splitlines()) == 1 + 114


def test_compile_command_warms_every_kernel_and_reports_it(capsys):
    """softmaxreg compile runs each fused path once per dtype (make's install step has run it, so
    here the kernels come from the cache) and says what it did; --quiet says nothing."""
    code, out, err = run(capsys, "compile")
    assert code == 0, err
    for what in ("softmax family, float32, rows of 10", "loss passes, float64", "SGD epoch and prediction, float64",
                 "kernels compiled and cached in"):
        assert what in err
    code, out, err = run(capsys, "compile", "--quiet")
    assert code == 0 and out == err == ""


def test_compile_command_runs_its_groups_in_parallel_processes(capsys):
    code, out, err = run(capsys, "compile", "--jobs", "2")
    assert code == 0, err
    assert "in 2 processes" in err
    assert sum("float32" in line or "float64" in line for line in err.splitlines()) == 8


def test_compile_command_compiles_in_its_own_process_where_none_can_be_started(capsys, monkeypatch):
    import concurrent.futures

    def refuse(*args, **kwargs):
        raise OSError("process limit reached")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", refuse)
    code, out, err = run(capsys, "compile", "--jobs", "2")
    assert code == 0, err
    assert "no worker processes (process limit reached)" in err
    assert sum("float32" in line or "float64" in line for line in err.splitlines()) == 8


def test_builtin_names_and_datasets_command(tmp_path, capsys):
    code, out, err = run(capsys, "datasets")
    assert code == 0 and all(n in out for n in ("fashion-mnist", "digits", "iris", "wine"))
    code, out, err = run(capsys, "train", "digits:train", "--max-iter", "30", "-o", tmp_path / "d.srm",
                         "--test", "digits:test")
    assert code == 0, err
    code, out, err = run(capsys, "report", tmp_path / "d.srm", "digits:test", "-o", tmp_path / "d.html")
    assert code == 0, err
    assert (tmp_path / "d.html").read_text().count("data:image/png;base64,") >= 10  # 8x8 weight images


def test_mlp_option(tmp_path, files, capsys):
    code, out, err = run(capsys, "train", files["train"], "--target", "species", "--standardize",
                         "--model", "mlp", "--hidden", "16", "--epochs", "3", "--lr", "0.05",
                         "-o", tmp_path / "mlp.srm")
    assert code == 0, err
    est = load_model(tmp_path / "mlp.srm").estimator
    assert type(est).__name__ == "MLPClassifier" and est.hidden_layer_sizes == (16,)
    code, out, err = run(capsys, "evaluate", tmp_path / "mlp.srm", files["test"])
    assert code == 0, err
    code, out, err = run(capsys, "summary", tmp_path / "mlp.srm")
    assert code == 0, err
    assert "hidden layers 16" in out and "6 -> 16" in out and "16 -> 3" in out  # 4 measures + 2 soils


def test_mlp_options_mean_what_they_mean_for_softmax(tmp_path, capsys):
    # --C is scikit-learn's C for both models: the MLP's per-sample decay is 1 / (C n), which is
    # alpha = batch_size / (C n) in scikit-learn's batch-scaled alpha
    code, out, err = run(capsys, "train", "iris:train", "--model", "mlp", "--hidden", "8", "--C", "2",
                         "--momentum", "0.9", "--dtype", "float32", "--epochs", "2", "-o", tmp_path / "m.srm")
    assert code == 0, err
    n_train = load_builtin("iris:train").X.shape[0]
    est = load_model(tmp_path / "m.srm").estimator
    assert est.alpha == pytest.approx(min(200, n_train) / (2.0 * n_train))
    assert est.momentum == 0.9 and est.dtype == "float32" and est.n_iter_ == 2
    assert est.solver == "adam" and est.max_iter == 2
    code, out, err = run(capsys, "train", "iris:train", "--model", "mlp", "--solver", "sgd", "--lr", "0.05",
                         "--batch-size", "16", "--epochs", "2", "-o", tmp_path / "m2.srm")
    assert code == 0, err
    est = load_model(tmp_path / "m2.srm").estimator
    assert (est.solver, est.learning_rate_init, est.batch_size) == ("sgd", 0.05, 16)
    code, out, err = run(capsys, "train", "iris:train", "--model", "mlp", "--solver", "lbfgs",
                         "-o", tmp_path / "m3.srm")
    assert code != 0 and "adam" in err
    code, out, err = run(capsys, "train", "iris:train", "--solver", "sgd", "--momentum", "0.5",
                         "--epochs", "2", "-o", tmp_path / "s.srm")
    assert code == 0, err
    assert load_model(tmp_path / "s.srm").estimator.momentum == 0.5


@needs_debian
def test_fashion_mnist_slice_and_demo(tmp_path, fashion_dir, capsys, monkeypatch):
    monkeypatch.setenv("SOFTMAXREG_DATA", str(fashion_dir))
    code, out, err = run(capsys, "train", "fashion-mnist", "--solver", "sgd", "--epochs", "3",
                         "-o", tmp_path / "fm.srm")
    assert code == 0, err
    assert "test" in out  # the official test split is used by default
    acc = load_model(tmp_path / "fm.srm").metadata["metrics"]["test"]["accuracy"]
    assert 0.6 < acc < 0.95
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "demo", "--max-iter", "15", "--save", "demo.srm")
    assert code == 0, err
    assert "published test accuracy of logistic regression: 0.842" in out
    assert "minibatch SGD" in out and "temperature scaling" in out
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 11  # ten classes' weights and the colour scale
    assert load_model(tmp_path / "demo.srm").calibration["method"] == "temperature"


def test_real_entry_points(tmp_path, files):
    model = tmp_path / "m.srm"
    r = subprocess.run([sys.executable, "-m", "softmaxreg", "train", str(files["train"]), "--target",
                        "species", "-o", str(model)], capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    exe = os.path.join(os.path.dirname(sys.executable), "softmaxreg")
    r = subprocess.run([exe, "evaluate", str(model), str(files["test"])], capture_output=True, text=True,
                       env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and "\r" not in r.stderr  # no progress bar without a terminal
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("softmaxreg ")


def test_ctrl_c_keeps_previous_model(tmp_path, files):
    model = tmp_path / "m.srm"
    r = subprocess.run([sys.executable, "-m", "softmaxreg", "train", str(files["train"]), "--target",
                        "species", "-o", str(model), "-q"], capture_output=True, env=ENV, timeout=120)
    assert r.returncode == 0
    before = model.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-m", "softmaxreg", "train", str(files["train"]), "--target", "species",
         "--solver", "sgd", "--epochs", "100000000", "--batch-size", "1", "-o", str(model), "-v"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    guard = threading.Timer(120, proc.kill)  # never hang the suite on a silent process
    guard.start()
    try:
        line = "-"
        while line and "epoch" not in line:  # training has started
            line = proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        guard.cancel()
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert model.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.srm"]


class _TTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_only_on_terminals():
    tty = _TTY()
    bar = TrainingProgress(total=10, unit="epoch", label="sgd", stream=tty,
                           accuracy=lambda info: 0.5)
    bar._min_interval = 0.0
    for i in range(1, 4):
        bar({"iteration": i, "objective": 1.0 / i, "elapsed": 0.5 * i})
    bar.close()
    text = tty.getvalue()
    # rich's bar, redrawn in place on one line, which is ended (the cursor shown again) at close
    assert text.replace("\x1b[?25h", "").endswith("\n") and "━" in text and "sgd" in text
    assert text.count("\n") == 1 and "\r" in text and "3/10 epoch" in text and "loss 0.3333" in text and "acc 0.5000" in text and "2.0 epoch/s" in text
    pipe = io.StringIO()
    quiet = TrainingProgress(total=10, stream=pipe)
    quiet({"iteration": 1, "objective": 1.0, "elapsed": 0.1})
    quiet.close()
    assert pipe.getvalue() == "" and quiet.records[0]["objective"] == 1.0
    verbose = TrainingProgress(total=10, stream=pipe, verbose=1)
    verbose({"iteration": 1, "objective": 1.0, "elapsed": 0.1})
    assert pipe.getvalue().count("\n") == 1 and "\r" not in pipe.getvalue()


def test_warnings_are_one_line_each(tmp_path, files, capsys):
    code, out, err = run(capsys, "train", files["train"], "--target", "species", "--max-iter", "2",
                         "-o", tmp_path / "m.srm")
    assert code == 0
    lines = [line for line in err.splitlines() if "warning" in line]
    assert len(lines) == 1 and lines[0].startswith("softmaxreg: warning: ") and "converge" in lines[0]
    assert "Warning:" not in err and ".py:" not in err  # no Python warning format, no file paths
