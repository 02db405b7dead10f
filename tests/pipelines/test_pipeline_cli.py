"""`mindzoo pipeline compile | submit | run-local` as users run them: files written, and every user
error one `error:` line with a non-zero exit and nothing half-written."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.control

ROOT = Path(__file__).resolve().parents[2]
CONTROL = ROOT / ".venv-control" / "bin" / "mindzoo"
RUNTIME = ROOT / ".venv" / "bin" / "mindzoo"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from specs import GOLDEN, normalise  # noqa: E402 - the golden copies and their normalisation


def mindzoo(*args, binary=CONTROL, env=None):
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def error_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_compile_writes_one_yaml_per_pipeline_equal_to_the_goldens(tmp_path):
    proc = mindzoo("pipeline", "compile", "--output", str(tmp_path / "dist"))
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in (tmp_path / "dist").iterdir())
    assert written == ["infer_pipeline.yaml", "train_pipeline.yaml"]
    for name in written:
        assert normalise((tmp_path / "dist" / name).read_text()) == (GOLDEN / name).read_text()
    assert proc.stdout.splitlines() == [f"compiled {tmp_path / 'dist' / n}" for n in ("train_pipeline.yaml",
                                                                                     "infer_pipeline.yaml")]


@pytest.mark.parametrize("args, message", [
    (["--gpu-selector", "no-equals-sign"], "error: pipeline.gpu_selector: expected label-key=value or '' "
                                           "(got 'no-equals-sign')"),
    (["--pipelines", "train,deploy"], "error: pipeline.pipelines: unknown pipeline 'deploy'; use train or infer"),
    (["--workspace-size", "lots"], "error: pipeline.workspace_size: expected a Kubernetes quantity such as 500Gi "
                                   "(got 'lots')"),
    (["--worker-cpu", "two"], "error: pipeline.worker_cpu: expected a CPU quantity such as 2 or 500m (got 'two')"),
    (["--worker-memory", "8GB"], "error: pipeline.worker_memory: expected a Kubernetes quantity such as 8Gi "
                                 "(got '8GB')"),
])
def test_bad_compile_settings_are_one_line_naming_the_key_and_write_nothing(tmp_path, args, message):
    proc = mindzoo("pipeline", "compile", "--output", str(tmp_path / "dist"), *args)
    assert error_line(proc) == message
    assert not (tmp_path / "dist").exists()


PIN_CPU, PIN_GPU = "sha256:" + "a1" * 32, "sha256:" + "b2" * 32


def test_pinned_images_run_by_digest_and_tell_every_step(tmp_path):
    import yaml

    proc = mindzoo("pipeline", "compile", "--output", str(tmp_path), "--pipelines", "train",
                   env={"MINDZOO_IMAGE_DIGESTS": f"cpu={PIN_CPU}, gpu={PIN_GPU}"})
    assert proc.returncode == 0, proc.stderr
    spec = next(yaml.safe_load_all((tmp_path / "train_pipeline.yaml").read_text()))  # then the platform spec
    executors = spec["deploymentSpec"]["executors"].values()
    images = {e["container"]["image"] for e in executors}
    assert images == {f"localhost/mindzoo-cpu:0.1.0@{PIN_CPU}", f"localhost/mindzoo-gpu:0.1.0@{PIN_GPU}",
                      "localhost/mindzoo-ascend:0.1.0"}  # not pinned: by tag, and its steps record no digest
    told = f"MINDZOO_IMAGE_DIGESTS=mindzoo-cpu:0.1.0={PIN_CPU},mindzoo-gpu:0.1.0={PIN_GPU}"
    assert all(e["container"]["command"][:3] == ["env", "MINDZOO_LOCAL_PIPELINE_RUN_ID={{$.pipeline_job_uuid}}", told]
               for e in executors)


@pytest.mark.parametrize("value, message", [
    ("cpu=sha256:12", "error: $MINDZOO_IMAGE_DIGESTS: expected sha256:<64 hex digits> (got 'sha256:12')"),
    (f"tpu={PIN_CPU}", "error: $MINDZOO_IMAGE_DIGESTS: unknown image 'tpu': pin cpu, gpu or ascend (cpu=sha256:...)"),
    ("cpu", "error: $MINDZOO_IMAGE_DIGESTS: entries are <image>=sha256:<64 hex digits> (got 'cpu')"),
])
def test_bad_image_pins_are_one_error_line_and_write_nothing(tmp_path, value, message):
    proc = mindzoo("pipeline", "compile", "--output", str(tmp_path / "dist"), env={"MINDZOO_IMAGE_DIGESTS": value})
    assert error_line(proc) == message
    assert not (tmp_path / "dist").exists()


class FakeImage:
    """Fake (pure logic): what docker-py's image listing gives run-local."""

    def __init__(self, image_id, tags):
        self.id, self.tags = image_id, tags


