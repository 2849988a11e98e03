r"""ONNX export: a fitted model, with its preprocessing and calibration, as one graph.

:func:`to_onnx` writes the prediction path of a :class:`ModelBundle` (or of a
bare :class:`~softmaxreg.models.SoftmaxRegression`,
:class:`~softmaxreg.models.MLPClassifier`, or a
:class:`~softmaxreg.models.TemperatureScaling` /
:class:`~softmaxreg.models.VectorScaling` around one) as an ONNX graph built
with ``onnx.helper`` (opset 17), so that onnxruntime or any other ONNX
runtime predicts what ``softmaxreg predict`` does.

The graph, for raw features :math:`x` (one row)::

    x  -> fill missing values (imputation)        Where(IsNaN(x), fill, x)
       -> one-hot categorical columns             Equal(code, level)
       -> standardize                             (z - mean) / scale
       -> logits                                  Gemm (softmax regression),
                                                  Gemm, activation, ... (MLP)
       -> calibration                             z / T  or  w * z + b
       -> label        = classes[argmax z]
       -> probabilities = softmax(z)              (the Softmax op: max-shifted)

Inputs and outputs
------------------
``X`` : float32, shape (n, d)
    The raw features in the training column order (``d`` input columns, not
    the one-hot-encoded ones). A categorical column is passed as the
    **numeric code of its level**: the position of the level in the sorted
    list of the training levels, which the model file stores and the ONNX
    model carries in its metadata (``metadata_props["categories"]``, a JSON
    object column -> levels). A code that is no level (``-1``, ``7.5``)
    encodes as all zeros, as an unseen level does in softmaxreg. A missing
    value is NaN: it is imputed when the model was trained with imputation,
    and otherwise makes that row's outputs NaN (softmaxreg refuses it).
``label`` : int64 or string, shape (n,)
    ``classes_[argmax]``: int64 for integer classes, strings otherwise.
``probabilities`` : float32, shape (n, n_classes)
    Calibrated when the model carries a calibration (``calibrated=True``).

The arithmetic runs in float64 inside the graph (``compute_dtype``), the
precision of softmaxreg's own prediction path, so the outputs equal
softmaxreg's to float32 rounding; ``compute_dtype="float32"`` gives a graph
for runtimes without double-precision kernels.
"""

from __future__ import annotations

import json

import numpy as np

__all__ = ["to_onnx", "save_onnx", "ONNX_OPSET"]

ONNX_OPSET = 17
_IR_VERSION = 8  # the IR of opset 17: readable by every runtime that runs opset 17
_MLP_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "logistic": "Sigmoid",
                    "identity": None}


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "ONNX export needs the onnx package: pip install softmaxreg[onnx]"
        ) from None
    return onnx


class _Graph:
    """Nodes and constants of one graph, with fresh names."""

    def __init__(self, onnx, elem):
        self.onnx, self.h = onnx, onnx.helper
        self.elem = elem  # TensorProto element type of the computation
        self.np_dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
        self.nodes, self.inits, self._n = [], [], 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, value, stem: str, dtype=None) -> str:
        arr = np.asarray(value, dtype=dtype if dtype is not None else self.np_dtype)
        name = self.name(stem)
        if arr.dtype.kind == "U":
            t = self.h.make_tensor(name, self.onnx.TensorProto.STRING, arr.shape,
                                   [s.encode("utf-8") for s in arr.ravel().tolist()])
        else:
            t = self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name)
        self.inits.append(t)
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        out = out or self.name(op_type.lower())
        self.nodes.append(self.h.make_node(op_type, list(inputs), [out], **attrs))
        return out


# ----------------------------------------------------------------- the pieces
def _unwrap(model):
    """(estimator, preprocessor, calibration, feature names in) of what to_onnx was given."""
    from softmaxreg.models import TemperatureScaling, VectorScaling

    from ._model_file import ModelBundle

    if isinstance(model, ModelBundle):
        return model.estimator, model.preprocessor, model.calibration
    if isinstance(model, TemperatureScaling):
        return model.estimator, None, {"method": "temperature", "temperature": float(model.temperature_)}
    if isinstance(model, VectorScaling):
        return model.estimator, None, {"method": "vector", "scale": np.asarray(model.scale_),
                                       "shift": np.asarray(model.shift_)}
    return model, None, None


