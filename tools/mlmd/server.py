"""mindzoo's ML Metadata gRPC front end: ``ml_metadata.MetadataStoreService`` served from the
store in the PyPI ``ml-metadata`` wheel.

This is the project's own small server, **not** upstream's MLMD server (a C++/Bazel program with
no build path here). The wheel compiles the whole C++ MetadataStore into a Python extension
(``ml_metadata/metadata_store/pywrap/metadata_store_extension.so``) whose functions take and
return serialized protos: ``Method(store, request_bytes) -> (response_bytes, error, code)``, one
per RPC of the service. So this server decodes nothing: every RPC's request bytes go to the
extension function of the same name, and its answer, or its error (status code and message),
goes back as it is. Nothing is answered without the store; an RPC the extension lacks gets
UNIMPLEMENTED. The store is a SQLite file or a MySQL/MariaDB database.

Run it in the ML Metadata environment (``.venv-mlmd``, pinned by requirements/mlmd.txt: the
wheel's protobuf 4 conflicts with both project environments)::

    .venv-mlmd/bin/python tools/mlmd/server.py --port 8080 --sqlite /var/lib/mlmd/metadata.sqlite
    MLMD_MYSQL_PASSWORD=... .venv-mlmd/bin/python tools/mlmd/server.py --port 8080 \\
        --mysql-host 127.0.0.1 --mysql-database metadb --mysql-user root

When it serves it prints one line, ``listening on HOST:PORT`` (``--port 0`` picks a free port).
SIGTERM or SIGINT stop it cleanly: calls in flight finish (up to ``--grace`` seconds), the stores
close, exit status 0. A bad configuration is one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
from concurrent import futures
from typing import Callable

import grpc
from ml_metadata.metadata_store.pywrap.metadata_store_extension import metadata_store as extension
from ml_metadata.proto import metadata_store_pb2, metadata_store_service_pb2

SERVICE = metadata_store_service_pb2.DESCRIPTOR.services_by_name["MetadataStoreService"]
#: The store's codes are absl/gRPC canonical codes: the same numbers as grpc.StatusCode.
STATUS = {code.value[0]: code for code in grpc.StatusCode}
log = logging.getLogger("mlmd-server")


class ConfigError(Exception):
    """The store cannot be opened with the given configuration."""


def connection_config(args: argparse.Namespace) -> metadata_store_pb2.ConnectionConfig:
    config = metadata_store_pb2.ConnectionConfig()
    if args.sqlite:
        config.sqlite.filename_uri = args.sqlite
        config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    else:
        mysql = config.mysql
        mysql.host, mysql.port, mysql.database, mysql.user = (args.mysql_host, args.mysql_port,
                                                              args.mysql_database, args.mysql_user)
        # From the environment, never the command line (visible in `ps`).
        mysql.password = os.environ.get("MLMD_MYSQL_PASSWORD", "")
    return config


class Stores:
    """One store (one database connection) per serving thread: the extension's store object is
    not documented as safe to share between threads, and a connection per thread is what lets
    MySQL serve calls side by side."""

    def __init__(self, config: metadata_store_pb2.ConnectionConfig, upgrade: bool):
        options = metadata_store_pb2.MigrationOptions(enable_upgrade_migration=upgrade)
        self._args = (config.SerializeToString(), options.SerializeToString())
        self._local = threading.local()
        self._all: list[object] = []
        self._lock = threading.Lock()

    def open(self) -> object:
        try:
            store = extension.CreateMetadataStore(*self._args)
        except RuntimeError as exc:  # the extension's only way to say "cannot connect / migrate"
            # glog's "not initialized" warning lands inside the extension's message: not the reason.
            reason = str(exc).replace("WARNING: Logging before InitGoogleLogging() is written to STDERR", "")
            raise ConfigError(" ".join(reason.split())[:400]) from None
        with self._lock:
            self._all.append(store)
        return store

    def mine(self) -> object:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = self.open()
        return store

    def close(self) -> None:
        """Drop every store: the extension closes its connection when its object goes."""
        with self._lock:
            self._all.clear()
        self._local = threading.local()


def forward(stores: Stores, name: str, function: Callable, request: bytes,
            context: grpc.ServicerContext) -> bytes:
    """One RPC: the serialized request to the store, its serialized answer or error back."""
    response, error, code = function(stores.mine(), request)
    if code != 0:
        message = error.decode("utf-8", errors="replace")
        status = STATUS.get(code, grpc.StatusCode.UNKNOWN)
        log.info("%s: %s %s", name, status.name, message)
        context.abort(status, message)
    return response


def unimplemented(name: str, request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  f"{name} is not in the ml-metadata wheel's store extension, which this server forwards to")


def handlers(stores: Stores) -> tuple[grpc.GenericRpcHandler, list[str]]:
    """A handler for every method of the service, built from its descriptor (no per-call code).
    Requests and responses pass as bytes: no deserializer or serializer."""
    table, missing = {}, []
    for method in SERVICE.methods:
        function = getattr(extension, method.name, None)
        if function is None:
            missing.append(method.name)
            behaviour = functools.partial(unimplemented, method.name)
        else:
            behaviour = functools.partial(forward, stores, method.name, function)
        table[method.name] = grpc.unary_unary_rpc_method_handler(behaviour)
    return grpc.method_handlers_generic_handler(SERVICE.full_name, table), missing


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port (default: %(default)s)")
    store = parser.add_mutually_exclusive_group(required=True)
    store.add_argument("--sqlite", metavar="FILE", help="a SQLite database file (created when missing)")
    store.add_argument("--mysql-host", metavar="HOST", help="a MySQL/MariaDB server (password: $MLMD_MYSQL_PASSWORD)")
    parser.add_argument("--mysql-port", type=int, default=3306)
    parser.add_argument("--mysql-database", default="metadb", help="created when missing (default: %(default)s)")
    parser.add_argument("--mysql-user", default="root")
    parser.add_argument("--upgrade-schema", action="store_true", help="migrate a database made by an older MLMD")
    parser.add_argument("--workers", type=int, help="serving threads (default: 1 for SQLite, 4 for MySQL)")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds calls in flight get at shutdown")
    return parser.parse_args(argv)


def serve(args: argparse.Namespace) -> int:
    stores = Stores(connection_config(args), args.upgrade_schema)
    stores.open()  # fail now, with the store's reason, rather than on the first call
    # SQLite: one writer at a time anyway; a single thread keeps its file free of lock contention.
    workers = args.workers or (1 if args.sqlite else 4)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlmd"))
    generic, missing = handlers(stores)
    server.add_generic_rpc_handlers((generic,))
    try:
        port = server.add_insecure_port(f"{args.host}:{args.port}")
    except RuntimeError:
        port = 0
    if not port:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    store = "sqlite " + args.sqlite if args.sqlite else f"mysql {args.mysql_host}:{args.mysql_port}/{args.mysql_database}"
    log.info("serving %d of %d MetadataStoreService methods from %s (%d threads)%s",
             len(SERVICE.methods) - len(missing), len(SERVICE.methods), store, workers,
             f"; not in the store extension: {', '.join(missing)}" if missing else "")
    print(f"listening on {args.host}:{port}", flush=True)
    stop.wait()
    log.info("stopping")
    server.stop(args.grace).wait()
    stores.close()
    print("stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="mlmd-server: %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    try:
        return serve(args)
    except ConfigError as exc:
        print(f"error: ML Metadata store: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
