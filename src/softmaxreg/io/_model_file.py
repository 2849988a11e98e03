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
      SHA256SUMS           (format 2) the SHA-256 of meta.json and of every
                           array member, in the layout of ``sha256sum``

Reading trusts nothing in the file: every member's size is checked against
what its compressed bytes can hold, and every array's header against its
record, before anything of that size is allocated; every byte that is used
is covered by a checksum, so a file loads exactly as it was saved or is
refused with a :class:`ValueError` naming the file and the fault.

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
from dataclasses import dataclass, field

import numpy as np

from ._archive import ZIP_ERRORS, ArchiveError, read_member, read_npy_member
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
FORMAT_VERSION = 2
_SUMS = "SHA256SUMS"  # format 2: SHA-256 of meta.json and every array member, in sha256sum's layout
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
            if all(isinstance(k, str) for k in value):
                return {"__dict__": {k: self.encode(v, f"{name}.{k}") for k, v in value.items()}}
            # other keys (a class_weight keyed by integer labels): a list of pairs, the keys scalars
            for k in value:
                if not isinstance(k, (str, bool, int, float, np.bool_, np.integer, np.floating)):
                    raise TypeError(f"{name}: a dict key of type {type(k).__name__} cannot be stored")
            return {"__items__": [[self.encode(k, f"{name}.key"), self.encode(v, f"{name}.{k}")]
                                  for k, v in value.items()]}
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
        if tag == "__items__" and isinstance(body, list) and all(
                isinstance(kv, list) and len(kv) == 2 for kv in body):
            keys = [_decode(k, arrays) for k, _ in body]
            if not all(isinstance(k, (str, bool, int, float)) for k in keys):
                raise ValueError("a stored mapping has a key that is not a number or a string")
            return {k: _decode(v, arrays) for k, (_, v) in zip(keys, body)}
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
        names = getattr(self.estimator, "feature_names_in_", None)  # a formula's terms, a DataFrame's columns
        if names is not None:
            return [str(n) for n in names]
        n = int(getattr(self.estimator, "n_features_in_", 0))
        return [f"x{j}" for j in range(n)]

    def transform(self, X, name: str = "the data"):
        """Raw features -> the matrix the estimator was fitted on."""
        return X if self.preprocessor is None else self.preprocessor.transform(X, name)

    def calibrator(self):
        """The calibrated estimator (a TemperatureScaling/VectorScaling) or None."""
        if self.calibration is None:
            return None
        from ..models import TemperatureScaling, VectorScaling

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
def atomic_write(path: str, write) -> None:
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
    if preprocessor is not None and not isinstance(preprocessor, Preprocessor):
        raise TypeError(f"preprocessor must be a softmaxreg.io.Preprocessor, got {type(preprocessor).__name__}")
    if calibration is not None and not isinstance(calibration, dict):
        raise TypeError(f"calibration must be a dict such as {{'method': 'temperature', 'temperature': 1.2}}, "
                        f"got {type(calibration).__name__}")
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
        if key == "formula_":  # stored as plain JSON under "formula" below
            continue
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
                          else [str(n) for n in estimator.feature_names_in_]
                          if getattr(estimator, "feature_names_in_", None) is not None
                          else [f"x{j}" for j in range(int(getattr(estimator, "n_features_in_", 0)))]),
        "preprocessing": preprocessor.to_dict() if preprocessor is not None else None,
        "calibration": enc.encode(calibration, "calibration") if calibration else None,
        "data": enc.encode(dict(data_info or {}), "data"),
        "training": enc.encode(dict(metadata or {}), "training"),
    }
    if getattr(estimator, "formula_", None) is not None:
        meta["formula"] = estimator.formula_.to_dict()
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
    text = json.dumps(meta, indent=1, allow_nan=False, ensure_ascii=False).encode("utf-8")
    sums = "".join(f"{hashlib.sha256(blob).hexdigest()}  {name}\n" for name, blob in
                   [("meta.json", text)] + [(f"arrays/{k}.npy", b) for k, b in buffers.items()])

    def write(fh):
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            zf.writestr("meta.json", text)
            for key, blob in buffers.items():
                zf.writestr(f"arrays/{key}.npy", blob)
            zf.writestr(_SUMS, sums)

    atomic_write(path, write)


# ----------------------------------------------------------------- reading
class _Refusal(ValueError):
    """A refusal already worded for the user (not re-wrapped)."""


def _refuse(path: str, what: str) -> ValueError:
    return _Refusal(f"cannot load model {path!r}: {what}")


def _sha256sums(text: str) -> dict[str, str]:
    """``{member: hex digest}`` from a SHA256SUMS member (``<hex>  <name>`` per line)."""
    sums = {}
    for line in text.splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not name:
            raise ValueError(f"malformed line in SHA256SUMS: {line[:80]!r}")
        sums[name] = digest
    return sums


