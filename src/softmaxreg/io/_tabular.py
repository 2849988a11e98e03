"""Readers for the tabular formats the command accepts: CSV, Parquet, NPZ, LibSVM.

Every reader returns a :class:`Dataset`: the raw features (a pandas
DataFrame for CSV and Parquet, a dense ndarray for NPZ, a SciPy CSR matrix
for LibSVM), the labels when the file has them, and the feature names.
Encoding and scaling happen later, in :mod:`softmaxreg.io._preprocess`, so
that the same steps can be stored with a model and replayed by ``predict``.

Problems with the input raise :class:`ValueError` (or
:class:`FileNotFoundError`) whose message names the file and says what to do.
"""

from __future__ import annotations

import lzma
import os
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._archive import ZIP_ERRORS, ArchiveError, read_npy_member

__all__ = [
    "Dataset",
    "FORMATS",
    "detect_format",
    "read_csv",
    "read_parquet",
    "read_npz",
    "read_libsvm",
    "write_libsvm",
    "read_data_file",
]

#: File formats and the suffixes that select them.
FORMATS = {
    "csv": (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz"),
    "tsv": (".tsv", ".tsv.gz", ".tab"),
    "parquet": (".parquet", ".pq"),
    "npz": (".npz",),
    "libsvm": (".svm", ".libsvm", ".svmlight"),
}
#: Column names taken as the label column when ``--target`` is not given.
DEFAULT_TARGETS = ("target", "label", "labels", "class", "y")


@dataclass
class Dataset:
    """Features and labels as read, before any encoding.

    Attributes
    ----------
    X : DataFrame, ndarray of shape (n_samples, n_features) or CSR matrix
    y : ndarray of shape (n_samples,) or None
    feature_names : list of str
    name : str
        Where the data came from (a path or a built-in name).
    target : str or None
        The label column's name.
    image_shape : tuple of int or None
        For image data, the shape of one image, e.g. (28, 28).
    class_names : list of str or None
        Human names of the integer labels (e.g. "T-shirt/top" for 0).
    """

    X: object
    y: np.ndarray | None
    feature_names: list[str]
    name: str
    target: str | None = None
    image_shape: tuple[int, ...] | None = None
    class_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]


def detect_format(path: str | os.PathLike, format: str | None = None) -> str:
    """Return the format name for ``path`` from ``format`` or the suffix.

    >>> detect_format("train.csv.gz"), detect_format("a.pq"), detect_format("x.dat", "npz")
    ('csv', 'parquet', 'npz')
    """
    if format is not None:
        fmt = format.lower()
        if fmt not in FORMATS:
            raise ValueError(
                f"unknown format {format!r}; use one of {', '.join(sorted(FORMATS))}"
            )
        return fmt
    lower = os.fspath(path).lower()
    for fmt, suffixes in FORMATS.items():
        if lower.endswith(suffixes):
            return fmt
    suffix = os.path.splitext(lower)[1] or "(none)"
    raise ValueError(
        f"cannot tell the format of {os.fspath(path)!r} from its suffix {suffix}; "
        f"name it .csv, .parquet, .npz or .svm, or pass --format "
        f"{{{','.join(sorted(FORMATS))}}}"
    )


def _check_exists(path: str | os.PathLike) -> str:
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"no such file: {name!r}; check the path")
    if os.path.isdir(name):
        raise ValueError(f"{name!r} is a directory; give a data file")
    if os.path.getsize(name) == 0:
        raise ValueError(f"{name!r} is empty; give a file with a header row and data")
    return name


