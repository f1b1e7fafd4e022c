"""A loopback HTTP server that records every request and injects faults.

A vendor module (``tests/wire/openai.py``, ...) supplies the *app*: a function
from the recorded request to a :class:`Reply` in that vendor's wire format.
The server adds what every vendor shares: recording, HTTP/1.1 with chunked
streams, optional TLS, and faults queued by the test, one per request in
arrival order.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

_NO_HEADERS: Mapping[str, str] = {}


class Recorded(NamedTuple):
    """One request as the server received it; header names are lower-case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Reply(NamedTuple):
    """An answer. With ``chunks`` the body is streamed, one flushed HTTP chunk each."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = _NO_HEADERS
    chunks: Sequence[bytes] | None = None


class Status(NamedTuple):
    """Fault: answer with this status, headers and body instead of the app's reply."""

    status: int
    headers: Mapping[str, str] = _NO_HEADERS
    body: bytes = b""


class Delay(NamedTuple):
    """Fault: wait this long before the app's reply (to trip the client's timeout)."""

    seconds: float


class Reset(NamedTuple):
    """Fault: read the request, then reset the connection without answering."""


class Cut(NamedTuple):
    """Fault: stream only the first ``after`` chunks, then ``then`` (in ``pieces`` chunks of its own, as a network
    may split it); with ``drop`` the connection closes before the stream's end (an incomplete chunked body), else
    the stream ends normally."""

    after: int
    then: bytes = b""
    drop: bool = True
    pieces: int = 1


class Drip(NamedTuple):
    """Fault: stream the app's chunks ``seconds`` apart (a slow model), each chunk on time for a read timeout."""

    seconds: float


Fault = Status | Delay | Reset | Cut | Drip
App = Callable[[Recorded], Reply]


class LoopbackServer:
    """``with LoopbackServer(app) as server:`` serves on ``server.url`` until the block ends."""

    def __init__(self, app: App, *, tls: ssl.SSLContext | None = None):
        self.app = app
        self.requests: list[Recorded] = []
        #: Exceptions the app raised (a request shape it rejects); a test asserts this stays empty.
        self.errors: list[BaseException] = []
        self._faults: deque[Fault] = deque()
        self._stopping = threading.Event()
        self._httpd = _Quiet(("127.0.0.1", 0), _handler_class(self))
        self._httpd.daemon_threads = True
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        # A short poll interval: stopping a server waits for it, and tests start many.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def fail(self, *faults: Fault) -> None:
        """Queue faults: the next requests get them, one each, in order."""
        self._faults.extend(faults)

    def next_fault(self) -> Fault | None:
        try:
            return self._faults.popleft()
        except IndexError:
            return None

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def answered_in_memory(app: Callable[[Recorded], Reply], http: Any) -> Any:
    """An ``http`` (httpx or httpx2) MockTransport that answers from ``app`` in-process, with bodies already read
    in full, as httpx's MockTransport, respx or a caching transport hand them back: nobody iterates them again."""

    def handle(request: Any) -> Any:
        url = request.url
        headers = {k.lower(): v for k, v in request.headers.items()}
        reply = app(Recorded(request.method, url.path, parse_qs(url.query.decode()), headers, request.read()))
        body = b"".join(reply.chunks) if reply.chunks is not None else reply.body
        return http.Response(reply.status, headers=dict(reply.headers), content=body)

    return http.MockTransport(handle)


class _Quiet(ThreadingHTTPServer):
    """A server that takes a client hanging up (a closed stream, a timeout) as normal, not as an error to print."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ssl.SSLError)):
            super().handle_error(request, client_address)


def _handler_class(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes: with Nagle's algorithm each answer would wait ~40 ms for
        # the client's delayed ACK.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _handle(self) -> None:
            url = urlsplit(self.path)
            request = Recorded(
                self.command,
                url.path,
                parse_qs(url.query),
                {k.lower(): v for k, v in self.headers.items()},
                self._body(),
            )
            server.requests.append(request)
            fault = server.next_fault()
            if isinstance(fault, Reset):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            if isinstance(fault, Status):
                self._send(Reply(fault.status, fault.body, {"Content-Type": "application/json", **fault.headers}))
                return
            if isinstance(fault, Delay) and server._stopping.wait(fault.seconds):
                return
            try:
                reply = server.app(request)
            except Exception as exc:  # the app rejected the request's shape: fail the test, answer 500
                server.errors.append(exc)
                reply = Reply(500, json.dumps({"error": f"test server: {exc}"}).encode())
            self._send(reply, fault if isinstance(fault, Cut) else None, fault if isinstance(fault, Drip) else None)

        def _send(self, reply: Reply, cut: Cut | None = None, drip: Drip | None = None) -> None:
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunks is None:
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunks = list(reply.chunks)
                if cut is not None:
                    size = max(1, -(-len(cut.then) // cut.pieces))
                    chunks = chunks[: cut.after] + [cut.then[i : i + size] for i in range(0, len(cut.then), size)]
                for i, chunk in enumerate(chunks):
                    if drip is not None and i and server._stopping.wait(drip.seconds):
                        return
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                if cut is not None and cut.drop:
                    self.close_connection = True
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self.close_connection = True  # the client gave up first (its timeout): nothing to answer

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    return Handler


def tls_context(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context with a throw-away certificate for 127.0.0.1, and the CA file a client trusts."""
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = directory / "loopback-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


def sse(*events: Mapping[str, Any] | str, event: str | None = None) -> list[bytes]:
    """Server-sent events: each a JSON object (or a raw string such as ``[DONE]``) as a ``data:`` line."""
    out = []
    for item in events:
        data = item if isinstance(item, str) else json.dumps(item)
        out.append((f"event: {event}\n" if event else "").encode() + f"data: {data}\n\n".encode())
    return out


def json_reply(body: Any, status: int = 200, headers: Mapping[str, str] = _NO_HEADERS) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})
