"""Shared test configuration: a hypothesis profile sized for a 2-core CI machine, and one torch thread."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "softmaxreg",
    max_examples=int(os.environ.get("SOFTMAXREG_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("softmaxreg")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's torch references on one thread: on tiny tensors torch's
    thread pool only adds contention on a shared machine."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
