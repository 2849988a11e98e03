"""Classification and calibration metrics (labels of any hashable type, frequency weights)."""

from softmaxreg.metrics._classification import (
    CalibrationBins,
    PrecisionRecallFscore,
    accuracy,
    brier_score,
    confusion_matrix,
    expected_calibration_error,
    log_loss,
    precision_recall_fscore,
)
from softmaxreg.metrics._labels import (
    encode_labels,
    label_codes,
    label_index,
    object_array,
    sorted_labels,
)

__all__ = [
    "CalibrationBins",
    "PrecisionRecallFscore",
    "accuracy",
    "brier_score",
    "confusion_matrix",
    "expected_calibration_error",
    "log_loss",
    "precision_recall_fscore",
    "encode_labels",
    "label_codes",
    "label_index",
    "object_array",
    "sorted_labels",
]
