"""Built-in data sets: Fashion-MNIST, digits, iris and wine.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017; 60,000 training and 10,000
test images of 28x28 grey pixels, 10 classes of clothing) is read with our
own IDX reader from the first directory that holds the four files:

1. ``$SOFTMAXREG_DATA`` (the files directly, or a ``fashion-mnist/`` folder in it);
2. the user cache, ``$XDG_CACHE_HOME/softmaxreg/fashion-mnist`` (default
   ``~/.cache/softmaxreg/fashion-mnist``);
3. ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).

Otherwise the files are downloaded from the official mirror into the cache.
A download is accepted only if the gzip file's MD5 is the published one, or
the decompressed content's SHA-256 is that of the official data (Debian
recompresses the files, which changes the gzip bytes but not the content).
Pixels are returned as float32 scaled to [0, 1], as in the notes' recipe.

``digits`` (8x8 images, 1797 samples), ``iris`` and ``wine`` ship with the
package as small compressed CSV files (see ``data/generate.py``). They have
no official split; ``NAME:train`` and ``NAME:test`` give a fixed stratified
75/25 split (seed 0), ``NAME`` the whole set.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request

import numpy as np

from ._idx import read_idx
from ._tabular import Dataset, read_csv

__all__ = [
    "BUILTIN_DATASETS",
    "FASHION_MNIST_CLASSES",
    "dataset_locations",
    "find_fashion_mnist",
    "download_fashion_mnist",
    "is_builtin",
    "load_builtin",
    "stratified_split",
]

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
#: file -> (MD5 of the official .gz, SHA-256 of the decompressed IDX content)
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train-labels-idx1-ubyte.gz": (
        "25c81989df183df01b3e8a0aad5dffbe",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "bef4ecab320f06d8554ea6380940ec79",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "bb300cfdad3c16e7a12a480ee83cd310",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}
DEBIAN_PATH = "/usr/share/datasets/fashion-mnist"

BUILTIN_DATASETS = {
    "fashion-mnist": "Fashion-MNIST: 70,000 28x28 grey clothing images, 10 classes (train 60k / test 10k)",
    "digits": "UCI handwritten digits: 1,797 8x8 images, 10 classes",
    "iris": "Fisher's iris: 150 flowers, 4 measurements, 3 species",
    "wine": "UCI wine: 178 wines, 13 chemical measurements, 3 cultivars",
}
_SHIPPED = {"digits": (8, 8), "iris": None, "wine": None}

# Indirection so tests can stand in for the network.
_urlopen = urllib.request.urlopen


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "softmaxreg", "fashion-mnist")


def _candidate_dirs() -> list[tuple[str, str]]:
    dirs = []
    env = os.environ.get("SOFTMAXREG_DATA")
    if env:
        dirs.append(("$SOFTMAXREG_DATA", os.path.join(env, "fashion-mnist")))
        dirs.append(("$SOFTMAXREG_DATA", env))
    dirs.append(("user cache", _cache_dir()))
    dirs.append(("Debian package dataset-fashion-mnist", DEBIAN_PATH))
    return dirs


def _has_files(directory: str) -> bool:
    return all(
        os.path.isfile(os.path.join(directory, f)) or os.path.isfile(os.path.join(directory, f[:-3]))
        for f in FASHION_MNIST_FILES
    )


def find_fashion_mnist() -> str | None:
    """The first directory holding the four Fashion-MNIST files, or None."""
    for _, d in _candidate_dirs():
        if _has_files(d):
            return d
    return None


def dataset_locations() -> list[dict]:
    """One record per built-in data set: name, description, where it is found."""
    out = []
    for name, text in BUILTIN_DATASETS.items():
        if name == "fashion-mnist":
            found = find_fashion_mnist()
            where = found if found else (
                f"not present; downloaded on first use into {_cache_dir()} "
                "(or install the Debian package dataset-fashion-mnist)"
            )
        else:
            where = os.path.join(os.path.dirname(__file__), "data", f"{name}.csv.gz")
        out.append({"name": name, "description": text, "location": where,
                    "available": name != "fashion-mnist" or found is not None})
    return out


def _verify(path: str, fname: str) -> None:
    md5_gz, sha_raw = FASHION_MNIST_FILES[fname]
    with open(path, "rb") as fh:
        blob = fh.read()
    if hashlib.md5(blob).hexdigest() == md5_gz:
        return
    try:
        raw = gzip.decompress(blob)
    except (OSError, EOFError):
        raw = blob
    if hashlib.sha256(raw).hexdigest() != sha_raw:
        raise ValueError(
            f"checksum mismatch for downloaded {fname}: the file is corrupt or not the "
            "official Fashion-MNIST; nothing was kept, try again"
        )


def download_fashion_mnist(directory: str | None = None, base_url: str | None = None,
                           timeout: float = 30.0) -> str:
    """Download and verify the four files into ``directory`` (default: the cache).

    Each file is written to a temporary name in the same directory, checked,
    and only then renamed into place, so an interrupted download leaves
    nothing half-written behind.

    Raises
    ------
    RuntimeError
        When the files cannot be downloaded (e.g. offline), naming the places
        searched and how to provide the files instead.
    ValueError
        When a downloaded file fails its checksum.
    """
    directory = directory or _cache_dir()
    base_url = base_url or os.environ.get("SOFTMAXREG_FASHION_MNIST_URL", FASHION_MNIST_URL)
    os.makedirs(directory, exist_ok=True)
    for fname in FASHION_MNIST_FILES:
        target = os.path.join(directory, fname)
        if os.path.isfile(target):
            continue
        url = base_url.rstrip("/") + "/" + fname
        fd, tmp = tempfile.mkstemp(prefix=f".{fname}.", suffix=".part", dir=directory)
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    with _urlopen(url, timeout=timeout) as resp:
                        shutil.copyfileobj(resp, out)
                except (urllib.error.URLError, OSError, ValueError) as exc:
                    reason = getattr(exc, "reason", exc)
                    searched = "; ".join(f"{d} ({why})" for why, d in _candidate_dirs())
                    raise RuntimeError(
                        f"Fashion-MNIST is not on this machine and downloading {url} failed "
                        f"({reason}). Searched: {searched}. Install the Debian package "
                        "dataset-fashion-mnist, or put the four .gz files in a folder and "
                        "set SOFTMAXREG_DATA to it"
                    ) from None
                out.flush()
                os.fsync(out.fileno())
            _verify(tmp, fname)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return directory


def _idx_path(directory: str, fname: str) -> str:
    path = os.path.join(directory, fname)
    return path if os.path.isfile(path) else path[:-3]


def _load_fashion_mnist(split: str, max_rows: int | None) -> Dataset:
    directory = find_fashion_mnist() or download_fashion_mnist()
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_idx_path(directory, f"{prefix}-images-idx3-ubyte.gz"), max_rows)
    labels = read_idx(_idx_path(directory, f"{prefix}-labels-idx1-ubyte.gz"), max_rows)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Fashion-MNIST files in {directory} do not fit together "
            f"(images {images.shape}, labels {labels.shape}); replace them"
        )
    h, w = images.shape[1:]
    X = images.reshape(images.shape[0], h * w).astype(np.float32) / np.float32(255.0)
    names = [f"pixel_{r}_{c}" for r in range(h) for c in range(w)]
    return Dataset(
        X=X, y=labels.astype(np.int64), feature_names=names,
        name=f"fashion-mnist:{split}", target="label", image_shape=(h, w),
        class_names=list(FASHION_MNIST_CLASSES),
    )


def stratified_split(y: np.ndarray, test_size: float = 0.25, seed: int = 0):
    """Indices ``(train, test)`` of a stratified random split.

    Each class contributes ``round(test_size * n_class)`` samples to the test
    part (at least one when the class has two or more samples).

    >>> train, test = stratified_split(np.array([0] * 8 + [1] * 4), 0.25)
    >>> len(train), len(test), np.array([0] * 8 + [1] * 4)[test].tolist()
    (9, 3, [0, 0, 1])
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test size must be between 0 and 1, got {test_size}")
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    train, test = [], []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        k = int(round(test_size * idx.size))
        if idx.size >= 2:
            k = min(max(k, 1), idx.size - 1)
        else:
            k = 0
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def is_builtin(spec: str) -> bool:
    """Whether ``spec`` names a built-in data set (``iris``, ``fashion-mnist:test``, ...)."""
    name = str(spec).split(":", 1)[0].lower()
    return name in BUILTIN_DATASETS and not os.path.exists(str(spec))


