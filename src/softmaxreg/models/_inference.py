"""Statistical inference for softmax regression: the names, gathered from one module per idea.

* :mod:`._coding`: names and order of the free parameters;
* :mod:`._identification`: :class:`IdentificationError`, :func:`check_identification`
  (rank of the design, separation);
* :mod:`._covariance`: :func:`compute_inference` (observed information, sandwiches);
* :mod:`._inference_result`: :class:`InferenceResult` (estimates, tests, intervals);
* :mod:`._summary`: :class:`InferenceSummary` (the printable table).

Other packages import these names from :mod:`softmaxreg.models`.
"""

from ._covariance import COV_TYPES, compute_inference
from ._identification import IdentificationError, check_identification
from ._inference_result import InferenceResult
from ._summary import InferenceSummary

__all__ = [
    "COV_TYPES",
    "IdentificationError",
    "InferenceResult",
    "InferenceSummary",
    "check_identification",
    "compute_inference",
]
