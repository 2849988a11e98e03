"""The model file: a ZIP archive of JSON metadata and ``.npy`` arrays, never pickle.

Layout (see ``docs/model-file.md`` for the full specification)::

    model.srm (ZIP)
      meta.json            format name and version, versions, estimator kind,
                           constructor params, fitted attributes (JSON, with
                           arrays referenced by name), classes, feature names,
                           preprocessing, calibration, training metadata
      arrays/<name>.npy    one NumPy array per fitted array, read with
                           ``allow_pickle=False``; meta.json records each
                           array's dtype, shape and SHA-256

Loading builds an estimator only from a fixed table of known classes
(:data:`ESTIMATOR_KINDS`) with plain JSON values and arrays, so a model file
cannot run code. Writing goes to a temporary file in the target directory
that is flushed, fsync'ed and then renamed over the target
(:func:`os.replace` is atomic), so an interrupted save leaves the previous
file untouched.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import importlib
import io
import json
import math
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from ._preprocess import Preprocessor

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ESTIMATOR_KINDS",
    "ModelBundle",
    "save_model",
    "load_model",
]

FORMAT_NAME = "softmaxreg-model"
FORMAT_VERSION = 1
#: Estimator classes a model file may name: kind -> (module, class).
ESTIMATOR_KINDS = {
    "SoftmaxRegression": ("softmaxreg.models._softmax_regression", "SoftmaxRegression"),
    "MLPClassifier": ("softmaxreg.models._mlp", "MLPClassifier"),
    "MultiLabelLogisticRegression": ("softmaxreg.models._multilabel", "MultiLabelLogisticRegression"),
}
_ALLOWED_KINDS = "biufcU"  # bool, ints, floats, complex, unicode strings
_MAX_META_BYTES = 256 * 2**20


def _version() -> str:
    try:
        from .. import __version__
    except ImportError:  # pragma: no cover - partial installs
        return "unknown"
    return __version__


# ----------------------------------------------------------------- encoding
class _Encoder:
    """Turns parameters and fitted attributes into JSON plus named arrays."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, value: np.ndarray, name: str) -> dict:
        arr = np.asarray(value)
        if arr.dtype.kind == "O":
            items = arr.ravel().tolist()
            if all(isinstance(v, str) for v in items):
                arr = arr.astype(str)
            elif all(isinstance(v, (bool, np.bool_)) for v in items):
                arr = arr.astype(bool)
            elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
                arr = arr.astype(np.int64)
            else:
                raise ValueError(
                    f"cannot store {name!r}: an object array of mixed types needs pickle; "
                    "use numeric or string values"
                )
        if arr.dtype.kind not in _ALLOWED_KINDS:
            raise ValueError(f"cannot store {name!r}: arrays of dtype {arr.dtype} are not supported")
        key = name
        n = 1
        while key in self.arrays:
            n += 1
            key = f"{name}.{n}"
        self.arrays[key] = np.ascontiguousarray(arr)
        return {"__array__": key}

    def encode(self, value, name: str):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (np.bool_,)):
            return bool(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)):
            v = float(value)
            return v if math.isfinite(v) else {"__float__": repr(v)}
        if isinstance(value, np.ndarray):
            return self.array(value, name)
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{name}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{name}.{i}") for i, v in enumerate(value)]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"{name}: only dicts with string keys can be stored")
            return {"__dict__": {k: self.encode(v, f"{name}.{k}") for k, v in value.items()}}
        raise TypeError(f"{name}: values of type {type(value).__name__} cannot be stored")


def _decode(node, arrays: dict[str, np.ndarray]):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if isinstance(node, dict) and len(node) == 1:
        (tag, body), = node.items()
        if tag == "__array__":
            if body not in arrays:
                raise ValueError(f"the metadata names array {body!r}, which the file lacks")
            return arrays[body]
        if tag == "__float__" and body in ("nan", "inf", "-inf"):
            return float(body)
        if tag == "__tuple__" and isinstance(body, list):
            return tuple(_decode(v, arrays) for v in body)
        if tag == "__dict__" and isinstance(body, dict):
            return {k: _decode(v, arrays) for k, v in body.items()}
    raise ValueError(f"unrecognized value in the metadata: {str(node)[:80]}")


