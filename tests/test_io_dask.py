"""Lazy Parquet and Zarr readers: Dask collections that fit to the in-memory optimum."""

import numpy as np
import pytest

dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")
zarr = pytest.importorskip("zarr")

from softmaxreg import SoftmaxRegression  # noqa: E402
from softmaxreg.io import scan_parquet, scan_zarr  # noqa: E402


def _frame(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = np.argmax(X @ rng.normal(size=(3, 3)).T + rng.gumbel(size=(n, 3)), axis=1)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["label"] = np.array(["x", "y", "z"])[y]
    return frame


@pytest.fixture
def parquet_folder(tmp_path):
    frame = _frame()
    for part in range(4):
        frame.iloc[part * 60:(part + 1) * 60].to_parquet(tmp_path / f"part-{part}.parquet", index=False)
    return tmp_path, frame


@pytest.mark.parametrize("how", ["glob", "folder", "file"])
def test_scan_parquet_fits_like_in_memory(parquet_folder, how):
    folder, frame = parquet_folder
    path = {"glob": folder / "*.parquet", "folder": folder, "file": folder / "part-0.parquet"}[how]
    data = scan_parquet(str(path))
    assert isinstance(data.X, dd.DataFrame) and data.target == "label"
    assert data.feature_names == ["a", "b", "c"]
    rows = frame if how != "file" else frame.iloc[:60]
    model = SoftmaxRegression(tol=1e-8).fit(data.X, data.y)
    ref = SoftmaxRegression(tol=1e-8).fit(rows[["a", "b", "c"]], rows["label"])
    np.testing.assert_allclose(model.coef_, ref.coef_, atol=1e-6)
    assert model.classes_.tolist() == ["x", "y", "z"]
    assert model.feature_names_in_.tolist() == ["a", "b", "c"]


def test_parquet_re_read_each_pass_on_cluster(parquet_folder, dask_client):
    folder, frame = parquet_folder
    data = scan_parquet(str(folder / "*.parquet"), target="label")
    model = SoftmaxRegression(solver="lbfgs", tol=1e-8).fit(data.X, data.y, persist=False)
    ref = SoftmaxRegression(solver="lbfgs", tol=1e-8).fit(frame[["a", "b", "c"]], frame["label"])
    np.testing.assert_allclose(model.coef_, ref.coef_, atol=1e-6)


def test_scan_zarr(tmp_path):
    frame = _frame(seed=1)
    X = frame[["a", "b", "c"]].to_numpy()
    y = frame["label"].map({"x": 0, "y": 1, "z": 2}).to_numpy()
    group = zarr.open_group(str(tmp_path / "d.zarr"), mode="w")
    group.create_array("X", data=X, chunks=(50, 3))
    group.create_array("y", data=y, chunks=(80,))
    data = scan_zarr(str(tmp_path / "d.zarr"))
    assert data.y.chunks[0] == data.X.chunks[0]
    model = SoftmaxRegression(tol=1e-8).fit(data.X, data.y)
    np.testing.assert_allclose(model.coef_, SoftmaxRegression(tol=1e-8).fit(X, y).coef_, atol=1e-6)


def test_reader_errors(tmp_path, parquet_folder):
    folder, _ = parquet_folder
    with pytest.raises(FileNotFoundError, match="no file matches"):
        scan_parquet(str(tmp_path / "nothing-*.parquet"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan_parquet(str(tmp_path / "missing.parquet"))
    with pytest.raises(ValueError, match="has no column 'target'"):
        scan_parquet(str(folder / "*.parquet"), target="target")
    assert scan_parquet(str(folder / "*.parquet"), target="nope", require_target=False).y is None
    with pytest.raises(FileNotFoundError):
        scan_zarr(str(tmp_path / "none.zarr"))
    zarr.open_group(str(tmp_path / "e.zarr"), mode="w").create_array("X", data=np.ones((4, 2)))
    with pytest.raises(ValueError, match="no readable Zarr array 'y'"):
        scan_zarr(str(tmp_path / "e.zarr"))
