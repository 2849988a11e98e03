"""Lazy readers for data larger than memory: a Parquet data set or a Zarr store as Dask collections.

Nothing is read but metadata: the returned :class:`Dataset` holds a
``dask.dataframe.DataFrame`` (Parquet) or a ``dask.array.Array`` (Zarr) that
:meth:`SoftmaxRegression.fit` and the prediction methods take as they are,
one partition at a time.
"""

from __future__ import annotations

import glob
import os

from ._tabular import DEFAULT_TARGETS, Dataset

__all__ = ["scan_parquet", "scan_zarr"]


def _parquet_files(path) -> str:
    path = os.fspath(path)
    if os.path.isdir(path) or os.path.isfile(path):
        return path
    if glob.has_magic(path):
        if not glob.glob(path):
            raise FileNotFoundError(f"no file matches {path!r}; check the pattern and the folder")
        return path
    raise FileNotFoundError(f"{path!r} does not exist; give a Parquet file, a folder of them or a glob")


def scan_parquet(path, target=None, *, require_target=True, columns=None) -> Dataset:
    """A Parquet data set (a file, a folder or a glob such as ``'data/*.parquet'``) as lazy Dask collections.

    Parameters
    ----------
    path : str or path-like
        One file, a folder of part files, or a glob pattern.
    target : str, optional
        The label column. When omitted, a column named ``target``, ``label``,
        ``labels``, ``class`` or ``y`` is used if there is exactly one.
    require_target : bool, default=True
        Whether a missing label column is an error (False for prediction).
    columns : list of str, optional
        Feature columns to read (all but the label when None).

    Returns
    -------
    Dataset
        ``X`` a ``dask.dataframe.DataFrame`` of the features (one partition per
        row group or file), ``y`` a ``dask.dataframe.Series`` of the labels (or
        None), ``feature_names`` the feature columns.

    Examples
    --------
    >>> import os, tempfile, pandas as pd
    >>> folder = tempfile.mkdtemp()
    >>> for part in range(2):
    ...     pd.DataFrame({"a": [0.0, 1.0], "y": ["u", "v"]}).to_parquet(os.path.join(folder, f"{part}.parquet"))
    >>> data = scan_parquet(os.path.join(folder, "*.parquet"))
    >>> data.target, data.feature_names, data.X.npartitions, len(data.y)
    ('y', ['a'], 2, 4)
    """
    import dask.dataframe as dd

    name = _parquet_files(path)
    try:
        frame = dd.read_parquet(name)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError on foreign files
        raise ValueError(f"{name!r} is not a readable Parquet data set ({exc})") from None
    names = [str(c) for c in frame.columns]
    if target is None:
        found = [c for c in names if c.lower() in DEFAULT_TARGETS]
        if len(found) == 1:
            target = found[0]
        elif require_target:
            raise ValueError(
                f"{name!r}: say which column holds the labels (--target / target=); columns are {names[:20]}"
            )
    elif target not in names:
        if require_target:
            raise ValueError(f"{name!r} has no column {target!r}; columns are {names[:20]}")
        target = None
    y = frame[target] if target is not None else None
    features = [c for c in (columns or names) if c != target]
    missing = [c for c in features if c not in names]
    if missing:
        raise ValueError(f"{name!r} has no columns {missing}")
    if not features:
        raise ValueError(f"{name!r} has no feature columns besides the label {target!r}")
    return Dataset(X=frame[features], y=y, feature_names=features, name=name, target=target)


def scan_zarr(path, *, X="X", y="y", require_target=True) -> Dataset:
    """Arrays ``X`` (n_samples, n_features) and ``y`` (n_samples,) of a Zarr group as lazy Dask arrays.

    Parameters
    ----------
    path : str or path-like
        A Zarr store (a folder) holding the two arrays.
    X, y : str, default="X", "y"
        The arrays' names in the store; ``y`` is rechunked to the row chunks of ``X``.
    require_target : bool, default=True
        Whether a missing ``y`` is an error.

    Returns
    -------
    Dataset
        ``X`` and ``y`` as ``dask.array.Array`` (chunks those of the store).

    Examples
    --------
    >>> import tempfile, numpy as np, zarr
    >>> store = tempfile.mkdtemp() + "/data.zarr"
    >>> group = zarr.open_group(store, mode="w")
    >>> group.create_array("X", data=np.ones((6, 2)), chunks=(3, 2)) is not None
    True
    >>> group.create_array("y", data=np.arange(6) % 2, chunks=(6,)) is not None
    True
    >>> data = scan_zarr(store)
    >>> data.X.chunks, data.y.chunks
    (((3, 3), (2,)), ((3, 3),))
    """
    import dask.array as da

    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"{name!r} does not exist; give the folder of a Zarr store")
    try:
        Xa = da.from_zarr(name, component=X)
    except Exception as exc:
        raise ValueError(f"{name!r} has no readable Zarr array {X!r} ({exc})") from None
    if Xa.ndim != 2:
        raise ValueError(f"{name!r}: array {X!r} must be 2-D (n_samples, n_features), got shape {Xa.shape}")
    try:
        ya = da.from_zarr(name, component=y)
    except Exception as exc:
        if require_target:
            raise ValueError(f"{name!r} has no readable Zarr array {y!r} for the labels ({exc})") from None
        ya = None
    if ya is not None:
        if ya.shape != (Xa.shape[0],):
            raise ValueError(f"{name!r}: {y!r} has shape {ya.shape} but {X!r} has {Xa.shape[0]} rows")
        if ya.chunks[0] != Xa.chunks[0]:
            ya = ya.rechunk({0: Xa.chunks[0]})
    features = [f"x{j}" for j in range(Xa.shape[1])]
    return Dataset(X=Xa, y=ya, feature_names=features, name=name, target=None if ya is None else y)
