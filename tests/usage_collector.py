"""A loopback OTLP/HTTP collector for the OpenTelemetry export tests."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest


class Collector(http.server.ThreadingHTTPServer):
    """A loopback OTLP/HTTP receiver: keeps the body of every POST by path, answers ``answer`` (200: accepted)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CollectorHandler)
        self.posts: list[tuple[str, bytes]] = []
        self.answer = 200


class _CollectorHandler(http.server.BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.posts.append((self.path, body))
        self.send_response(self.server.answer)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    """A running :class:`Collector`, with the OTEL_* variables pointing the OTLP/HTTP exporters at it."""
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "privsdk-test-app")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
