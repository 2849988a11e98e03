"""Numba's on-disk cache of the kernels, made stale by a change to any module of this package.

Numba stamps a cached function with the content of the file that defines it.
A kernel here inlines code from its sibling modules (the vector IR of
:mod:`.vec`, :mod:`.blocks` and :mod:`.tiles`, the ``exp`` of
:mod:`.mathfn`), so an edit to one of those would leave every cached kernel
that uses it stale and still loaded. The locators below stamp every kernel
of this package with the content of all its modules instead: any edit here
recompiles the kernels, and nothing else changes (the same cache folders).
They are registered ahead of Numba's own on import, before any kernel is
defined, and answer only for functions defined in this package.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from numba.core import caching

__all__ = ["package_stamp"]

_HERE = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=8)
def _digest(folder, files):
    h = hashlib.sha256()
    for name, _, _ in files:
        h.update(name.encode() + b"\0" + (Path(folder) / name).read_bytes() + b"\0")
    return h.hexdigest()


def package_stamp(folder=_HERE):
    """A digest of the contents of every ``.py`` file in ``folder`` (default: this package).

    Read again only when a file's modification time or size changes.

    >>> package_stamp() == package_stamp()
    True
    """
    folder = Path(folder).resolve()
    files = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.glob("*.py")))
    return _digest(str(folder), files)


class _PackageStamped:
    """A locator for the functions of this package, stamped with :func:`package_stamp`."""

    def get_source_stamp(self):
        return package_stamp()

    @classmethod
    def from_function(cls, py_func, py_file):
        if Path(py_file).resolve().parent != _HERE:
            return None
        return super().from_function(py_func, py_file)


class _UserProvided(_PackageStamped, caching.UserProvidedCacheLocator):
    """``NUMBA_CACHE_DIR``, as Numba's own."""


class _InTree(_PackageStamped, caching.InTreeCacheLocator):
    """The package's ``__pycache__``, as Numba's own."""


class _UserWide(_PackageStamped, caching.UserWideCacheLocator):
    """The user's cache folder when ``__pycache__`` is not writable, as Numba's own."""


def _register():
    # Numba's list of locators (CacheImpl, formerly _CacheImpl): if a future Numba moves it, the kernels keep
    # Numba's per-file stamps, which is what they had before this module.
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    classes = getattr(impl, "_locator_classes", None)
    if isinstance(classes, list) and _UserProvided not in classes:
        classes[:0] = [_UserProvided, _InTree, _UserWide]


_register()
