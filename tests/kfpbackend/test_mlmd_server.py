"""mindzoo's ML Metadata front end (tools/mlmd/server.py) against the real store: the ml-metadata
wheel's C++ MetadataStore on a SQLite file, driven through a real gRPC client built from the
wheel's own stubs (``metadata_store_service_pb2_grpc``), the way KFP's driver and launcher call
an MLMD service. Runs in the ML Metadata environment, in ``make test-e2e``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from ml_metadata import errors as mlmd_errors
from ml_metadata.metadata_store import MetadataStore
from ml_metadata.proto import metadata_store_pb2 as pb
from ml_metadata.proto import metadata_store_service_pb2 as svc
from ml_metadata.proto import metadata_store_service_pb2_grpc as svc_grpc

pytestmark = [pytest.mark.mlmd, pytest.mark.kfpbackend]

SERVER = Path(__file__).resolve().parents[2] / "tools" / "mlmd" / "server.py"
SERVICE = "/ml_metadata.MetadataStoreService/"
NOT_IN_EXTENSION = {"GetParentContextsByContexts", "GetChildrenContextsByContexts", "GetLineageGraph"}


@dataclass
class Server:
    proc: subprocess.Popen
    address: str
    sqlite: Path

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM, as Kubernetes and the harness stop it; returns (status, stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err


def start(*args: str) -> Server:
    proc = subprocess.Popen([sys.executable, str(SERVER), "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # the server's first line, once it serves
    if not line.startswith("listening on "):
        proc.kill()
        raise AssertionError(f"the MLMD server did not start: {line!r} {proc.communicate(timeout=30)[1]}")
    sqlite = Path(args[args.index("--sqlite") + 1]) if "--sqlite" in args else Path()
    return Server(proc, line.split()[-1], sqlite)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = start("--sqlite", str(tmp_path / "metadata.sqlite"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def stub(server: Server) -> Iterator[svc_grpc.MetadataStoreServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        yield svc_grpc.MetadataStoreServiceStub(channel)


def put_graph(stub: svc_grpc.MetadataStoreServiceStub) -> dict[str, int]:
    """A small pipeline run's lineage, as KFP records one: types, a run context, an execution that
    reads a dataset and writes a model, and the events between them. Returns the ids."""
    model_type = pb.ArtifactType(name="system.Model", properties={"framework": pb.STRING})
    ids = {"model_type": stub.PutArtifactType(svc.PutArtifactTypeRequest(artifact_type=model_type)).type_id,
           "dataset_type": stub.PutArtifactType(svc.PutArtifactTypeRequest(
               artifact_type=pb.ArtifactType(name="system.Dataset"))).type_id,
           "exec_type": stub.PutExecutionType(svc.PutExecutionTypeRequest(
               execution_type=pb.ExecutionType(name="system.ContainerExecution"))).type_id,
           "run_type": stub.PutContextType(svc.PutContextTypeRequest(
               context_type=pb.ContextType(name="system.PipelineRun"))).type_id}
    dataset = pb.Artifact(type_id=ids["dataset_type"], uri="s3://mindzoo/datasets/abc", state=pb.Artifact.LIVE)
    model = pb.Artifact(type_id=ids["model_type"], uri="s3://mindzoo/runs/r1/model", name="model",
                        state=pb.Artifact.LIVE)
    model.properties["framework"].string_value = "mindspore"
    model.custom_properties["accuracy"].double_value = 0.93
    ids["dataset"], ids["model"] = stub.PutArtifacts(svc.PutArtifactsRequest(artifacts=[dataset, model])).artifact_ids
    execution = pb.Execution(type_id=ids["exec_type"], name="train", last_known_state=pb.Execution.COMPLETE)
    ids["execution"], = stub.PutExecutions(svc.PutExecutionsRequest(executions=[execution])).execution_ids
    ids["run"], = stub.PutContexts(svc.PutContextsRequest(
        contexts=[pb.Context(type_id=ids["run_type"], name="run-1")])).context_ids
    stub.PutAttributionsAndAssociations(svc.PutAttributionsAndAssociationsRequest(
        attributions=[pb.Attribution(artifact_id=ids["model"], context_id=ids["run"])],
        associations=[pb.Association(execution_id=ids["execution"], context_id=ids["run"])]))
    stub.PutEvents(svc.PutEventsRequest(events=[
        pb.Event(artifact_id=ids["dataset"], execution_id=ids["execution"], type=pb.Event.INPUT),
        pb.Event(artifact_id=ids["model"], execution_id=ids["execution"], type=pb.Event.OUTPUT)]))
    return ids


def test_lineage_written_through_grpc_reads_back(stub):
    ids = put_graph(stub)

    model, = stub.GetArtifactsByID(svc.GetArtifactsByIDRequest(artifact_ids=[ids["model"]])).artifacts
    assert (model.uri, model.name, model.type) == ("s3://mindzoo/runs/r1/model", "model", "system.Model")
    assert model.properties["framework"].string_value == "mindspore"
    assert model.custom_properties["accuracy"].double_value == pytest.approx(0.93)
    types = stub.GetArtifactTypes(svc.GetArtifactTypesRequest()).artifact_types
    assert {t.name for t in types} == {"system.Model", "system.Dataset"}

    run = stub.GetContextByTypeAndName(svc.GetContextByTypeAndNameRequest(type_name="system.PipelineRun",
                                                                           context_name="run-1")).context
    assert run.id == ids["run"]
    in_run = stub.GetArtifactsByContext(svc.GetArtifactsByContextRequest(context_id=run.id)).artifacts
    assert [a.id for a in in_run] == [ids["model"]]
    execution, = stub.GetExecutionsByContext(svc.GetExecutionsByContextRequest(context_id=run.id)).executions
    assert (execution.name, execution.last_known_state) == ("train", pb.Execution.COMPLETE)
    events = stub.GetEventsByExecutionIDs(svc.GetEventsByExecutionIDsRequest(execution_ids=[execution.id])).events
    assert sorted((e.artifact_id, e.type) for e in events) == [(ids["dataset"], pb.Event.INPUT),
                                                               (ids["model"], pb.Event.OUTPUT)]
    by_uri = stub.GetArtifactsByURI(svc.GetArtifactsByURIRequest(uris=["s3://mindzoo/datasets/abc"])).artifacts
    assert [a.id for a in by_uri] == [ids["dataset"]]


def test_the_store_is_the_sqlite_file(server, stub):
    """What the server wrote is in the database file: the wheel's own client, opened on the file
    directly, reads it back."""
    ids = put_graph(stub)
    direct = MetadataStore(pb.ConnectionConfig(sqlite=pb.SqliteMetadataSourceConfig(
        filename_uri=str(server.sqlite), connection_mode=pb.SqliteMetadataSourceConfig.READONLY)))
    assert [a.uri for a in direct.get_artifacts_by_id([ids["model"]])] == ["s3://mindzoo/runs/r1/model"]
    assert [c.name for c in direct.get_contexts_by_type("system.PipelineRun")] == ["run-1"]


def test_the_wheels_grpc_client_works_against_it(server):
    """ml_metadata's high-level client in gRPC mode (MetadataStoreClientConfig), as other MLMD users call it."""
    host, port = server.address.rsplit(":", 1)
    client = MetadataStore(pb.MetadataStoreClientConfig(host=host, port=int(port)))
    type_id = client.put_artifact_type(pb.ArtifactType(name="system.Metrics"))
    [artifact_id] = client.put_artifacts([pb.Artifact(type_id=type_id, uri="s3://m/metrics")])
    assert [a.uri for a in client.get_artifacts_by_type("system.Metrics")] == ["s3://m/metrics"]
    with pytest.raises(mlmd_errors.NotFoundError):  # the store's NOT_FOUND, carried through gRPC
        client.get_artifact_type("no.such.Type")
    assert artifact_id > 0


