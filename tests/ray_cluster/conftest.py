"""The one-node Slurm cluster shared by every `slurm`-marked test of this folder (one per session)."""

from collections.abc import Iterator

import pytest

from tests.ray_cluster import slurm_cluster as helper


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[helper.LocalSlurmCluster]:
    missing = helper.missing_binaries()
    if missing:
        pytest.skip(f"needs slurm-wlm and munge on PATH (missing: {', '.join(missing)}); CI installs them")
    root = tmp_path_factory.mktemp("slurm")
    with helper.LocalSlurmCluster(root) as cluster:
        yield cluster
    assert helper.processes_mentioning(str(root)) == []
    assert helper.processes_mentioning(str(cluster.munge)) == []
