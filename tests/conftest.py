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


@pytest.fixture(scope="session")
def dask_cluster():
    """One 2-worker ``distributed.LocalCluster`` (worker processes, 1 thread each) for the Dask tests."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", memory_limit="1GiB"
    )
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def dask_client(dask_cluster):
    """The session's cluster client, active (``default_client()``) for one test only."""
    with dask_cluster.as_current():
        yield dask_cluster
