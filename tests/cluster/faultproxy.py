"""A fault-injecting proxy in front of the real API server, for the launcher's retry tests.

Clients speak plain HTTP to it on loopback; it forwards every request over TLS to the harness's
kube-apiserver as the harness admin (client certificate), passing the client's headers on -
``Impersonate-User`` included, so RBAC applies exactly as to the impersonated ServiceAccount.
Everything behind it is real: only the faults listed are made up, each once, in order of need:

* ``"429"`` / ``"503"``: answer that status itself (429 with ``Retry-After: 1``), forwarding nothing;
* ``"reset"``: reset the client's connection before forwarding (the request never reached the server);
* ``"lose-response"``: forward, let the API server act, then reset the client's connection (the
  request happened, its answer is lost - a create repeated after it meets 409).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_HEADERS = {"host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade"}


@dataclass(frozen=True)
class Fault:
    method: str
    path: str  # a request matches when its path (without the query) ends with this
    action: str  # "429", "503", "reset" or "lose-response"

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and path.split("?", 1)[0].endswith(self.path)


class FaultProxy:
    def __init__(self, upstream: str, ca: str, cert: str, key: str, faults: list[Fault]) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port or 443)
        self.tls = ssl.create_default_context(cafile=ca)
        self.tls.load_cert_chain(cert, key)
        self.pending = list(faults)
        self.injected: list[tuple[str, str, str]] = []  # (method, path, action) of each fault made
        self.answers: list[tuple[str, str, int]] = []  # (method, path, status) the API server gave
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # resets are the point, not errors
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="fault-proxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FaultProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def take(self, method: str, path: str) -> str | None:
        with self.lock:
            fault = next((f for f in self.pending if f.matches(method, path)), None)
            if fault is None:
                return None
            self.pending.remove(fault)
            self.injected.append((method, path.split("?", 1)[0], fault.action))
            return fault.action


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 for chunked answers (a followed log arrives chunk by chunk); one request per connection.
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _reset(self) -> None:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            action = proxy.take(self.command, self.path)
            if action == "reset":
                return self._reset()
            if action in ("429", "503"):
                status = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                     "message": f"injected by the fault proxy ({action})", "code": int(action)})
                self.send_response(int(action))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(status)))
                self.send_header("Connection", "close")
                if action == "429":
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(status.encode())
                self.close_connection = True
                return None
            upstream = http.client.HTTPSConnection(*proxy.upstream, context=proxy.tls, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            upstream.request(self.command, self.path, body or None, headers)
            response = upstream.getresponse()
            with proxy.lock:
                proxy.answers.append((self.command, self.path.split("?", 1)[0], response.status))
            if action == "lose-response":
                response.read()
                return self._reset()
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in HOP_HEADERS:
                    self.send_header(key, value)
            chunked = response.getheader("Content-Length") is None
            self.send_header("Connection", "close")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while chunk := response.read1(65536):  # streams (a followed log) pass as they come
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                self.wfile.flush()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            upstream.close()
            self.close_connection = True
            return None

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    return Handler
