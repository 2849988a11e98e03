"""Which vector instructions the native kernels use, decided once, at import, before Numba compiles anything.

``SOFTMAXREG_DISABLE_AVX512=1`` in the environment switches the AVX-512
paths off: Numba then generates code for an AVX2 machine (``haswell``: AVX2
and FMA, no AVX-512), with its own entries in Numba's on-disk cache, and the
kernels take the paths a machine without AVX-512 takes. So the code of a
common laptop runs, and is tested, on a machine that has AVX-512. The switch
applies to every Numba function of the process compiled after this import;
set it before the first compilation (a process that already compiled Numba
code keeps the target it has).
"""

from __future__ import annotations

import os
import sys

__all__ = ["AVX512", "DISABLE_AVX512"]

#: Whether ``SOFTMAXREG_DISABLE_AVX512`` prefetches the AVX2 code paths.
DISABLE_AVX512 = os.environ.get("SOFTMAXREG_DISABLE_AVX512", "").strip() not in ("", "0")

if DISABLE_AVX512 and "NUMBA_CPU_NAME" not in os.environ:
    os.environ["NUMBA_CPU_NAME"] = "haswell"
    os.environ["NUMBA_CPU_FEATURES"] = ""  # the CPU's own features, not the host's
    if "numba" in sys.modules:
        from numba.core import config

        config.reload_config()

from llvmlite import binding as _llvm  # noqa: E402
from numba.core import config as _config  # noqa: E402


def _target_has_avx512f() -> bool:
    """Whether the code Numba generates may use AVX-512F instructions by name."""
    if DISABLE_AVX512:
        return False
    if _config.CPU_FEATURES is not None:  # an explicit target: only what it lists
        return "+avx512f" in _config.CPU_FEATURES.split(",")
    if _config.CPU_NAME is not None:  # a named CPU with the host's features: be safe
        return False
    return bool(_llvm.get_host_cpu_features().get("avx512f"))


#: Whether the kernels use their AVX-512 paths (``vscalefps``/``pd`` in ``exp``, the register kernels of short rows).
AVX512 = _target_has_avx512f()