def load_builtin(spec: str, max_rows: int | None = None) -> Dataset:
    """Load a built-in data set by name, with an optional ``:train``/``:test`` split.

    Parameters
    ----------
    spec : str
        ``fashion-mnist`` (same as ``fashion-mnist:train``), ``fashion-mnist:test``,
        ``iris``, ``iris:train``, ``iris:test``, likewise ``wine`` and ``digits``.
    max_rows : int, optional
        Keep only the first rows (Fashion-MNIST only reads that many).

    Examples
    --------
    >>> d = load_builtin("iris:test")
    >>> d.X.shape, np.unique(d.y).tolist()     # 12 of each species' 50 (12.5 rounds to 12)
    ((36, 4), ['setosa', 'versicolor', 'virginica'])
    """
    name, _, split = str(spec).lower().partition(":")
    if name not in BUILTIN_DATASETS:
        raise ValueError(f"unknown data set {spec!r}; built in: {', '.join(BUILTIN_DATASETS)}")
    if split not in ("", "train", "test"):
        raise ValueError(f"unknown split {split!r} in {spec!r}; use :train or :test")
    if name == "fashion-mnist":
        return _load_fashion_mnist(split or "train", max_rows)
    path = os.path.join(os.path.dirname(__file__), "data", f"{name}.csv.gz")
    data = read_csv(path, target="target")
    data.name = name + (f":{split}" if split else "")
    if split:
        train, test = stratified_split(data.y, 0.25, seed=0)
        rows = train if split == "train" else test
        data.X = data.X.iloc[rows].reset_index(drop=True)
        data.y = data.y[rows]
    if name == "digits":
        data.X = data.X.to_numpy(dtype=np.float64)
        data.image_shape = _SHIPPED[name]
        data.class_names = [str(k) for k in range(10)]
    if max_rows is not None:
        data.X, data.y = data.X[:max_rows], data.y[:max_rows]
    return data


def load_data(spec: str, target: str | None = None, *, format: str | None = None,
              require_target: bool = True, n_features: int | None = None,
              max_rows: int | None = None) -> Dataset:
    """Load a file (CSV, Parquet, NPZ, LibSVM) or a built-in data set by name."""
    from ._tabular import read_data_file

    if is_builtin(spec):
        return load_builtin(spec, max_rows=max_rows)
    data = read_data_file(spec, target, format=format, require_target=require_target,
                          n_features=n_features)
    if max_rows is not None:
        data.X = data.X[:max_rows]
        data.y = None if data.y is None else data.y[:max_rows]
    return data


__all__.append("load_data")
