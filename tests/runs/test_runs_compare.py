"""The MLflow layout of real pipeline runs, and `mindzoo runs compare` on them (real MLflow, MinIO, steps).

The runs (runkit.py): pipeline run a (preprocess, train seed 1, evaluate), b (train seed 2),
c (train with another learning rate). Expected values are read back through the MLflow
client, never written into the test.
"""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

pytestmark = [pytest.mark.control, pytest.mark.stack]


def client_of(stack):
    from mlflow.tracking import MlflowClient

    return MlflowClient(stack.mlflow_uri)


def train_run(client, compared, variant):
    experiment = client.get_experiment_by_name(compared.experiment)
    runs = client.search_runs([experiment.experiment_id],
                              f"attributes.run_name = '{compared.train_run_ids[variant]}'")
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def compare(stack, *args, check=True):
    return stack.cli("runs", "compare", *args, env="control", check=check, timeout=120)


def one_error_line(proc) -> str:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


# -- the layout ------------------------------------------------------------------------------------------------
def test_a_rerun_with_another_seed_is_a_new_child_run_in_the_same_experiment(stack, compared):
    client = client_of(stack)
    # Three pipeline runs, one experiment: no other experiment holds a run of these pipeline runs (other test
    # modules log googlenet runs on other datasets to the same server, so the experiments are not counted).
    experiments = [e.experiment_id for e in client.search_experiments()]
    holders = {r.info.experiment_id for run_id in compared.pipelines.values()
               for r in client.search_runs(experiments, f"tags.`pipeline_run_id` = '{run_id}'")}
    holders -= {client.get_experiment_by_name("mindzoo/datasets").experiment_id}  # preprocess: linked by the tag
    assert holders == {client.get_experiment_by_name(compared.experiment).experiment_id}
    experiment = client.get_experiment_by_name(compared.experiment)
    parents = client.search_runs([experiment.experiment_id], "tags.`mindzoo.kind` = 'pipeline'")
    by_pipeline = {p.data.tags["pipeline_run_id"]: p for p in parents}
    assert sorted(by_pipeline) == sorted(compared.pipelines.values())  # exactly one parent per pipeline run
    for variant in ("a", "b", "c"):
        parent = by_pipeline[compared.pipelines[variant]]
        child = train_run(client, compared, variant)
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["pipeline_run_id"] == compared.pipelines[variant]
        assert child.data.tags["mindzoo.kind"] == "step" and parent.info.status == "FINISHED"
        assert parent.info.run_name == f"pipeline-{compared.pipelines[variant]}"
    a, b = train_run(client, compared, "a"), train_run(client, compared, "b")
    assert (a.data.params["recipe.seed"], b.data.params["recipe.seed"]) == ("1", "2")
    assert a.info.run_id != b.info.run_id
    # Pipeline run a: its train and evaluate runs are both children of its one parent.
    parent_a = by_pipeline[compared.pipelines["a"]].info.run_id
    children = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_a}'")
    assert sorted(r.data.tags["mindzoo.step"] for r in children) == ["evaluate", "train"]


def test_preprocess_run_goes_to_the_datasets_experiment_linked_by_pipeline_run_and_hash(stack, compared):
    client = client_of(stack)
    experiment = client.get_experiment_by_name("mindzoo/datasets")
    runs = client.search_runs([experiment.experiment_id], f"tags.pipeline_run_id = '{compared.pipelines['a']}'")
    assert len(runs) == 1
    run = runs[0]
    assert "mlflow.parentRunId" not in run.data.tags  # top-level: the model is not known yet
    assert run.data.params["dataset_hash"].startswith(compared.dataset_hash)
    assert train_run(client, compared, "a").data.params["dataset_hash"] == run.data.params["dataset_hash"]
    assert run.data.params["preprocess.source"].endswith("runs-digits")
    assert run.data.metrics["data/train_images"] + run.data.metrics["data/val_images"] == 1797


def test_train_logs_the_throughput_and_cost_summary(stack, compared):
    run = train_run(client_of(stack), compared, "a")
    m, params = run.data.metrics, run.data.params
    world, batch = int(params["world_size"]), int(params["batch_size"])
    assert m["summary/device_hours"] == pytest.approx(world * m["summary/wall_s"] / 3600)
    assert m["summary/img_per_s"] == pytest.approx(batch * world * 1000 / m["summary/step_ms"])
    assert 0 < m["summary/train_s"] < m["summary/wall_s"]  # start-up and the dataset fetch count in the wall time
    assert 0 < m["summary/time_to_best_s"] <= m["summary/train_s"]
    assert m["summary/best_epoch"] == int(params["epochs"])  # the recipe evaluates after the last epoch only
    assert {"recipe.yaml", "curves"} <= {a.path for a in client_of(stack).list_artifacts(run.info.run_id)}


