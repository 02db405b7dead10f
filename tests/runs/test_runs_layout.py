"""The MLflow layout's names and rules, the run summary and the comparison logic (pure functions)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mindzoo.engine.runlog import run_summary
from mindzoo.errors import ConfigError
from mindzoo.runs import layout
from mindzoo.runs.query import RunRow
from mindzoo.runs.table import best_run, compare_rows, differing_params, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "mlflow.md"


@pytest.mark.parametrize("cls", [layout.Tag, layout.Param, layout.Metric, layout.Artifact])
def test_every_name_of_the_layout_is_documented(cls):
    prose = re.sub(r"^```.*?^```", "", DOC.read_text(), flags=re.S | re.M)  # fenced examples are not the spec
    documented = set(re.findall(r"`([^`\n]+)`", prose))
    missing = sorted(name for name in layout.names(cls).values() if name not in documented)
    assert not missing, f"docs/mlflow.md does not name {missing}"


def test_experiment_names():
    digest = "b883d3a9840bcaf63d709ab038013ea24cab9406ed1529492ab40e5d7c4e4b80"
    assert layout.experiment_name("googlenet", digest) == f"mindzoo/googlenet/{digest[:12]}"
    assert layout.experiment_name("googlenet", "") == "mindzoo/googlenet/unknown-data"
    assert layout.experiment_name("", digest) == layout.UNLINKED_EXPERIMENT


def test_step_metrics_get_the_step_prefix():
    assert layout.infer_metrics({"top1": 0.5, "latency_p50_ms": 2.0, "images_per_second": 9.0}) == {
        "infer/top1": 0.5, "infer/latency_p50_ms": 2.0, "infer/img_per_s": 9.0}
    assert layout.data_metrics({"train_images": 10, "content_hash": "ab", "reused": True}) == {
        "data/train_images": 10.0}


def test_run_summary_counts_the_epochs_of_earlier_attempts():
    # Epochs 1-2 were trained before a resume (60 s each incl. eval); this attempt ran 100 s for epoch 3.
    history = [{"epoch": e, "perf/epoch_s": 50.0, "perf/eval_s": 10.0, "perf/step_ms": ms}
               for e, ms in ((1, 100.0), (2, 100.0), (3, 400.0))]
    summary = run_summary(history, earlier_epochs=2, world_size=8, global_batch=256, attempt_s=100.0, best_epoch=2)
    assert summary["summary/wall_s"] == pytest.approx(100 + 2 * 60)
    assert summary["summary/device_hours"] == pytest.approx(8 * 220 / 3600)
    assert summary["summary/train_s"] == pytest.approx(180)
    assert summary["summary/time_to_best_s"] == pytest.approx(120) and summary["summary/best_epoch"] == 2
    assert summary["summary/step_ms"] == pytest.approx(200) and summary["summary/img_per_s"] == pytest.approx(1280)


def test_run_summary_without_evaluation_has_no_time_to_best():
    summary = run_summary([{"epoch": 1, "perf/epoch_s": 5.0}], earlier_epochs=0, world_size=1, global_batch=16,
                          attempt_s=9.0, best_epoch=None)
    assert "summary/time_to_best_s" not in summary and "summary/img_per_s" not in summary
    assert summary["summary/wall_s"] == 9.0


def row(name, step="train", start=0, params=None, **metrics):
    return RunRow(f"{name:0>32}", name, step, "FINISHED", start, "", params or {},
                  {k.replace("__", "/"): v for k, v in metrics.items()})


def test_params_differ_only_within_what_each_step_logs():
    a = row("a", params={"lr": "0.1", "model": "googlenet", "run_id": "a", "image": "x"})
    b = row("b", params={"lr": "0.2", "model": "googlenet", "run_id": "b"})
    e = row("e", step="evaluate", params={"evaluate.split": "val", "model": "googlenet"})
    # lr: two values; image: logged by one train run only; run_id: differs by construction, never shown.
    assert differing_params([a, b, e]) == ["lr", "image"]


def test_best_run_is_the_highest_top1_then_the_lowest_loss():
    runs = [row("a", start=1, eval__top1=0.8, eval__loss=0.5), row("b", start=2, eval__top1=0.8, eval__loss=0.4),
            row("c", start=3, eval__top1=0.7), row("d", start=4)]
    assert best_run(runs) == runs[1].run_id
    assert best_run([row("d")]) is None
    assert "best: none (no run has eval/top1)" in render(compare_rows("x", [row("d")]), "table")


def test_the_table_marks_the_best_run_and_borrowed_metrics():
    train = RunRow("1" * 32, "t", "train", "FINISHED", 0, "kfp-1", {"lr": "0.1"}, {"eval/top1": 0.9,
                   "infer/latency_p50_ms": 3.0}, frozenset({"infer/latency_p50_ms"}))
    other = row("o", params={"lr": "0.2"}, eval__top1=0.5)
    text = render(compare_rows("mindzoo/googlenet/abc", [train, other]), "table")
    assert text.splitlines()[1].split()[:3] == ["run", "t", "*"]
    assert "3 †" in text and "† logged by another step of the same pipeline run" in text


def test_a_pipeline_run_id_with_quotes_is_refused(monkeypatch):
    from mindzoo.config import StorageConfig, TrackingConfig
    from mindzoo.kfp_io import ExecutorIO
    from mindzoo.steps.context import StepContext

    monkeypatch.setenv("MINDZOO_PIPELINE_RUN_ID", "x' or '1'='1")
    ctx = StepContext("train", StorageConfig(), TrackingConfig(), ExecutorIO.parse(""))
    with pytest.raises(ConfigError, match=r"\$MINDZOO_PIPELINE_RUN_ID: use at most 200 letters"):
        ctx.tracking_target("mindzoo/googlenet/abc")


DIGEST, OTHER = "sha256:" + "ab" * 32, "sha256:" + "cd" * 32
PINS = f"mindzoo-cpu:0.1.0={OTHER},mindzoo-gpu:0.1.0={DIGEST}"  # what a pinned compiled pipeline gives every step


@pytest.mark.parametrize("env, expected", [
    ({}, ""),  # nothing told the step: no digest, never a guess
    ({"MINDZOO_IMAGE_DIGEST": DIGEST}, DIGEST),  # run-local, the launcher's worker pods
    ({"MINDZOO_IMAGE": "mindzoo-gpu:0.1.0", "MINDZOO_IMAGE_DIGESTS": PINS}, DIGEST),  # its own image's pin
    ({"MINDZOO_IMAGE": "mindzoo-ascend:0.1.0", "MINDZOO_IMAGE_DIGESTS": PINS}, ""),  # its image was not pinned
    ({"MINDZOO_IMAGE_DIGEST": DIGEST, "MINDZOO_IMAGE": "mindzoo-cpu:0.1.0", "MINDZOO_IMAGE_DIGESTS": PINS}, DIGEST),
])
def test_the_image_digest_a_step_records(env, expected):
    assert layout.image_digest(env) == expected
    assert layout.pipeline_tags(env).get(layout.Tag.IMAGE_DIGEST, "") == expected


@pytest.mark.parametrize("env, message", [
    ({"MINDZOO_IMAGE_DIGEST": "abc"}, r"\$MINDZOO_IMAGE_DIGEST: expected sha256:<64 hex digits> \(got 'abc'\)"),
    ({"MINDZOO_IMAGE_DIGESTS": "mindzoo-cpu:0.1.0"}, r"\$MINDZOO_IMAGE_DIGESTS: entries are <image>=sha256:"),
    ({"MINDZOO_IMAGE_DIGESTS": f"a={DIGEST},b=sha256:12"}, r"\$MINDZOO_IMAGE_DIGESTS: expected sha256:<64"),
])
def test_a_bad_image_digest_fails_the_step_naming_its_variable(monkeypatch, env, message):
    from mindzoo.config import StorageConfig, TrackingConfig
    from mindzoo.kfp_io import ExecutorIO
    from mindzoo.steps.context import StepContext

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ctx = StepContext("export", StorageConfig(), TrackingConfig(), ExecutorIO.parse(""))
    with pytest.raises(ConfigError, match=message):
        ctx.tracking_target("mindzoo/googlenet/abc")