def test_every_service_method_reaches_the_store(server):
    """No per-call code: each of the service's methods is served from the store (an empty request is
    valid or the store refuses it, never UNIMPLEMENTED), except those the extension lacks."""
    methods = [m.name for m in svc.DESCRIPTOR.services_by_name["MetadataStoreService"].methods]
    assert len(methods) > 40
    with grpc.insecure_channel(server.address) as channel:
        unimplemented = set()
        for name in methods:
            try:
                channel.unary_unary(SERVICE + name)(b"", timeout=30)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    unimplemented.add(name)
                    assert "store extension" in exc.details()
    assert unimplemented == NOT_IN_EXTENSION


def test_bad_requests_get_the_stores_error_and_the_server_goes_on(stub, server):
    with pytest.raises(grpc.RpcError) as unknown_type:
        stub.PutArtifacts(svc.PutArtifactsRequest(artifacts=[pb.Artifact(type_id=999, uri="s3://x")]))
    assert unknown_type.value.code() == grpc.StatusCode.NOT_FOUND
    assert "type_id: 999" in unknown_type.value.details()

    with grpc.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.RpcError) as garbage:
            channel.unary_unary(SERVICE + "PutArtifacts")(b"\xff\xff\xff", timeout=30)
        assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "parse" in garbage.value.details()
        with pytest.raises(grpc.RpcError) as no_such:
            channel.unary_unary(SERVICE + "NoSuchMethod")(b"", timeout=30)
        assert no_such.value.code() == grpc.StatusCode.UNIMPLEMENTED

    # still serving, and the refused calls left nothing behind
    assert stub.GetArtifacts(svc.GetArtifactsRequest()).artifacts == []
    assert server.proc.poll() is None


def test_sigterm_stops_it_cleanly(tmp_path):
    running = start("--sqlite", str(tmp_path / "m.sqlite"))
    with grpc.insecure_channel(running.address) as channel:
        svc_grpc.MetadataStoreServiceStub(channel).PutArtifactType(
            svc.PutArtifactTypeRequest(artifact_type=pb.ArtifactType(name="system.Artifact")), timeout=30)
    status, out, err = running.stop()
    assert (status, out.strip()) == (0, "stopped"), err
    assert "Traceback" not in err
    # the data outlives the server
    direct = MetadataStore(pb.ConnectionConfig(sqlite=pb.SqliteMetadataSourceConfig(filename_uri=str(running.sqlite))))
    assert [t.name for t in direct.get_artifact_types()] == ["system.Artifact"]


def test_a_store_it_cannot_open_is_one_error_line(tmp_path):
    proc = subprocess.run([sys.executable, str(SERVER), "--port", "0", "--sqlite", str(tmp_path / "no" / "x.sqlite")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: ML Metadata store: Cannot connect sqlite3 database: unable to open database file")
    assert "Traceback" not in proc.stderr and proc.stdout == ""