class FakeClient:
    def __init__(self, *found):
        self.images = self
        self.found = found

    def list(self):
        return list(self.found)


@pytest.mark.parametrize("image_id", [PIN_CPU, PIN_CPU.removeprefix("sha256:")])  # Docker's, podman's
def test_run_local_tells_the_tasks_the_local_image_id(image_id):
    from mindzoo.errors import MindzooError
    from mindzoo.pipeline.local import local_image_id

    client = FakeClient(FakeImage("sha256:" + "0" * 64, ["localhost/other:1"]), FakeImage(image_id, ["r/cpu:1"]))
    assert local_image_id(client, "r/cpu:1") == PIN_CPU
    with pytest.raises(MindzooError, match=r"^r/gpu:1 is not built: run `make images`$"):
        local_image_id(client, "r/gpu:1")


def test_submit_to_an_unreachable_server_is_one_error_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    line = error_line(mindzoo("pipeline", "submit", "--host", f"http://127.0.0.1:{port}", "--param", "source=s3://a/b"))
    assert line.startswith(f"error: could not submit to Kubeflow Pipelines at http://127.0.0.1:{port}: ")


class FakeRunResult:
    """A fake of kfp's RunPipelineResult (no KFP server here): its wait ends as ``outcome`` says."""

    run_id = "run-0123"

    def __init__(self, outcome):
        self.outcome = outcome

    def wait_for_run_completion(self, timeout):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return type("Run", (), {"state": self.outcome})()


@pytest.mark.parametrize("outcome, message", [
    ("FAILED", "run run-0123 ended FAILED"),
    (TimeoutError("Run timeout"), "run run-0123 did not finish within 5s (still running on the server; follow it "
                                  "there)"),
    (ConnectionError("connection reset by peer"), "lost track of run run-0123 while waiting: ConnectionError: "
                                                  "connection reset by peer"),
])
def test_submit_wait_failures_name_the_run(outcome, message):
    from mindzoo.errors import MindzooError
    from mindzoo.pipeline.submit import wait

    with pytest.raises(MindzooError) as caught:
        wait(FakeRunResult(outcome), 5, say=print)
    assert str(caught.value) == message


def test_submit_wait_reports_success(capsys):
    from mindzoo.pipeline.submit import wait

    wait(FakeRunResult("SUCCEEDED"), 5, say=print)
    assert capsys.readouterr().out == "run run-0123 succeeded\n"


