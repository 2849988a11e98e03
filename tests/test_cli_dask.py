"""The command line's --dask: train, evaluate, predict (Parquet) and report on a Parquet folder."""

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("distributed")

from softmaxreg import SoftmaxRegression  # noqa: E402
from softmaxreg.cli import main  # noqa: E402
from softmaxreg.io import load_model  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("dask-cli")
    (d / "data").mkdir()
    rng = np.random.default_rng(0)
    frames = []
    for part in range(3):
        X = rng.normal(size=(80, 3))
        y = np.array(["a", "b", "c"])[np.argmax(2 * X + rng.gumbel(size=(80, 3)), axis=1)]
        frame = pd.DataFrame(X, columns=["u", "v", "w"])
        frame["y"] = y
        frame.to_parquet(d / "data" / f"part-{part}.parquet", index=False)
        frames.append(frame)
    return d, pd.concat(frames, ignore_index=True)


def test_train_evaluate_predict_report_with_local_cluster(folder, capsys, dask_cluster):
    d, frame = folder
    data = str(d / "data" / "*.parquet")
    model_path = str(d / "m.srm")
    assert main(["train", data, "--target", "y", "--dask", "local:2", "--tol", "1e-8", "-o", model_path]) == 0
    out, err = capsys.readouterr()
    assert "dashboard http" in err and "saved SoftmaxRegression" in out
    bundle = load_model(model_path)
    ref = SoftmaxRegression(tol=1e-8).fit(frame[["u", "v", "w"]], frame["y"])
    np.testing.assert_allclose(bundle.estimator.coef_, ref.coef_, atol=1e-6)
    assert bundle.metadata["metrics"]["train"]["accuracy"] == pytest.approx(ref.score(frame[["u", "v", "w"]], frame["y"]))

    address = dask_cluster.scheduler.address  # a running scheduler, as --dask tcp://host:port
    assert main(["evaluate", model_path, data, "--dask", address, "--json"]) == 0
    import json

    result = json.loads(capsys.readouterr().out)
    assert result["n_samples"] == 240 and np.sum(result["confusion_matrix"]) == 240

    out_path = str(d / "pred.parquet")
    assert main(["predict", model_path, data, "--dask", address, "--proba", "-o", out_path]) == 0
    pred = pd.read_parquet(out_path)
    np.testing.assert_array_equal(pred["prediction"].to_numpy(), ref.predict(frame[["u", "v", "w"]]))
    np.testing.assert_allclose(pred[["proba_a", "proba_b", "proba_c"]].to_numpy(),
                               ref.predict_proba(frame[["u", "v", "w"]]), atol=1e-6)

    assert main(["report", model_path, data, "--dask", address, "-o", str(d / "r.html")]) == 0
    assert (d / "r.html").stat().st_size > 1000


def test_dask_errors(folder, capsys):
    d, _ = folder
    data = str(d / "data" / "*.parquet")
    assert main(["train", data, "--target", "y", "--dask", "tcp://127.0.0.1:9", "-o", str(d / "x.srm")]) == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err
    assert main(["train", data, "--target", "y", "--dask", "local:0", "-o", str(d / "x.srm")]) == 2
    assert "positive number of workers" in capsys.readouterr().err
    assert main(["train", data, "--target", "y", "--dask", "local:1", "--standardize", "-o", str(d / "x.srm")]) == 2
    assert "cannot be used with --dask" in capsys.readouterr().err
    assert main(["train", str(d / "data" / "none-*.parquet"), "--target", "y", "--dask", "local:1",
                 "-o", str(d / "x.srm")]) == 2
    assert "no file matches" in capsys.readouterr().err


def test_train_options_reach_the_dask_fit(folder, tmp_path, capsys):
    """--reference-class, --class-weight and --sample-weight (a column, then no longer a feature) on Dask
    give the in-memory command's model; --formula is refused."""
    d, frame = folder
    weighted = frame.assign(n=np.arange(len(frame)) % 3 + 1)
    weighted.to_parquet(tmp_path / "w.parquet", index=False)
    options = ["--target", "y", "--reference-class", "b", "--class-weight", '{"a": 2}', "--sample-weight", "n",
               "--penalty", "none", "--tol", "1e-10"]
    assert main(["train", str(tmp_path / "w.parquet"), *options, "--dask", "local:1", "-o", str(tmp_path / "d.srm")]) == 0
    assert main(["train", str(tmp_path / "w.parquet"), *options, "-o", str(tmp_path / "m.srm")]) == 0
    on_dask, in_memory = load_model(tmp_path / "d.srm").estimator, load_model(tmp_path / "m.srm").estimator
    assert on_dask.reference_class == "b" and on_dask.class_weight == {"a": 2.0}
    assert list(on_dask.feature_names_in_) == ["u", "v", "w"]
    np.testing.assert_allclose(on_dask.coef_, in_memory.coef_, atol=1e-6)
    capsys.readouterr()
    assert main(["train", str(tmp_path / "w.parquet"), "--target", "y", "--formula", "y ~ u", "--dask", "local:1",
                 "-o", str(tmp_path / "f.srm")]) == 2
    assert "--formula cannot be used with --dask" in capsys.readouterr().err


def test_an_address_that_is_no_dask_scheduler_fails_fast(folder, capsys):
    """A server of another protocol (here a plain TCP listener that closes at once) is named, not waited on."""
    import socket
    import threading
    import time

    d, _ = folder
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def answer():
        for _ in range(3):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.0 400 Bad request\r\n\r\n")
            conn.close()

    threading.Thread(target=answer, daemon=True).start()
    start = time.monotonic()
    try:
        code = main(["train", str(d / "data" / "*.parquet"), "--target", "y", "--dask", f"tcp://127.0.0.1:{port}",
                     "-o", str(d / "x.srm")])
    finally:
        server.close()
    assert code == 2 and time.monotonic() - start < 15
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
