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


@pytest.mark.parametrize("kernel", [rows.softmax_rows, rows.rows_small, linear._pass, sgd._epoch_worker])
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