def _preprocess(g: _Graph, x: str, pre) -> tuple[str, int]:
    """Raw input -> encoded, standardized features; returns (tensor, n input columns)."""
    cols = pre.columns_
    fills = np.array([np.nan if c.get("fill") is None else float(
        c["categories"].index(c["fill"]) if c["type"] == "categorical" else c["fill"])
        for c in cols])
    if not np.isnan(fills).all():
        x = g.op("Where", g.op("IsNaN", x), g.const(fills, "fill"), x)
    source, level, categorical = [], [], []
    for j, c in enumerate(cols):
        if c["type"] == "numeric":
            source.append(j), level.append(0.0), categorical.append(False)
        else:
            m = len(c["categories"])
            source += [j] * m
            level += list(range(m))
            categorical += [True] * m
    if any(categorical):
        z = g.op("Gather", x, g.const(source, "source", np.int64), axis=1)
        hit = g.op("Cast", g.op("Equal", z, g.const(level, "level")), to=g.elem)
        # z - z is 0 for a finite code and NaN for a missing one: a missing level stays visible.
        onehot = g.op("Add", hit, g.op("Sub", z, z))
        x = g.op("Where", g.const(categorical, "categorical", bool), onehot, z)
    if pre.standardize:
        x = g.op("Sub", x, g.const(pre.mean_, "mean"))
        x = g.op("Div", x, g.const(pre.scale_, "scale"))
    return x, len(cols)


def _linear_logits(g: _Graph, x: str, est) -> str:
    coef = np.asarray(est.coef_, dtype=np.float64)
    intercept = (np.asarray(est.intercept_, dtype=np.float64) if getattr(est, "fit_intercept", True)
                 else np.zeros(coef.shape[0]))
    return g.op("Gemm", x, g.const(coef, "coef"), g.const(intercept, "intercept"), transB=1)


def _mlp_layers(est) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """The fitted layers ``(weight of shape (in, out), bias)`` and the hidden activation's name.

    The one place that reads the MLP's fitted attributes: ``coefs_[i]`` of
    shape (fan_in, fan_out) as in scikit-learn, ``intercepts_[i]``, ``activation``.
    """
    layers = [(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64))
              for w, b in zip(est.coefs_, est.intercepts_)]
    return layers, str(est.activation)


def _mlp_logits(g: _Graph, x: str, est) -> str:
    layers, activation = _mlp_layers(est)
    if activation not in _MLP_ACTIVATIONS:
        raise ValueError(f"cannot export an MLP with activation {activation!r}; "
                         f"known: {', '.join(_MLP_ACTIVATIONS)}")
    for i, (w, b) in enumerate(layers):
        x = g.op("Gemm", x, g.const(w, f"weight{i}"), g.const(b, f"bias{i}"))
        if i < len(layers) - 1 and _MLP_ACTIVATIONS[activation] is not None:
            x = g.op(_MLP_ACTIVATIONS[activation], x)
    return x


def _calibrate(g: _Graph, z: str, calibration, n_classes: int) -> str:
    if calibration is None:
        return z
    if calibration["method"] == "temperature":
        return g.op("Div", z, g.const(float(calibration["temperature"]), "temperature"))
    if calibration["method"] != "vector":
        raise ValueError(f"unknown calibration method {calibration['method']!r}")
    if n_classes == 2:  # the binary margin z1 - z0 is what vector scaling was fitted on: (0, z1 - z0)
        first = g.op("Slice", z, g.const([0], "start", np.int64), g.const([1], "stop", np.int64),
                     g.const([1], "axis", np.int64))
        z = g.op("Sub", z, first)
    z = g.op("Mul", z, g.const(np.asarray(calibration["scale"], dtype=np.float64), "cal_scale"))
    return g.op("Add", z, g.const(np.asarray(calibration["shift"], dtype=np.float64), "cal_shift"))


def _labels(g: _Graph, z: str, classes: np.ndarray) -> tuple[str, int]:
    onnx = g.onnx
    index = g.op("ArgMax", z, axis=1, keepdims=0)
    if classes.dtype.kind in "iu":
        table, elem = classes.astype(np.int64), onnx.TensorProto.INT64
    else:
        table, elem = np.array([str(c) for c in classes.tolist()]), onnx.TensorProto.STRING
    g.op("Gather", g.const(table, "classes", table.dtype), index, axis=0, out="label")
    return "label", elem


