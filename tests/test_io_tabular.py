"""File readers: CSV, TSV, Parquet, NPZ and LibSVM, and their error messages."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from softmaxreg.io import detect_format, read_data_file, read_libsvm, read_npz, write_libsvm


@pytest.fixture
def frame():
    return pd.DataFrame({
        "a": [1.5, 2.0, -3.25, 4.0],
        "color": ["red", "blue", "red", "green"],
        "species": ["x", "y", "x", "y"],
    })


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".tsv", ".parquet"])
def test_tables_round_trip(tmp_path, frame, suffix):
    path = tmp_path / f"d{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    d = read_data_file(path, "species")
    assert d.feature_names == ["a", "color"] and d.target == "species"
    pd.testing.assert_frame_equal(d.X.reset_index(drop=True), frame[["a", "color"]])
    assert d.y.tolist() == ["x", "y", "x", "y"]


def test_default_and_case_insensitive_target(tmp_path, frame):
    path = tmp_path / "d.csv"
    frame.rename(columns={"species": "Label"}).to_csv(path, index=False)
    assert read_data_file(path).target == "Label"
    assert read_data_file(path, "label").target == "Label"


def test_integer_labels_stay_integers(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"x": [0.1, 0.2], "y": [3, 7]}).to_csv(path, index=False)
    assert read_data_file(path, "y").y.dtype.kind == "i"


def test_npz_layouts(tmp_path):
    X = np.arange(12.0).reshape(4, 3)
    np.savez(tmp_path / "a.npz", X=X, y=np.array([0, 1, 0, 1]), feature_names=np.array(["p", "q", "r"]))
    d = read_npz(tmp_path / "a.npz")
    np.testing.assert_array_equal(d.X, X)
    assert d.feature_names == ["p", "q", "r"] and d.y.tolist() == [0, 1, 0, 1]
    np.savez(tmp_path / "b.npz", u=np.array([1.0, 2.0]), kind=np.array(["a", "b"]))
    d = read_npz(tmp_path / "b.npz", "kind")
    assert d.feature_names == ["u"] and d.y.tolist() == ["a", "b"]


def test_npz_refuses_pickled_objects(tmp_path):
    np.savez(tmp_path / "o.npz", X=np.array([[1, {"evil": 1}]], dtype=object), y=np.array([0]))
    with pytest.raises(ValueError, match="pickle"):
        read_npz(tmp_path / "o.npz")


def test_libsvm_matches_scikit_learn(tmp_path):
    datasets = pytest.importorskip("sklearn.datasets")
    rng = np.random.default_rng(0)
    X = sp.random(30, 12, density=0.3, random_state=1, format="csr")
    X.data = rng.normal(size=X.data.size)
    y = rng.integers(0, 3, size=30)
    path = tmp_path / "d.svm"
    datasets.dump_svmlight_file(X, y, str(path), zero_based=False)
    ref_X, ref_y = datasets.load_svmlight_file(str(path), n_features=12, zero_based=False)
    d = read_libsvm(path, n_features=12)
    np.testing.assert_array_equal(d.X.toarray(), ref_X.toarray())
    np.testing.assert_array_equal(d.y, ref_y)
    write_libsvm(tmp_path / "e.svm", X, y)
    np.testing.assert_array_equal(read_libsvm(tmp_path / "e.svm", n_features=12).X.toarray(), X.toarray())


def test_libsvm_qid_comments_zero_based(tmp_path):
    path = tmp_path / "q.libsvm"
    path.write_text("# header comment\n2 qid:1 0:1.5 2:-1\n\n1 qid:2 1:2 # trailing\n")
    d = read_libsvm(path)
    np.testing.assert_array_equal(d.X.toarray(), [[1.5, 0, -1], [0, 2, 0]])
    assert d.y.tolist() == [2, 1]


@pytest.mark.parametrize(
    "content, name, match",
    [
        (None, "missing.csv", "no such file"),
        ("", "empty.csv", "empty"),
        ("a,b,y\n", "header.csv", "no data rows"),
        ("a,y\n1,2\n", "data.xlsx", "cannot tell the format"),
        ("1 1:x\n", "bad.svm", "line 1"),
        ("not a zip", "bad.npz", "not a readable .npz"),
        ("garbage", "bad.parquet", "not a readable Parquet"),
    ],
)
def test_errors(tmp_path, content, name, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        read_data_file(path, "y")


def test_unknown_target_lists_columns(tmp_path, frame):
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match="no column 'kind'.*a, color, species"):
        read_data_file(path, "kind")
    with pytest.raises(ValueError, match="--target COL"):
        read_data_file(path)


def test_missing_labels_are_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,y\n1,x\n2,\n3,y\n")
    with pytest.raises(ValueError, match="missing in 1 rows.*row 2"):
        read_data_file(path, "y")


def test_format_override():
    assert detect_format("whatever.txt", "libsvm") == "libsvm"
    with pytest.raises(ValueError, match="unknown format 'xls'"):
        detect_format("a.csv", "xls")


def test_write_libsvm_refuses_what_read_libsvm_cannot_read(tmp_path):
    X = np.array([[1.0, 0.0], [0.0, 2.5]])
    with pytest.raises(ValueError, match="LibSVM labels are finite numbers"):
        write_libsvm(tmp_path / "t.svm", X, np.array(["setosa", "virginica"]))
    with pytest.raises(ValueError, match="NaN or inf"):
        write_libsvm(tmp_path / "t.svm", np.array([[np.nan, 1.0], [0.0, 1.0]]), np.array([0, 1]))
    assert not list(tmp_path.iterdir())  # nothing half-written
    write_libsvm(tmp_path / "t.svm", X, np.array([0, 1]))
    back = read_libsvm(tmp_path / "t.svm")
    np.testing.assert_array_equal(np.asarray(back.X.todense() if hasattr(back.X, "todense") else back.X), X)