_DEVICE_ATTRIBUTES = ("coef_", "intercept_", "classes_")


def _on_host(estimator):
    """``estimator``, or a shallow copy whose Array API arrays (torch, CuPy, ...) are NumPy arrays."""
    import array_api_compat

    moved = {k: v for k, v in vars(estimator).items()
             if array_api_compat.is_array_api_obj(v) and not isinstance(v, np.ndarray)}
    if not moved:
        return estimator
    from sklearn.utils._array_api import move_to

    clone = copy.copy(estimator)
    for key, value in moved.items():
        setattr(clone, key, move_to(value, xp=np, device="cpu"))
    return clone


def _to_namespace(estimator, namespace, device):
    """Move the fitted coefficients (and numeric ``classes_``) onto ``namespace`` and ``device`` in place."""
    import array_api_compat

    if isinstance(namespace, str):
        try:
            namespace = importlib.import_module(namespace)
        except ImportError:
            raise ValueError(f"namespace={namespace!r} is not an importable array library") from None
    xp = array_api_compat.array_namespace(namespace.asarray([0.0]))
    for key in _DEVICE_ATTRIBUTES:
        value = getattr(estimator, key, None)
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            setattr(estimator, key, xp.asarray(value, device=device))


def _fitted_attributes(estimator) -> dict:
    return {
        k: v for k, v in vars(estimator).items()
        if k.endswith("_") and not k.startswith("_") and not k.endswith("__")
    }


def _classes_record(classes) -> dict:
    arr = np.asarray(classes)
    kind = {"U": "str", "O": "str", "b": "bool", "i": "int", "u": "int", "f": "float"}.get(arr.dtype.kind, "str")
    values = [str(v) if kind == "str" else v for v in arr.tolist()]
    return {"type": kind, "values": values}


# ----------------------------------------------------------------- the bundle
@dataclass
class ModelBundle:
    """A fitted estimator with what it needs to take raw data.

    Attributes
    ----------
    estimator : fitted classifier
    preprocessor : Preprocessor or None
        Applied to raw features before the estimator.
    calibration : dict or None
        ``{"method": "temperature", "temperature": T}`` or
        ``{"method": "vector", "scale": w, "shift": b}``.
    metadata : dict
        Training metadata (data set, sizes, solver, history, metrics, ...).
    data_info : dict
        ``name``, ``target``, ``image_shape``, ``class_names`` of the training data.

    Examples
    --------
    >>> class Fixed:                      # stands in for a fitted estimator
    ...     classes_ = np.array(["a", "b"])
    ...     def decision_function(self, X): return np.asarray(X, dtype=float)
    >>> b = ModelBundle(Fixed(), calibration={"method": "temperature", "temperature": 2.0})
    >>> b.predict_proba(np.log([[1.0, 9.0]])).round(6)   # softmax(log([1, 9]) / 2) = (1, 3) / 4
    array([[0.25, 0.75]])
    """

    estimator: object
    preprocessor: Preprocessor | None = None
    calibration: dict | None = None
    metadata: dict = field(default_factory=dict)
    data_info: dict = field(default_factory=dict)
    path: str | None = None

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.estimator.classes_)

    @property
    def kind(self) -> str:
        return type(self.estimator).__name__

    @property
    def feature_names(self) -> list[str]:
        if self.preprocessor is not None:
            return list(self.preprocessor.feature_names_out_)
        n = int(getattr(self.estimator, "n_features_in_", 0))
        return [f"x{j}" for j in range(n)]

    def transform(self, X, name: str = "the data"):
        """Raw features -> the matrix the estimator was fitted on."""
        return X if self.preprocessor is None else self.preprocessor.transform(X, name)

    def calibrator(self):
        """The calibrated estimator (a TemperatureScaling/VectorScaling) or None."""
        if self.calibration is None:
            return None
        from ..models._calibration import TemperatureScaling, VectorScaling

        if self.calibration["method"] == "temperature":
            cal = TemperatureScaling(self.estimator)
            cal.temperature_ = float(self.calibration["temperature"])
        else:
            cal = VectorScaling(self.estimator)
            cal.scale_ = np.asarray(self.calibration["scale"], dtype=np.float64)
            cal.shift_ = np.asarray(self.calibration["shift"], dtype=np.float64)
        cal.classes_ = self.classes_
        return cal

    def _model(self, calibrated: bool):
        cal = self.calibrator() if calibrated else None
        return cal if cal is not None else self.estimator

    def predict_proba(self, X, *, calibrated: bool = True, transformed: bool = False):
        """Class probabilities for raw ``X`` (calibrated when the model is)."""
        Z = X if transformed else self.transform(X)
        return np.asarray(self._model(calibrated).predict_proba(Z))

    def predict(self, X, *, calibrated: bool = True, transformed: bool = False):
        """Predicted classes for raw ``X``."""
        Z = X if transformed else self.transform(X)
        return np.asarray(self._model(calibrated).predict(Z))


