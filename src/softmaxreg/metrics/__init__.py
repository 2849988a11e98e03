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

__all__ = [
    "CalibrationBins",
    "PrecisionRecallFscore",
    "accuracy",
    "brier_score",
    "confusion_matrix",
    "expected_calibration_error",
    "log_loss",
    "precision_recall_fscore",
]
