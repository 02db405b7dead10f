"""`mindzoo launch train --launch-kind trainjob` on the real node, through the real Kubeflow Trainer v2.3.0 and
JobSet v0.12.0 controllers (fixture ``trainer``: host processes, webhooks by URL) and the chart's own
ClusterTrainingRuntimes (``trainer.runtimes.enabled``: the real release is upgraded to turn them on, and put
back at the end).

The digits train on two worker pods for each engine - MindSpore's dynamic cluster on ``mindzoo-mindspore``,
torch (gloo) on ``mindzoo-torch`` with Trainer's own ``PET_*`` variables - as the chart's pipeline
ServiceAccount (a real token), and every rank's weight digest must equal the other rank's and that of the
Indexed-Job launch with the same flags but ``--launch-kind`` (test_realnode_launch.py's torch run; the
others launched here). A worker killed mid-run fails the TrainJob at once (the runtimes' JobSet
``maxRestarts: 0``, per-index backoff 0) and the launcher names its rank from the Job's ``failedIndexes``;
a TrainJob naming a runtime that does not exist is refused by Trainer's real
validating webhook, and the launcher says so in one line, having created nothing.
"""

from __future__ import annotations

import pytest

from chartimages import CHART
from test_realnode_launch import (as_pipeline_sa, digits, kill_worker_1, launch, left_behind,  # noqa: F401
                                 rank_digests)  # as_pipeline_sa, digits: fixtures

pytestmark = [pytest.mark.control, pytest.mark.cluster, pytest.mark.realnode, pytest.mark.trainjob, pytest.mark.slow]

GROUP, VERSION = "trainer.kubeflow.org", "v1alpha1"
#: test_realnode_launch.py's Indexed-Job runs launched with the very flags used here, by engine (its MindSpore
#: run goes through the compiled component instead, so this module launches its own).
INDEXED = {"mindspore": "indexed-mindspore", "torch": "two-pods-torch"}
TRAINJOB = ("--launch-kind", "trainjob")


@pytest.fixture(scope="module")
def runtimes(real_cluster, real_release, trainer):
    """The real release upgraded with the chart's ClusterTrainingRuntimes on (Trainer's CRDs exist now)."""
    ns = real_release["namespace"]

    def upgrade(enabled: bool) -> None:
        real_cluster.helm("upgrade", "mindzoo", str(CHART), "-n", ns, "--reuse-values", "--set",
                          f"trainer.runtimes.enabled={str(enabled).lower()}", "--wait", "--timeout", "5m", timeout=400)

    upgrade(True)
    try:
        found = real_cluster.custom().list_cluster_custom_object(GROUP, VERSION, "clustertrainingruntimes")["items"]
        yield {r["metadata"]["name"] for r in found}
    finally:
        upgrade(False)


def gone(real_cluster, ns: str, run_id: str) -> bool:
    """No TrainJob, JobSet, Job, Service or worker pod of the launch is left."""
    from mindzoo.launcher.train import job_name

    name = job_name(run_id)
    custom = real_cluster.custom()
    objects = [o["metadata"]["name"] for group, version, plural in
               ((GROUP, VERSION, "trainjobs"), ("jobset.x-k8s.io", "v1alpha2", "jobsets"))
               for o in custom.list_namespaced_custom_object(group, version, ns, plural)["items"]
               if o["metadata"]["name"] == name]
    pods = real_cluster.core().list_namespaced_pod(ns, label_selector=f"jobset.sigs.k8s.io/jobset-name={name}").items
    jobs = [j for j in real_cluster.batch().list_namespaced_job(ns).items if j.metadata.name.startswith(name)]
    return not (objects or pods or jobs or left_behind(real_cluster, ns, run_id))


def reference(real_release, kubeconfig, dataset: str, engine: str) -> list[dict]:
    """The Indexed-Job run's rank digests: test_realnode_launch.py's, else launched now (this module alone)."""
    run_id = INDEXED[engine]
    found = rank_digests(real_release, run_id)
    if len(found) == 2:
        return found
    proc = launch(real_release, kubeconfig, dataset, run_id, "--engine", engine)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    return rank_digests(real_release, run_id)


@pytest.mark.parametrize("engine", ["mindspore", "torch"])
def test_two_pods_train_through_a_trainjob_as_the_indexed_job_does(real_cluster, real_release, runtimes,
                                                                   as_pipeline_sa, digits, engine):
    assert f"mindzoo-{engine}" in runtimes
    run_id = f"trainjob-{engine}"
    proc = launch(real_release, as_pipeline_sa, digits, run_id, "--engine", engine, *TRAINJOB)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-4000:] + real_cluster.diagnostics()
    assert "launched trainjob" in err and "[rank0]" in err, err[-3000:]  # created, and rank 0's log followed
    assert "2 ranks finished with identical weights" in err, err[-3000:]
    ranks = rank_digests(real_release, run_id)
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["steps"] == 4 for r in ranks), ranks
    same = reference(real_release, as_pipeline_sa, digits, engine)
    # Same seed, data, settings and world size: the launch path (TrainJob or Indexed Job) changes nothing.
    assert {r["weights_sha256"] for r in ranks} == {r["weights_sha256"] for r in same}, (ranks, same)
    ns = real_release["namespace"]
    assert real_cluster.wait_for("the TrainJob and its JobSet, Jobs and pods to go", lambda: gone(real_cluster, ns,
                                                                                                  run_id), 120)


def test_killing_a_worker_fails_the_trainjob_naming_its_rank(real_cluster, real_release, runtimes, as_pipeline_sa,
                                                              digits):
    from mindzoo.launcher.train import job_name

    run_id = "trainjob-killed-worker"
    ns = real_release["namespace"]
    proc = launch(real_release, as_pipeline_sa, digits, run_id, *TRAINJOB, steps=100000)
    kill_worker_1(real_cluster, ns, f"jobset.sigs.k8s.io/jobset-name={job_name(run_id)}", proc)
    assert real_cluster.wait_for("the failed TrainJob's objects to go", lambda: gone(real_cluster, ns, run_id), 120)


def test_a_runtime_that_does_not_exist_is_refused_by_the_webhook_in_one_line(real_cluster, real_release, runtimes,
                                                                             as_pipeline_sa, digits):
    run_id = "trainjob-no-runtime"
    proc = launch(real_release, as_pipeline_sa, digits, run_id, *TRAINJOB, "--launch-runtime", "no-such-runtime")
    out, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode != 0 and "Traceback" not in err, err[-3000:]
    assert lines[-1].startswith("error: ") and "'no-such-runtime' does not exist" in lines[-1], lines[-1]
    assert "trainer.runtimes.enabled=true" in lines[-1], lines[-1]
    assert gone(real_cluster, real_release["namespace"], run_id)