# ----------------------------------------------------------------- public
def to_onnx(model, *, calibrated: bool = True, compute_dtype: str = "float64"):
    r"""The prediction path of a fitted model as an ONNX ``ModelProto`` (opset 17).

    Parameters
    ----------
    model : ModelBundle, SoftmaxRegression, MLPClassifier, TemperatureScaling or VectorScaling
        A bundle (e.g. from :func:`load_model`) brings its preprocessing
        (imputation, one-hot encoding, standardization) and calibration; a
        calibrator brings its calibration.
    calibrated : bool, default=True
        Apply the stored calibration (``False``: the raw model's probabilities).
    compute_dtype : {"float64", "float32"}, default="float64"
        Precision of the arithmetic inside the graph; the input and the
        probabilities are float32 either way.

    Returns
    -------
    onnx.ModelProto
        Input ``"X"``: float32 of shape (n, d), raw features in the training
        column order, categorical columns as the numeric codes of their levels
        (see the module docstring and ``metadata_props["categories"]``).
        Outputs ``"label"``: int64 or string of shape (n,), and
        ``"probabilities"``: float32 of shape (n, n_classes),
        :math:`\mathrm{softmax}(z)` of the (calibrated) logits :math:`z`.

    Raises
    ------
    ImportError
        When onnx is not installed (``pip install softmaxreg[onnx]``).
    ValueError
        For an unfitted model or one that cannot be exported.

    Examples
    --------
    >>> import onnxruntime as ort
    >>> from softmaxreg.models import SoftmaxRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> clf = SoftmaxRegression().fit(X, [0, 0, 1, 1])
    >>> sess = ort.InferenceSession(to_onnx(clf).SerializeToString())
    >>> label, proba = sess.run(None, {"X": X.astype(np.float32)})
    >>> label.tolist(), bool(np.allclose(proba, clf.predict_proba(X), atol=1e-6))
    ([0, 0, 1, 1], True)
    """
    onnx = _require_onnx()
    from softmaxreg.models import MLPClassifier, SoftmaxRegression

    if compute_dtype not in ("float64", "float32"):
        raise ValueError(f"compute_dtype must be 'float64' or 'float32', got {compute_dtype!r}")
    est, pre, calibration = _unwrap(model)
    if not isinstance(est, (SoftmaxRegression, MLPClassifier)):
        raise ValueError(
            f"cannot export a {type(est).__name__} to ONNX: export a SoftmaxRegression or an "
            "MLPClassifier (alone, calibrated, or in a model bundle)"
        )
    if not hasattr(est, "classes_"):
        raise ValueError(f"the {type(est).__name__} is not fitted; call fit before exporting it")
    elem = onnx.TensorProto.DOUBLE if compute_dtype == "float64" else onnx.TensorProto.FLOAT
    g = _Graph(onnx, elem)
    x = g.op("Cast", "X", to=elem) if elem != onnx.TensorProto.FLOAT else "X"
    if pre is not None:
        x, n_inputs = _preprocess(g, x, pre)
    else:
        n_inputs = int(est.n_features_in_)
    classes = np.asarray(est.classes_)
    logits = _linear_logits(g, x, est) if isinstance(est, SoftmaxRegression) else _mlp_logits(g, x, est)
    z = _calibrate(g, logits, calibration if calibrated else None, classes.size)
    label, label_elem = _labels(g, z, classes)
    proba = g.op("Softmax", z, axis=1)
    if elem != onnx.TensorProto.FLOAT:
        g.op("Cast", proba, to=onnx.TensorProto.FLOAT, out="probabilities")
    else:
        g.op("Identity", proba, out="probabilities")

    h = onnx.helper
    graph = h.make_graph(
        g.nodes, f"softmaxreg_{type(est).__name__}",
        [h.make_tensor_value_info("X", onnx.TensorProto.FLOAT, ["n", n_inputs])],
        [h.make_tensor_value_info("label", label_elem, ["n"]),
         h.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, ["n", classes.size])],
        initializer=g.inits,
    )
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", ONNX_OPSET)],
                         producer_name="softmaxreg", producer_version=_version())
    proto.ir_version = _IR_VERSION
    proto.doc_string = (f"{type(est).__name__} exported by softmaxreg: input X (float32, raw features; "
                        "categorical columns as level codes), outputs label and probabilities")
    meta = {
        "estimator": type(est).__name__,
        "classes": json.dumps([str(c) for c in classes.tolist()]),
        "feature_names": json.dumps(list(pre.feature_names_in_) if pre is not None else
                                    [str(n) for n in getattr(est, "feature_names_in_",
                                                             [f"x{j}" for j in range(n_inputs)])]),
        "categories": json.dumps({c["name"]: c["categories"] for c in (pre.columns_ if pre else [])
                                  if c["type"] == "categorical"}),
        "calibration": (calibration or {}).get("method", "none") if calibrated else "none",
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    return proto


def save_onnx(model, path, **kwargs) -> None:
    """Write :func:`to_onnx`'s graph to ``path`` atomically (a temporary file renamed over it).

    Parameters
    ----------
    model : as for :func:`to_onnx`
    path : str or path-like
    **kwargs
        ``calibrated`` and ``compute_dtype``, passed to :func:`to_onnx`.
    """
    import os

    from ._model_file import atomic_write

    blob = to_onnx(model, **kwargs).SerializeToString()
    atomic_write(os.fspath(path), lambda fh: fh.write(blob))


def _version() -> str:
    try:
        from .. import __version__
    except ImportError:  # pragma: no cover - partial installs
        return "unknown"
    return __version__