# ----------------------------------------------------------------- writing
def _atomic_write(path: str, write) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: the folder {directory!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        try:  # mkstemp creates 0600; give the file the mode a plain open() would
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        try:  # persist the rename itself
            dfd = os.open(directory, os.O_RDONLY)
        except OSError:  # pragma: no cover - e.g. platforms without directory fds
            return
        try:
            os.fsync(dfd)
        except OSError:  # pragma: no cover
            pass
        finally:
            os.close(dfd)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def save_model(path, estimator, *, preprocessor: Preprocessor | None = None,
               calibration: dict | None = None, metadata: dict | None = None,
               data_info: dict | None = None) -> None:
    """Write a fitted estimator (and its preprocessing, calibration) to ``path``.

    Parameters
    ----------
    path : str or path-like
        Conventionally ending in ``.srm``. Replaced atomically.
    estimator : fitted classifier, ModelBundle, TemperatureScaling or VectorScaling
        Its constructor parameters (``get_params()``) and fitted attributes
        (public names ending in ``_``: arrays, numbers, strings, and lists,
        tuples and dicts of them) are stored. A calibrator is unwrapped into
        the calibration record.
    preprocessor : Preprocessor, optional
    calibration : dict, optional
        See :class:`ModelBundle`.
    metadata : dict, optional
        JSON-compatible training metadata (arrays are allowed too).
    data_info : dict, optional
        Name, target, image shape and class names of the training data.

    """
    path = os.fspath(path)
    if isinstance(estimator, ModelBundle):
        preprocessor = preprocessor or estimator.preprocessor
        calibration = calibration or estimator.calibration
        metadata = {**estimator.metadata, **(metadata or {})}
        data_info = data_info or estimator.data_info
        estimator = estimator.estimator
    if hasattr(estimator, "temperature_") and hasattr(estimator, "estimator"):
        calibration = {"method": "temperature", "temperature": float(estimator.temperature_)}
        estimator = estimator.estimator
    elif hasattr(estimator, "scale_") and hasattr(estimator, "shift_") and hasattr(estimator, "estimator"):
        calibration = {"method": "vector", "scale": np.asarray(estimator.scale_),
                       "shift": np.asarray(estimator.shift_)}
        estimator = estimator.estimator
    estimator = _on_host(estimator)  # a model fitted on a device is stored as NumPy arrays
    kind = type(estimator).__name__
    if kind not in ESTIMATOR_KINDS:
        raise ValueError(
            f"cannot save a {kind}: model files hold one of {', '.join(ESTIMATOR_KINDS)}"
        )
    if not hasattr(estimator, "classes_"):
        raise ValueError(f"the {kind} is not fitted; call fit before saving it")
    if calibration is not None and calibration.get("method") not in ("temperature", "vector"):
        raise ValueError(f"unknown calibration method {calibration.get('method')!r}")

    enc = _Encoder()
    params, dropped = {}, []
    for key, value in estimator.get_params(deep=False).items():
        try:
            params[key] = enc.encode(value, f"param.{key}")
        except TypeError:
            if callable(value):  # callbacks: not data, restored as None
                params[key] = None
                dropped.append(key)
            else:
                raise ValueError(
                    f"parameter {key}={value!r} of the {kind} cannot be stored in a model file"
                ) from None
    attributes, skipped = {}, []
    for key, value in _fitted_attributes(estimator).items():
        try:
            attributes[key] = enc.encode(value, key)
        except TypeError:
            skipped.append(key)
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "softmaxreg_version": _version(),
        "numpy_version": np.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "estimator": {
            "kind": kind,
            "params": params,
            "attributes": attributes,
            "params_not_stored": dropped,
            "attributes_not_stored": skipped,
        },
        "classes": _classes_record(estimator.classes_),
        "feature_names": (list(preprocessor.feature_names_out_) if preprocessor is not None
                          else [f"x{j}" for j in range(int(getattr(estimator, "n_features_in_", 0)))]),
        "preprocessing": preprocessor.to_dict() if preprocessor is not None else None,
        "calibration": enc.encode(calibration, "calibration") if calibration else None,
        "data": enc.encode(dict(data_info or {}), "data"),
        "training": enc.encode(dict(metadata or {}), "training"),
    }
    buffers = {}
    for key, arr in enc.arrays.items():
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        buffers[key] = buf.getvalue()
    meta["arrays"] = {
        key: {"dtype": arr.dtype.str, "shape": list(arr.shape),
              "sha256": hashlib.sha256(buffers[key]).hexdigest()}
        for key, arr in enc.arrays.items()
    }
    text = json.dumps(meta, indent=1, allow_nan=False, ensure_ascii=False)

    def write(fh):
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            zf.writestr("meta.json", text)
            for key, blob in buffers.items():
                zf.writestr(f"arrays/{key}.npy", blob)

    _atomic_write(path, write)


