"""Estimators with the scikit-learn API."""

from ._calibration import TemperatureScaling, VectorScaling, calibration_logits, fit_temperature, fit_vector_scaling
from ._covariance import compute_inference
from ._hypothesis import ChiSquareTest, lr_test, wald_test
from ._identification import IdentificationError, check_identification
from ._inference_result import InferenceResult
from ._margins import MarginalEffects, marginal_effects
from ._mlp import MLPClassifier
from ._prediction_intervals import ProbabilityInterval, predict_interval
from ._multilabel import MultiLabelLogisticRegression
from ._skipgram import SkipGram, WordNotInVocabularyError
from ._softmax_regression import SoftmaxRegression

__all__ = [
    "ChiSquareTest",
    "IdentificationError",
    "InferenceResult",
    "MLPClassifier",
    "MarginalEffects",
    "MultiLabelLogisticRegression",
    "ProbabilityInterval",
    "SkipGram",
    "SoftmaxRegression",
    "TemperatureScaling",
    "VectorScaling",
    "WordNotInVocabularyError",
    "calibration_logits",
    "check_identification",
    "compute_inference",
    "fit_temperature",
    "fit_vector_scaling",
    "lr_test",
    "marginal_effects",
    "predict_interval",
    "wald_test",
]