def _split_target(frame: pd.DataFrame, name: str, target: str | None, require_target: bool):
    if target is None:
        found = [c for c in frame.columns if str(c).lower() in DEFAULT_TARGETS]
        if len(found) == 1:
            target = found[0]
        elif require_target:
            cols = ", ".join(map(str, frame.columns[:12])) + (", ..." if frame.shape[1] > 12 else "")
            raise ValueError(
                f"{name!r}: say which column holds the labels with --target COL "
                f"(columns: {cols})"
            )
    if target is None:
        return frame, None, None
    if target not in frame.columns:
        matches = [c for c in frame.columns if str(c).lower() == str(target).lower()]
        if len(matches) == 1:
            target = matches[0]
        else:
            cols = ", ".join(map(str, frame.columns[:12])) + (", ..." if frame.shape[1] > 12 else "")
            hint = ""
            if frame.shape[1] == 1 and any(sep in str(frame.columns[0]) for sep in (",", "\t", ";")):
                hint = (" (the header was read as one column: is the field separator another than the one "
                        "assumed? check --format)")
            raise ValueError(
                f"{name!r} has no column {target!r}; choose --target from: {cols}{hint}"
            )
    y = frame[target]
    if y.isna().any():
        bad = np.flatnonzero(y.isna().to_numpy())
        raise ValueError(
            f"{name!r}: the label column {target!r} is missing in {bad.size} rows "
            f"(first at data row {bad[0] + 1}); fill or drop those rows"
        )
    return frame.drop(columns=[target]), _labels_array(y), str(target)


def _labels_array(y: pd.Series) -> np.ndarray:
    values = y.to_numpy()
    if values.dtype == object or isinstance(y.dtype, pd.CategoricalDtype):
        values = np.asarray(y.astype(str).to_numpy(), dtype=str)
    elif values.dtype.kind == "f" and np.all(values == np.round(values)):
        values = values.astype(np.int64)
    # booleans stay booleans: a True/False column predicts True/False, as the Python API does
    return values


def _finish_frame(frame: pd.DataFrame, name: str, target, require_target) -> Dataset:
    if frame.shape[0] == 0:
        raise ValueError(f"{name!r} has a header but no data rows; give a file with data")
    if frame.columns.duplicated().any():
        dup = frame.columns[frame.columns.duplicated()][0]
        raise ValueError(f"{name!r}: column {dup!r} appears twice; rename one")
    frame.columns = [str(c) for c in frame.columns]
    X, y, target = _split_target(frame, name, target, require_target)
    if X.shape[1] == 0:
        raise ValueError(f"{name!r} has no feature columns besides the label {target!r}")
    return Dataset(X=X, y=y, feature_names=list(X.columns), name=name, target=target)


def read_csv(path, target=None, *, sep=None, require_target=True) -> Dataset:
    """Read a CSV (or TSV) file with a header row.

    Parameters
    ----------
    path : str or path-like
        Possibly compressed (``.csv.gz``, ...).
    target : str, optional
        The label column. When omitted, a column named ``target``, ``label``,
        ``class`` or ``y`` is used if there is exactly one.
    sep : str, optional
        Field separator; ``","`` for CSV and ``"\\t"`` for ``.tsv``.
    require_target : bool, default=True
        Whether a missing label column is an error (False for ``predict``).
    """
    name = _check_exists(path)
    if sep is None:
        sep = "\t" if detect_format(name) == "tsv" else ","
    try:
        frame = pd.read_csv(name, sep=sep, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{name!r} is empty; give a file with a header row and data") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{name!r} is not valid CSV ({str(exc).strip()[:200]})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{name!r} is not a UTF-8 text file; is it really CSV?") from None
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, ValueError,
            MemoryError, OverflowError) as exc:  # damaged compression, or pandas giving up
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{name!r} is not a readable CSV file ({type(exc).__name__}: "
                         f"{str(exc).strip()[:200]})") from None
    return _finish_frame(frame, name, target, require_target)


def read_parquet(path, target=None, *, require_target=True) -> Dataset:
    """Read a Parquet file (through pyarrow); see :func:`read_csv` for ``target``."""
    name = _check_exists(path)
    try:
        frame = pd.read_parquet(name, engine="pyarrow")
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError on foreign files
        raise ValueError(f"{name!r} is not a readable Parquet file ({exc})") from None
    return _finish_frame(frame, name, target, require_target)


_NPZ_X = ("X", "x", "data", "features")
_MAX_LIBSVM_INDEX = 2**31 - 2  # feature indices fit the int32 indices of scipy's CSR matrices
_NPZ_Y = ("y", "target", "labels", "label")