def _array_spec(key, spec) -> tuple[np.dtype, tuple[int, ...], str]:
    """A meta.json array record checked for types: (dtype, shape, sha256)."""
    if not isinstance(key, str) or not isinstance(spec, dict):
        raise ValueError(f"the record of array {key!r} is malformed")
    shape, digest = spec.get("shape"), spec.get("sha256")
    try:
        dtype = np.dtype(spec.get("dtype"))
    except (TypeError, ValueError, SyntaxError):
        raise ValueError(f"array {key!r} has an unknown dtype {str(spec.get('dtype'))[:40]!r}") from None
    if dtype.kind not in _ALLOWED_KINDS or dtype.str != spec.get("dtype"):
        raise ValueError(f"array {key!r} has a dtype that model files do not hold ({dtype})")
    if not (isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                            for n in shape)):
        raise ValueError(f"array {key!r} has an invalid shape {str(shape)[:40]}")
    if not isinstance(digest, str):
        raise ValueError(f"array {key!r} has no checksum")
    return dtype, tuple(shape), digest


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
            infos = {info.filename: info for info in zf.infolist()}
            if "meta.json" not in infos:
                raise _refuse(path, "it is a ZIP archive but not a softmaxreg model (no meta.json)")
            try:
                text = read_member(zf, infos["meta.json"], _MAX_META_BYTES)
            except ArchiveError as exc:
                raise _refuse(path, str(exc)) from None
            try:
                meta = json.loads(text.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                raise _refuse(path, f"its meta.json is not valid JSON ({type(exc).__name__})") from None
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
                raise _refuse(path, "it is a ZIP archive but not a softmaxreg model "
                                    "(meta.json has a different format name)")
            version = meta.get("format_version")
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise _refuse(path, f"unknown format version {str(version)[:40]}")
            if version > FORMAT_VERSION:
                raise _refuse(
                    path,
                    f"it was written by a newer softmaxreg ({str(meta.get('softmaxreg_version', '?'))[:40]}, "
                    f"model format {version}); this softmaxreg ({_version()}) reads format "
                    f"{FORMAT_VERSION} and older; upgrade softmaxreg",
                )
            sums = None
            if _SUMS in infos:
                try:
                    sums = _sha256sums(read_member(zf, infos[_SUMS], 2**20).decode("utf-8"))
                except (ArchiveError, ValueError) as exc:
                    raise _refuse(path, f"its {_SUMS} is unreadable ({exc})") from None
            elif version >= 2:
                raise _refuse(path, f"its {_SUMS} member is missing; the file is incomplete")
            if sums is not None and sums.get("meta.json") != hashlib.sha256(text).hexdigest():
                raise _refuse(path, "meta.json fails its checksum; the file is corrupt or was edited")
            specs = meta.get("arrays") or {}
            if not isinstance(specs, dict):
                raise _refuse(path, "its list of arrays is malformed")
            arrays = {}
            for key, spec in specs.items():
                try:
                    dtype, shape, digest = _array_spec(key, spec)
                except ValueError as exc:
                    raise _refuse(path, str(exc)) from None
                member = f"arrays/{key}.npy"
                if member not in infos:
                    raise _refuse(path, f"array {key!r} is missing; the file is incomplete")

                def expect(got_shape, got_dtype, blob, key=key, member=member):
                    if got_dtype.str != dtype.str or tuple(got_shape) != shape:
                        raise _refuse(path, f"array {key!r} does not match its description")
                    blob_digest = hashlib.sha256(blob).hexdigest()
                    if blob_digest != digest or (sums is not None and sums.get(member) != blob_digest):
                        raise _refuse(path, f"array {key!r} fails its checksum; the file is corrupt")

                try:
                    arrays[key], _ = read_npy_member(zf, infos[member], expect)
                except ArchiveError as exc:
                    raise _refuse(path, f"array {key!r}: {exc}") from None
    except _Refusal:
        raise
    except (ValueError, *ZIP_ERRORS) as exc:
        raise _refuse(path, f"the archive is corrupt or truncated ({type(exc).__name__}: "
                            f"{str(exc)[:200]})") from None
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


def _calibration_problem(cal, n_classes: int) -> str | None:
    if not isinstance(cal, dict) or cal.get("method") not in ("temperature", "vector"):
        return "unknown calibration record"
    if cal["method"] == "temperature":
        t = cal.get("temperature")
        ok = isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t > 0
        return None if ok else "the calibration temperature is not a positive number"
    for key in ("scale", "shift"):
        v = cal.get(key)
        if not (isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.shape == (n_classes,)
                and np.isfinite(v).all()):
            return f"the vector calibration's {key} is not {n_classes} finite numbers"
    return None


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
    except RecursionError:
        raise _refuse(path, "its metadata is nested too deeply") from None
    if not isinstance(data_info, dict) or not isinstance(training, dict):
        raise _refuse(path, "its data or training record is not a mapping")
    if "classes_" not in attributes:
        raise _refuse(path, "the stored estimator has no classes_; it was not fitted")
    try:
        estimator = cls(**params)
    except (TypeError, ValueError) as exc:
        raise _refuse(path, f"its parameters do not fit this softmaxreg's {cls.__name__} ({exc})") from None
    for key, value in attributes.items():
        if not (key.endswith("_") and key.isidentifier() and not key.startswith("_")):
            raise _refuse(path, f"invalid attribute name {key!r}")
        setattr(estimator, key, value)
    if meta.get("formula") is not None:
        from softmaxreg.formula import FormulaSpec

        try:
            estimator.formula_ = FormulaSpec.from_dict(meta["formula"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _refuse(path, f"its formula record is invalid ({exc})") from None
    try:
        preprocessor = Preprocessor.from_dict(pre) if pre is not None else None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _refuse(path, f"malformed preprocessing record ({exc})") from None
    if calibration is not None:
        problem = _calibration_problem(calibration, len(getattr(estimator, "classes_", ())))
        if problem:
            raise _refuse(path, problem)
    if device is not None or namespace is not None:
        _to_namespace(estimator, "torch" if namespace is None else namespace, device)
    return ModelBundle(estimator=estimator, preprocessor=preprocessor, calibration=calibration,
                       metadata=training, data_info=data_info, path=path)


def read_meta(path) -> dict:
    """The raw ``meta.json`` of a model file (after the same checks as loading)."""
    return _read_archive(os.fspath(path))[0]


__all__.append("read_meta")
