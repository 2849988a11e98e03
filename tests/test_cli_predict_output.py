"""``softmaxreg predict -o``: every suffix it accepts is written in that format and read back; any other is
refused before any work; text, integer and boolean labels keep their type."""

import gzip

import numpy as np
import pandas as pd
import pytest

from softmaxreg.cli import main
from softmaxreg.io import load_model


@pytest.fixture(scope="module", params=["text", "bool"])
def trained(request, tmp_path_factory):
    d = tmp_path_factory.mktemp("predict-out")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = X[:, 0] + 0.5 * rng.normal(size=60) > 0
    labels = np.where(y, "yes", "no") if request.param == "text" else y
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": labels}).to_csv(d / "d.csv", index=False)
    assert main(["-q", "train", str(d / "d.csv"), "--target", "y", "-o", str(d / "m.srm")]) == 0
    return d, labels


def test_every_suffix_round_trips(trained, capsys):
    d, labels = trained
    classes = load_model(d / "m.srm").classes_
    assert classes.dtype == labels.dtype or (classes.dtype.kind == labels.dtype.kind == "U")
    readers = {
        "p.csv": lambda p: pd.read_csv(p),
        "p.csv.gz": lambda p: pd.read_csv(gzip.open(p)),
        "p.tsv": lambda p: pd.read_csv(p, sep="\t"),
        "p.parquet": pd.read_parquet,
        "p.npz": lambda p: pd.DataFrame(dict(np.load(p, allow_pickle=False))),
    }
    frames = {}
    for name, read in readers.items():
        assert main(["-q", "predict", str(d / "m.srm"), str(d / "d.csv"), "--proba", "-o", str(d / name)]) == 0
        frames[name] = read(d / name)
    for name, frame in frames.items():
        got = frame["prediction"].astype(str).tolist()
        assert got == frames["p.parquet"]["prediction"].astype(str).tolist(), name
        assert set(got) <= {str(c) for c in classes}, name
    assert np.load(d / "p.npz", allow_pickle=False)["prediction"].dtype.kind in "Ub"  # no object array
    capsys.readouterr()


def test_an_unknown_suffix_is_refused_before_any_work(trained, capsys):
    d, _ = trained
    assert main(["predict", str(d / "missing-model.srm"), str(d / "d.csv"), "-o", str(d / "p.json")]) == 2
    err = capsys.readouterr().err
    assert "-o" in err and ".csv.gz" in err and "missing-model" not in err
    assert not (d / "p.json").exists()
