"""Data in and models out: file readers, built-in data sets, preprocessing, model files.

* :func:`load_data` reads CSV, Parquet, NPZ or LibSVM files, or a built-in
  data set by name (``fashion-mnist``, ``digits``, ``iris``, ``wine``);
* :func:`scan_parquet` and :func:`scan_zarr` open a Parquet data set or a
  Zarr store lazily, as Dask collections (``pip install softmaxreg[dask]``);
* :class:`Preprocessor` one-hot encodes, imputes and standardizes, and is
  stored with the model;
* :func:`save_model` / :func:`load_model` write and read the pickle-free
  model file format documented in ``docs/model-file.md``;
* :func:`to_onnx` / :func:`save_onnx` export a model (with its preprocessing
  and calibration) as an ONNX graph (``docs/onnx.md``);
* :class:`LineSentences` reads a text corpus (one sentence per line) for
  :class:`softmaxreg.SkipGram`.
"""

from ._corpus import LineSentences
from ._datasets import (
    BUILTIN_DATASETS,
    FASHION_MNIST_CLASSES,
    dataset_locations,
    download_fashion_mnist,
    find_fashion_mnist,
    is_builtin,
    load_builtin,
    load_data,
    stratified_split,
)
from ._dask_readers import scan_parquet, scan_zarr
from ._idx import read_idx, write_idx
from ._model_file import FORMAT_NAME, FORMAT_VERSION, ModelBundle, atomic_write, load_model, save_model
from ._onnx import ONNX_OPSET, save_onnx, to_onnx
from ._preprocess import Preprocessor
from ._tabular import (
    Dataset,
    detect_format,
    read_csv,
    read_data_file,
    read_libsvm,
    read_npz,
    read_parquet,
    write_libsvm,
)

__all__ = [
    "BUILTIN_DATASETS",
    "FASHION_MNIST_CLASSES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ONNX_OPSET",
    "Dataset",
    "LineSentences",
    "ModelBundle",
    "Preprocessor",
    "dataset_locations",
    "detect_format",
    "download_fashion_mnist",
    "find_fashion_mnist",
    "is_builtin",
    "load_builtin",
    "load_data",
    "atomic_write",
    "load_model",
    "read_csv",
    "read_data_file",
    "read_idx",
    "read_libsvm",
    "read_npz",
    "read_parquet",
    "save_model",
    "save_onnx",
    "scan_parquet",
    "scan_zarr",
    "stratified_split",
    "to_onnx",
    "write_idx",
    "write_libsvm",
]