@pytest.mark.parametrize("args, message", [
    (["--package", "/nowhere/pipeline.yaml"], "error: no such pipeline package: /nowhere/pipeline.yaml "
                                              "(give a compiled YAML, or train / infer)"),
    (["--param", "nodes"], "error: pipeline.param: expected key=value (got 'nodes')"),
    (["--host", "localhost:8080"], "error: pipeline.host: give a URL such as http://localhost:8080 "
                                   "(got 'localhost:8080')"),
    *[(["--param", param], message) for param, message in [
        ("engine=jax", "error: pipeline.param: engine must be one of mindspore, torch (got 'jax')"),
        ("device=tpu", "error: pipeline.param: device must be one of cpu, gpu, ascend (got 'tpu')"),
        ("infer_device=gpu", "error: pipeline.param: infer_device must be one of cpu, ascend310, ascend310p "
                             "(got 'gpu')"),
        ("launch_kind=jobset", "error: pipeline.param: launch_kind must be one of job, trainjob (got 'jobset')"),
        ("engine=torch,device=ascend", "error: pipeline.param: engine=torch cannot train on device=ascend (the "
                                       "torch engine trains on cpu or gpu; use engine=mindspore)"),
    ]],
])
def test_bad_submit_arguments(args, message):
    assert error_line(mindzoo("pipeline", "submit", *args)) == message


def test_run_local_refuses_an_engine_the_device_cannot_run_before_starting_anything(tmp_path):
    """The same check as submit's, before kfp.local starts a container (the stack is not even looked for)."""
    proc = mindzoo("pipeline", "run-local", "--param", "engine=torch", "--param", "device=ascend",
                   env={"MINDZOO_STATE_DIR": str(tmp_path / "state")})
    assert error_line(proc).startswith("error: pipeline.param: engine=torch cannot train on device=ascend")
    assert not (tmp_path / "state").exists()


def test_run_local_without_the_stack_says_how_to_start_it(tmp_path):
    proc = mindzoo("pipeline", "run-local", env={"MINDZOO_STATE_DIR": str(tmp_path / "state")})
    assert error_line(proc) == "error: the local stack is not up: run `mindzoo stack up` first"


def test_run_local_refuses_a_root_the_tasks_cannot_reach(tmp_path):
    proc = mindzoo("pipeline", "run-local", "--root", "/root/runs", env={"MINDZOO_STATE_DIR": str(tmp_path)})
    assert error_line(proc) == ("error: root: /root/runs is under /root, which the tasks' non-root user cannot "
                                "search inside the image; choose a folder elsewhere (e.g. under /var/tmp)")
    assert not Path("/root/runs").exists()


@pytest.mark.parametrize("state, parent", [
    ("/root/.local/state/mindzoo", Path("/var/tmp") / f"mindzoo-{os.getuid()}" / "pipeline-runs"),
    ("/home/ada/.local/state/mindzoo", Path("/home/ada/.local/state/mindzoo/pipeline-runs")),
])
def test_run_local_default_root_is_one_the_tasks_can_reach(state, parent):
    from mindzoo.pipeline.local import pipeline_root

    root = pipeline_root("", Path(state))
    assert root.parent == parent and len(root.name) == len("20261130-071000")
    assert pipeline_root("/srv/runs/../kfp", Path(state)) == Path("/srv/kfp")


def test_run_local_reports_the_bare_mlflow_url_when_it_cannot_find_the_run(monkeypatch, capsys):
    from mindzoo.pipeline.local import _tracking

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
    assert _tracking(uri, 0.0) == ("", uri)
    assert capsys.readouterr().err.startswith(f"warning: could not look the run up in MLflow at {uri}: ")


def test_pipeline_commands_belong_to_the_control_environment():
    proc = mindzoo("pipeline", "compile", binary=RUNTIME)
    assert error_line(proc) == ("error: `mindzoo pipeline compile` needs the control environment (kfp is not "
                                "installed here): run .venv-control/bin/mindzoo pipeline compile")


def test_submit_params_keep_comma_separated_overrides_whole():
    """The CLI splits --param values at commas; recipe overrides carry commas of their own."""
    from mindzoo.pipeline.submit import pipeline_arguments

    items = ("source=s3://mindzoo/raw/digits", "overrides=epochs=3", "batch_size=16", "schedule.milestones=70",
             "140", "nodes=2", "min_top1=0.8")
    from mindzoo.config import _join_overrides

    assert pipeline_arguments(GOLDEN / "train_pipeline.yaml", _join_overrides(items)) == {
        "source": "s3://mindzoo/raw/digits", "overrides": "epochs=3,batch_size=16,schedule.milestones=70,140",
        "nodes": 2, "min_top1": 0.8}


