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

Several processes may compile the same kernels at once (``pytest -n``, Dask
workers on one machine, ``softmaxreg compile --jobs``). Numba adds an entry
to a function's index by reading the index, picking the first free data
file number and writing both back: two processes adding different
signatures at once could lose an entry, or map one signature to the
other's machine code. :func:`lock_index_writes` makes that step exclusive
(an advisory file lock beside the index) for every kernel of the package.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sys
from pathlib import Path

from numba.core import caching

try:
    import fcntl
except ImportError:  # not POSIX: Numba's own unlocked writes
    fcntl = None

__all__ = ["package_stamp", "lock_index_writes"]

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


@contextlib.contextmanager
def _exclusive(path):
    """Hold an exclusive advisory lock on the file ``path`` (created if missing) while the block runs."""
    if fcntl is None:
        yield
        return
    with open(path, "ab") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class LockedIndexFile(caching.IndexDataCacheFile):
    """Numba's index and data files of one function, an entry added under a lock beside the index.

    Readers take no lock: the files are replaced whole, and an entry whose
    data file is not written yet reads as a miss (the reader compiles).
    """

    def save(self, key, data):
        with _exclusive(self._index_path + ".lock"):
            super().save(key, data)


def lock_index_writes(dispatcher):
    """Give a cached Numba dispatcher of this package a :class:`LockedIndexFile`; returns whether it has one.

    >>> import numba
    >>> lock_index_writes(numba.njit(lambda x: x))  # not cached
    False
    """
    cache = getattr(dispatcher, "_cache", None)
    current = getattr(cache, "_cache_file", None)
    if not isinstance(current, caching.IndexDataCacheFile):
        return False
    if not isinstance(current, LockedIndexFile):
        cache._cache_file = LockedIndexFile(cache_path=current._cache_path,
                                            filename_base=current._index_name[: -len(".nbi")],
                                            source_stamp=current._source_stamp)
    return True


def lock_package_index_writes(package=__package__):
    """:func:`lock_index_writes` for every cached dispatcher defined in the modules of ``package`` imported so far."""
    from numba.core.dispatcher import Dispatcher

    for name, module in list(sys.modules.items()):
        if module is None or not (name == package or name.startswith(package + ".")):
            continue
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and getattr(value.py_func, "__module__", None) == name:
                lock_index_writes(value)


def _register():
    # Numba's list of locators (CacheImpl, formerly _CacheImpl): if a future Numba moves it, the kernels keep
    # Numba's per-file stamps, which is what they had before this module.
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    classes = getattr(impl, "_locator_classes", None)
    if isinstance(classes, list) and _UserProvided not in classes:
        classes[:0] = [_UserProvided, _InTree, _UserWide]


_register()
