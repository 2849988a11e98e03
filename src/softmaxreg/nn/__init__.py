"""softmaxreg.nn: a small backpropagation framework with a softmax layer at its end.

Layers have an explicit ``forward`` and ``backward`` (no autograd), their
parameters and gradients are plain NumPy arrays (``layer.params``,
``layer.grads``), optimizers follow PyTorch's update formulas, and
learning-rate schedules are callables ``epoch -> rate``. See docs/nn.md.

>>> import numpy as np
>>> from softmaxreg import nn
>>> net = nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1))
>>> loss_fn, opt = nn.SoftmaxCrossEntropy(), nn.SGD(net, lr=0.1)
>>> X, y = np.random.default_rng(0).normal(size=(16, 4)), np.arange(16) % 3
>>> losses = []
>>> for _ in range(50):
...     losses.append(float(loss_fn(net(X), y)))
...     _ = net.backward(loss_fn.backward())
...     opt.step()
>>> losses[-1] < losses[0]
True
"""

from softmaxreg.nn import _init as init
from softmaxreg.nn._layers import (
    Dropout,
    Linear,
    LogSoftmax,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
)
from softmaxreg.nn._linear_cross_entropy import LinearCrossEntropy
from softmaxreg.nn._optim import SGD, Adam, AdamW, Optimizer
from softmaxreg.solvers import (
    AdaptiveLR,
    ConstantLR,
    CosineLR,
    ExponentialLR,
    InverseTimeLR,
    StepLR,
    get_schedule,
)

__all__ = [
    "init",
    "Module",
    "Linear",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "Dropout",
    "SoftmaxCrossEntropy",
    "LinearCrossEntropy",
    "Sequential",
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "ConstantLR",
    "InverseTimeLR",
    "CosineLR",
    "StepLR",
    "ExponentialLR",
    "AdaptiveLR",
    "get_schedule",
]
