"""Optimizers over a loss object: they see only ``loss_gradient``/``hessp`` and a start point."""

from ._lbfgs import lbfgs
from ._lbfgs_xp import lbfgs_namespace
from ._newton_cg import newton_cg, newton_refine
from ._proximal import proximal, soft_threshold
from ._result import OptimizeResult
from ._schedules import (
    SCHEDULE_NAMES,
    AdaptiveLR,
    ConstantLR,
    CosineLR,
    ExponentialLR,
    InverseTimeLR,
    StepLR,
    get_schedule,
)
from ._sgd import PlateauStop, sgd

__all__ = [
    "OptimizeResult", "PlateauStop", "lbfgs", "lbfgs_namespace", "newton_cg", "newton_refine", "proximal", "sgd", "soft_threshold",
    "SCHEDULE_NAMES", "AdaptiveLR", "ConstantLR", "CosineLR", "ExponentialLR", "InverseTimeLR", "StepLR", "get_schedule",
]