# ----------------------------------------------------------------- reading
def _refuse(path: str, what: str) -> ValueError:
    return ValueError(f"cannot load model {path!r}: {what}")


def _read_archive(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path!r}; train one with 'softmaxreg train'")
    if os.path.isdir(path):
        raise _refuse(path, "it is a directory")
    if not zipfile.is_zipfile(path):
        raise _refuse(path, "it is not a softmaxreg model file (not a ZIP archive; "
                            "truncated, corrupt, or a different kind of file)")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "meta.json" not in names:
                raise _refuse(path, "it is a ZIP archive but not a softmaxreg model (no meta.json)")
            info = zf.getinfo("meta.json")
            if info.file_size > _MAX_META_BYTES:
                raise _refuse(path, "its meta.json is implausibly large")
            try:
                meta = json.loads(zf.read("meta.json").decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise _refuse(path, f"its meta.json is not valid JSON ({exc})") from None
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
                raise _refuse(path, "it is a ZIP archive but not a softmaxreg model "
                                    "(meta.json has a different format name)")
            version = meta.get("format_version")
            if not isinstance(version, int) or version < 1:
                raise _refuse(path, f"unknown format version {version!r}")
            if version > FORMAT_VERSION:
                raise _refuse(
                    path,
                    f"it was written by a newer softmaxreg ({meta.get('softmaxreg_version', '?')}, "
                    f"model format {version}); this softmaxreg ({_version()}) reads format "
                    f"{FORMAT_VERSION} and older; upgrade softmaxreg",
                )
            arrays = {}
            for key, spec in (meta.get("arrays") or {}).items():
                member = f"arrays/{key}.npy"
                if member not in names:
                    raise _refuse(path, f"array {key!r} is missing; the file is incomplete")
                blob = zf.read(member)
                if hashlib.sha256(blob).hexdigest() != spec.get("sha256"):
                    raise _refuse(path, f"array {key!r} fails its checksum; the file is corrupt")
                try:
                    arr = np.load(io.BytesIO(blob), allow_pickle=False)
                except ValueError as exc:
                    raise _refuse(path, f"array {key!r} is unreadable ({exc})") from None
                if arr.dtype.str != spec.get("dtype") or list(arr.shape) != spec.get("shape"):
                    raise _refuse(path, f"array {key!r} does not match its description")
                arrays[key] = arr
    except zipfile.BadZipFile as exc:
        raise _refuse(path, f"the archive is corrupt or truncated ({exc})") from None
    except (EOFError, OSError, zlib.error) as exc:
        raise _refuse(path, f"the archive is corrupt or truncated ({exc})") from None
    return meta, arrays


def _estimator_class(kind: str):
    if kind not in ESTIMATOR_KINDS:
        raise ValueError(
            f"the model is a {kind!r}, which this softmaxreg does not know; "
            f"known kinds: {', '.join(ESTIMATOR_KINDS)}"
        )
    module, name = ESTIMATOR_KINDS[kind]
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ValueError(f"the model is a {kind}, which is unavailable in this installation") from None


def load_model(path, *, device=None, namespace=None) -> ModelBundle:
    """Read a model file written by :func:`save_model`.

    ``device`` and ``namespace`` place the estimator's coefficients
    (``coef_``, ``intercept_``, numeric ``classes_``) on an Array API library
    and device, as a fit on that device would have left them:
    ``load_model(path, device="cuda")`` loads onto a torch GPU (torch is the
    namespace when only ``device`` is given), ``namespace="cupy"`` or
    ``namespace=array_api_strict`` picks another library, whose default device
    is used when ``device`` is None.  Predict on such a model with
    ``sklearn.set_config(array_api_dispatch=True)`` and arrays of that library.

    Refuses, with a :class:`ValueError` that says why, files that are not
    ZIP archives, foreign archives, truncated or corrupt ones (bad CRC,
    checksum mismatch, missing arrays) and files of a newer format version.

    Returns
    -------
    ModelBundle
        Whose estimator's ``predict_proba`` equals the saved one's exactly.
    """
    path = os.fspath(path)
    meta, arrays = _read_archive(path)
    try:
        est_meta = meta["estimator"]
        cls = _estimator_class(est_meta["kind"])
        params = {k: _decode(v, arrays) for k, v in est_meta["params"].items()}
        attributes = {k: _decode(v, arrays) for k, v in est_meta["attributes"].items()}
        calibration = _decode(meta.get("calibration"), arrays)
        data_info = _decode(meta.get("data") or {"__dict__": {}}, arrays)
        training = _decode(meta.get("training") or {"__dict__": {}}, arrays)
        pre = meta.get("preprocessing")
    except (KeyError, TypeError, AttributeError) as exc:
        raise _refuse(path, f"its metadata is incomplete ({exc!r})") from None
    except ValueError as exc:
        raise _refuse(path, str(exc)) from None
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise _refuse(path, f"its parameters do not fit this softmaxreg's {cls.__name__} ({exc})") from None
    for key, value in attributes.items():
        if not (key.endswith("_") and key.isidentifier() and not key.startswith("_")):
            raise _refuse(path, f"invalid attribute name {key!r}")
        setattr(estimator, key, value)
    try:
        preprocessor = Preprocessor.from_dict(pre) if pre is not None else None
    except ValueError as exc:
        raise _refuse(path, str(exc)) from None
    if calibration is not None:
        if not isinstance(calibration, dict) or calibration.get("method") not in ("temperature", "vector"):
            raise _refuse(path, "unknown calibration record")
    if device is not None or namespace is not None:
        _to_namespace(estimator, "torch" if namespace is None else namespace, device)
    return ModelBundle(estimator=estimator, preprocessor=preprocessor, calibration=calibration,
                       metadata=training, data_info=data_info, path=path)


def read_meta(path) -> dict:
    """The raw ``meta.json`` of a model file (after the same checks as loading)."""
    return _read_archive(os.fspath(path))[0]


__all__.append("read_meta")