# -- runs compare ----------------------------------------------------------------------------------------------
def test_compare_shows_the_differing_params_and_the_best_run(stack, compared):
    client = client_of(stack)
    runs = {v: train_run(client, compared, v) for v in ("a", "b", "c")}
    body = json.loads(compare(stack, compared.experiment, "--format", "json").stdout)
    newest_first = sorted(runs.values(), key=lambda r: -r.info.start_time)
    assert [r["run_id"] for r in body["runs"]] == [r.info.run_id for r in newest_first]
    assert {"recipe.seed", "lr", "recipe.schedule.base_lr"} <= set(body["params"])
    assert not {"model", "epochs", "batch_size", "dataset_hash", "run_id"} & set(body["params"])
    for record in body["runs"]:
        run = next(r for r in runs.values() if r.info.run_id == record["run_id"])
        assert record["params"]["lr"] == run.data.params["lr"]
        assert record["metrics"]["eval/top1"] == pytest.approx(run.data.metrics["eval/top1"])
    top1 = {r.info.run_id: r.data.metrics["eval/top1"] for r in runs.values()}
    assert len(set(top1.values())) > 1, f"the runs score alike, so no best run can be told apart: {top1}"
    # The documented rule (runs/table.py best_run): highest top-1, a tie to the lower eval loss, then the earlier run.
    best = min(runs.values(), key=lambda r: (-r.data.metrics["eval/top1"], r.data.metrics.get("eval/loss", math.inf),
                                             r.info.start_time)).info.run_id
    assert body["best_run_id"] == best and [r["run_id"] for r in body["runs"] if r["best"]] == [best]
    table = compare(stack, compared.experiment).stdout
    best_name = next(r.info.run_name for r in runs.values() if r.info.run_id == best)
    header = table.splitlines()[1]
    assert f"{best_name} *" in header and header.count("*") == 1
    assert f"* best by eval/top1: {best_name} ({best})" in table
    assert "  recipe.seed " in table and "  summary/device_hours " in table


def test_compare_named_runs_lists_only_what_differs_between_them(stack, compared):
    client = client_of(stack)
    a, c = (train_run(client, compared, v) for v in ("a", "c"))
    out = compare(stack, compared.experiment, a.info.run_id, c.info.run_id, "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["run_id"] for r in rows] == [a.info.run_id, c.info.run_id]
    assert "lr" in rows[0] and "recipe.seed" not in rows[0]  # both seed 1: not a difference
    assert [r["lr"] for r in rows] == [a.data.params["lr"], c.data.params["lr"]]
    assert sum(r["best"] == "True" for r in rows) == 1
    markdown = compare(stack, compared.experiment, a.info.run_id, c.info.run_id, "--format", "markdown").stdout
    assert markdown.startswith(f"### Experiment `{compared.experiment}`") and "| `lr` |" in markdown


def test_compare_plot_overlays_the_curves(stack, compared, tmp_path):
    import matplotlib.image

    out = tmp_path / "curves.png"
    proc = compare(stack, compared.experiment, "--last", "2", "--plot", str(out))
    assert "wrote" in proc.stderr and "train/loss" in proc.stderr and "eval/top1" in proc.stderr
    height, width, _ = matplotlib.image.imread(out).shape
    assert width > 1000 and height > 800
    assert proc.stdout.splitlines()[1].count("cmp-") == 2  # the header: the 2 newest runs


@pytest.mark.parametrize("args, message", [
    (("mindzoo/nope",), "runs.compare.experiment: no experiment 'mindzoo/nope' at http://"),
    (("{experiment}", "--last", "0"), "runs.compare.last: must be >= 1 (got 0)"),
    (("{experiment}", "0123456789abcdef0123456789abcdef"), "runs.compare.run_ids: no run 0123456789abcdef"),
    (("{experiment}", "--plot", "curves.gif"), "runs.compare.plot: must end in .png, .svg or .pdf"),
    (("mindzoo/datasets",), "no train runs in experiment 'mindzoo/datasets'"),
])
def test_bad_input_is_one_error_line(stack, compared, args, message, capsys):
    # In process (the CLI's own entry point): a process per case would spend seconds importing MLflow.
    assert message in cli_error(capsys, *(a.format(experiment=compared.experiment) for a in args))


def test_a_run_of_another_experiment_is_refused(stack, compared):
    client = client_of(stack)
    datasets = client.get_experiment_by_name("mindzoo/datasets")
    preprocess = client.search_runs([datasets.experiment_id], max_results=1)[0]
    proc = compare(stack, compared.experiment, preprocess.info.run_id, check=False)  # the real process, once
    assert f"run {preprocess.info.run_id} is in experiment id {datasets.experiment_id}" in one_error_line(proc)


def cli_error(capsys, *args) -> str:
    from mindzoo.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["runs", "compare", *args])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_.value.code != 0 and len(errors) == 1 and "Traceback" not in err, err
    return errors[0]