def read_npz(path, target=None, *, require_target=True) -> Dataset:
    """Read a NumPy ``.npz`` archive (never unpickling anything).

    Two layouts are understood: a 2-D feature array under ``X`` (or ``data``)
    with labels under ``y`` (or ``target``/``labels``) and optional
    ``feature_names``; or one 1-D array per column, as in a table, with
    ``target`` naming the label column.
    """
    name = _check_exists(path)
    with open(name, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            raise ValueError(f"{name!r} is not a readable .npz archive (not a ZIP file); "
                             "write it with numpy.savez")
    arrays = {}
    try:
        with zipfile.ZipFile(name) as zf:
            for info in zf.infolist():
                if info.filename.endswith(".npy"):
                    arrays[info.filename[:-4]] = read_npy_member(zf, info)[0]
    except ArchiveError as exc:
        if "pickle" in str(exc):
            raise ValueError(
                f"{name!r} holds object arrays, which need pickle to load and are "
                "refused; save plain numeric or string arrays"
            ) from None
        raise ValueError(f"{name!r} is not a readable .npz archive ({exc})") from None
    except (ValueError, *ZIP_ERRORS) as exc:
        raise ValueError(f"{name!r} is not a readable .npz archive ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from None
    if not arrays:
        raise ValueError(f"{name!r} holds no arrays; write it with numpy.savez")
    xkey = next((k for k in _NPZ_X if k in arrays and arrays[k].ndim == 2), None)
    if xkey is not None:
        X = arrays[xkey]
        ykey = target if target is not None else next((k for k in _NPZ_Y if k in arrays), None)
        if target is not None and target not in arrays:
            raise ValueError(f"{name!r} has no array {target!r}; it has {sorted(arrays)}")
        if ykey is None and require_target:
            raise ValueError(f"{name!r}: no label array; store it as 'y' next to 'X'")
        y = None if ykey is None else np.asarray(arrays[ykey]).ravel()
        if y is not None and y.shape[0] != X.shape[0]:
            raise ValueError(
                f"{name!r}: {xkey!r} has {X.shape[0]} rows but {ykey!r} has {y.shape[0]}"
            )
        if X.shape[0] == 0:
            raise ValueError(f"{name!r} holds no rows")
        fn = arrays.get("feature_names")
        names = [str(s) for s in fn] if fn is not None and fn.ndim == 1 and len(fn) == X.shape[1] else [
            f"x{j}" for j in range(X.shape[1])
        ]
        if X.dtype.kind not in "biuf":
            raise ValueError(f"{name!r}: {xkey!r} has dtype {X.dtype}; it must be numeric")
        return Dataset(X=X, y=y, feature_names=names, name=name, target=ykey)
    columns = {k: v for k, v in arrays.items() if v.ndim == 1 and v.dtype.kind in "biufUSc"}
    if not columns or len({v.shape[0] for v in columns.values()}) != 1:
        raise ValueError(
            f"{name!r}: store a 2-D array 'X' with labels 'y', or 1-D columns of equal length"
        )
    return _finish_frame(pd.DataFrame(columns), name, target, require_target)


def read_libsvm(path, n_features: int | None = None, *, zero_based: bool | str = "auto") -> Dataset:
    """Read a LibSVM / svmlight file into a CSR matrix.

    Each line is ``label index:value index:value ... [# comment]``, with
    indices increasing; ``qid:`` tokens are skipped. Indices are one-based
    unless an index 0 appears (``zero_based="auto"``).

    Parameters
    ----------
    path : str or path-like
    n_features : int, optional
        Width of the matrix (needed when the file's largest index is smaller
        than the model's, as in a test file).
    zero_based : bool or "auto", default="auto"

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "t.svm")
    >>> _ = open(p, "w").write("1 1:0.5 3:2\\n0 2:1 # a comment\\n")
    >>> d = read_libsvm(p)
    >>> d.X.toarray(), d.y
    (array([[0.5, 0. , 2. ],
           [0. , 1. , 0. ]]), array([1, 0]))
    """
    name = _check_exists(path)
    labels, indptr, indices, values = [], [0], [], []
    try:
        with open(name, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                tokens = line.split()
                try:
                    label = float(tokens[0])
                    for tok in tokens[1:]:
                        key, _, val = tok.partition(":")
                        if key == "qid":
                            continue
                        index, value = int(key), float(val)
                        if not (0 <= index <= _MAX_LIBSVM_INDEX and np.isfinite(value)):
                            raise ValueError
                        indices.append(index)
                        values.append(value)
                    if not np.isfinite(label):
                        raise ValueError
                    labels.append(label)
                except ValueError:
                    raise ValueError(
                        f"{name!r} line {lineno}: expected 'label index:value ...' with finite "
                        f"numbers and indices from 0 to {_MAX_LIBSVM_INDEX}, got {line[:60]!r}; "
                        "is this a LibSVM file?"
                    ) from None
                indptr.append(len(indices))
    except UnicodeDecodeError:
        raise ValueError(f"{name!r} is not a text file; is it really LibSVM?") from None
    if n_features is not None and (isinstance(n_features, bool) or int(n_features) < 0):
        raise ValueError(f"n_features must be a non-negative integer, got {n_features!r}")
    if not labels:
        raise ValueError(f"{name!r} holds no data lines")
    idx = np.asarray(indices, dtype=np.int64)
    if zero_based == "auto":
        zero_based = bool(idx.size and idx.min() == 0)
    if not zero_based:
        idx -= 1
    if idx.size and idx.min() < 0:
        raise ValueError(f"{name!r}: negative feature index; indices start at 1 (or 0)")
    width = int(idx.max()) + 1 if idx.size else 0
    if n_features is not None:
        if width > n_features:
            raise ValueError(
                f"{name!r} uses feature index {width} but the model has {n_features} features"
            )
        width = n_features
    X = sp.csr_matrix(
        (np.asarray(values, dtype=np.float64), idx, np.asarray(indptr, dtype=np.int64)),
        shape=(len(labels), width),
    )
    X.sum_duplicates()
    y = np.asarray(labels)
    if np.all(y == np.round(y)):
        y = y.astype(np.int64)
    names = [f"f{j + (0 if zero_based else 1)}" for j in range(width)]
    return Dataset(X=X, y=y, feature_names=names, name=name, target="label")


def write_libsvm(path, X, y) -> None:
    """Write ``X`` (dense or sparse) and ``y`` in LibSVM format, one-based, atomically.

    The format's labels are numbers, so ``y`` must be numeric (encode text labels
    first): what :func:`read_libsvm` reads back is what was written.
    """
    from ._model_file import atomic_write

    X = sp.csr_matrix(X)
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have one label per row of X ({X.shape[0]}), got shape {y.shape}")
    if y.dtype.kind not in "biuf" or not np.all(np.isfinite(y.astype(np.float64))):
        raise ValueError(f"LibSVM labels are finite numbers; y has dtype {y.dtype} (encode text labels as "
                         "integers first, e.g. with np.unique(y, return_inverse=True))")
    if not np.all(np.isfinite(X.data)):
        raise ValueError("X holds NaN or inf, which LibSVM files cannot hold")
    labels = y.astype(np.int64) if y.dtype.kind == "b" else y

    def write(fh):
        for i in range(X.shape[0]):
            row = X.getrow(i)
            pairs = " ".join(f"{j + 1}:{v:.17g}" for j, v in zip(row.indices, row.data))
            fh.write(f"{labels[i]} {pairs}\n".rstrip().encode("utf-8") + b"\n")

    atomic_write(os.fspath(path), write)


def read_data_file(path, target=None, *, format=None, require_target=True,
                   n_features=None) -> Dataset:
    """Read any supported file, choosing the reader by ``format`` or suffix."""
    _check_exists(path)
    fmt = detect_format(path, format)
    if fmt in ("csv", "tsv"):
        return read_csv(path, target, sep="\t" if fmt == "tsv" else ",",
                        require_target=require_target)
    if fmt == "parquet":
        return read_parquet(path, target, require_target=require_target)
    if fmt == "npz":
        return read_npz(path, target, require_target=require_target)
    return read_libsvm(path, n_features=n_features)
