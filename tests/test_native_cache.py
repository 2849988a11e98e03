"""The kernels' disk cache is stamped with every module of the native package (softmaxreg._native.cache)."""

import numba
import pytest

from softmaxreg._native import cache, linear, rows, sgd


def test_the_stamp_follows_the_content_of_every_module(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    first = cache.package_stamp(tmp_path)
    assert cache.package_stamp(tmp_path) == first
    (tmp_path / "notes.txt").write_text("not a module")
    assert cache.package_stamp(tmp_path) == first
    (tmp_path / "b.py").write_text("y = 3\n")  # a sibling of the kernel's own module
    second = cache.package_stamp(tmp_path)
    assert second != first
    (tmp_path / "b.py").write_text("y = 2\n")
    assert cache.package_stamp(tmp_path) == first  # content, not modification time
    (tmp_path / "c.py").write_text("")
    assert cache.package_stamp(tmp_path) not in (first, second)


@pytest.mark.parametrize("kernel", [rows.family_rows, rows._rows_small, linear._pass, sgd._epoch_worker])
def test_every_kernel_is_stamped_with_the_whole_package(kernel):
    locator = kernel._cache._impl.locator
    assert locator.get_source_stamp() == cache.package_stamp()
    assert isinstance(locator, cache._PackageStamped)


def test_functions_elsewhere_keep_numbas_own_stamp():
    @numba.njit(cache=True)
    def elsewhere(x):
        return x + 1

    assert not isinstance(elsewhere._cache._impl.locator, cache._PackageStamped)
    assert elsewhere(1) == 2


def test_every_cached_kernel_of_the_package_adds_index_entries_under_a_lock():
    import sys

    from numba.core.dispatcher import Dispatcher

    kernels = [v for name, m in list(sys.modules.items()) if name.startswith("softmaxreg._native.")
               for v in vars(m).values() if isinstance(v, Dispatcher) and v.py_func.__module__ == name]
    assert len(kernels) > 20
    assert all(isinstance(k._cache._cache_file, cache.LockedIndexFile) for k in kernels)


_WRITER = """
import sys
from softmaxreg._native.cache import LockedIndexFile
f = LockedIndexFile(cache_path=sys.argv[1], filename_base="kernel-1.py311", source_stamp="stamp")
for k in range(int(sys.argv[2]), int(sys.argv[3])):
    f.save(("signature", k), ("machine code of", k))
"""


def test_processes_adding_signatures_at_once_keep_every_entry_and_its_own_data(tmp_path):
    # Without the lock, two writers read the same index, pick the same data file number and overwrite
    # each other: entries are lost, or one signature maps to the other's data.
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(a), str(a + 60)])
             for a in (0, 60, 120)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    f = cache.LockedIndexFile(cache_path=str(tmp_path), filename_base="kernel-1.py311", source_stamp="stamp")
    assert all(f.load(("signature", k)) == ("machine code of", k) for k in range(180))
    assert len(list(tmp_path.glob("*.nbc"))) == 180