def test_submit_refuses_a_parameter_the_pipeline_does_not_take_before_contacting_a_server():
    line = error_line(mindzoo("pipeline", "submit", "--host", "http://127.0.0.1:9", "--param", "epochs=3"))
    assert line.startswith("error: pipeline.param: 'epochs' is not a parameter of train_pipeline.yaml (it takes: ")
    assert "overrides, " in line and "source, " in line


@pytest.mark.parametrize("status", [401, 403, 404, 500, 503])
def test_submit_to_a_server_answering_an_error_names_host_and_status(status):
    """A fake KFP endpoint (a bare HTTP server answering every request with ``status``): what a proxy or a
    misconfigured ingress in front of KFP does. The real API server's 404 is tested in test_kfp_runs.py."""
    import http.server
    import threading

    class Answer(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "no"}')

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"http://127.0.0.1:{server.server_address[1]}"
        line = error_line(mindzoo("pipeline", "submit", "--host", host, "--param", "source=s3://a/b"))
    finally:
        server.shutdown()
    import http as codes

    assert line == f"error: could not submit to Kubeflow Pipelines at {host}: HTTP {status} " \
                   f"{codes.HTTPStatus(status).phrase}"


def test_infer_pipeline_imports_nothing_so_a_models_uri_reaches_the_run():
    """KFP 2.17's importer refuses URIs without an object-store scheme (seen on the real backend:
    "no provider scheme found in artifact URI: models:/...") and its driver cannot resolve a OneOf over an
    importer's output: infer_pipeline's URIs go through the locate step instead, which resolves models:/."""
    import yaml

    from mindzoo.pipeline.submit import pipeline_arguments

    spec = next(d for d in yaml.safe_load_all((GOLDEN / "infer_pipeline.yaml").read_text()) if d and "root" in d)
    executors = spec["deploymentSpec"]["executors"].values()
    assert not [e for e in executors if "importer" in e]
    located = {e["container"]["args"][1] for e in executors if e.get("container", {}).get("command", [])[-1:] ==
               ["locate"]}
    assert located == {"{{$.inputs.parameters['uri']}}"}
    given = pipeline_arguments(GOLDEN / "infer_pipeline.yaml", ("data=s3://mindzoo/datasets/abc",
                                                                "model=models:/googlenet/1"))
    assert given == {"data": "s3://mindzoo/datasets/abc", "model": "models:/googlenet/1"}


def test_a_failed_run_names_its_failed_steps_not_the_dags_and_drivers_around_them():
    """A fake of what KFP 2.17's run API answered for a run whose preprocess failed (seen on the real backend):
    task details for Argo's nodes, KFP's drivers and the DAGs, all FAILED with the step."""
    from types import SimpleNamespace as Obj

    import yaml

    from mindzoo.pipeline.submit import failed_tasks

    spec = next(d for d in yaml.safe_load_all((GOLDEN / "train_pipeline.yaml").read_text()) if d and "root" in d)
    details = [Obj(display_name=name, state=state, error=None) for name, state in [
        ("root", "FAILED"), ("preprocess-driver", "SUCCEEDED"), ("preprocess", "FAILED"), ("preprocess(0)", "FAILED"),
        ("executor(0)", "FAILED"), ("condition-branches-1", "SKIPPED"), ("train-3", "SKIPPED"), (None, None)]]
    run = Obj(pipeline_spec={"pipeline_spec": spec, "platform_spec": {}}, run_details=Obj(task_details=details))
    assert failed_tasks(run) == "preprocess"
    details[2].error = Obj(message="exit status 2\nmore")
    assert failed_tasks(run) == "preprocess (exit status 2)"
