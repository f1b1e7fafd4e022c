"""The loopback server itself: recording, faults, chunked streams and TLS, checked with the standard library."""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path

import pytest

from tests.wire.server import Cut, Delay, LoopbackServer, Recorded, Reply, Reset, Status, json_reply, sse, tls_context


def _app(request: Recorded) -> Reply:
    if request.path == "/stream":
        return Reply(200, headers={"Content-Type": "text/event-stream"}, chunks=sse({"n": 1}, {"n": 2}, "[DONE]"))
    return json_reply({"echo": request.json()})


def _post(server: LoopbackServer, path: str, timeout: float = 5.0) -> http.client.HTTPResponse:
    host, port = server.url.rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    conn.request("POST", path + "?a=1", body=json.dumps({"x": 1}), headers={"X-Test": "yes"})
    return conn.getresponse()


def test_records_the_request_and_answers_from_the_app() -> None:
    with LoopbackServer(_app) as server:
        response = _post(server, "/echo")
        assert json.loads(response.read()) == {"echo": {"x": 1}}
    (request,) = server.requests
    assert (request.method, request.path, request.query, request.headers["x-test"]) == (
        "POST",
        "/echo",
        {"a": ["1"]},
        "yes",
    )
    assert server.errors == []


def test_faults_apply_one_per_request_in_order() -> None:
    with LoopbackServer(_app) as server:
        server.fail(Status(429, {"Retry-After": "2"}, b'{"error": "slow down"}'), Reset())
        first = _post(server, "/echo")
        assert (first.status, first.getheader("Retry-After")) == (429, "2")
        first.read()
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            _post(server, "/echo").read()
        assert _post(server, "/echo").status == 200
    assert len(server.requests) == 3


def test_a_streamed_reply_is_chunked_and_a_cut_stream_is_incomplete() -> None:
    with LoopbackServer(_app) as server:
        assert _post(server, "/stream").read().count(b"data:") == 3
        server.fail(Cut(after=1))
        with pytest.raises(http.client.IncompleteRead):
            _post(server, "/stream").read()


def test_a_delay_trips_the_client_timeout() -> None:
    with LoopbackServer(_app) as server:
        server.fail(Delay(5))
        with pytest.raises(TimeoutError):
            _post(server, "/echo", timeout=0.2)


def test_tls(tmp_path: Path) -> None:
    context, ca_file = tls_context(tmp_path)
    with LoopbackServer(_app, tls=context) as server:
        assert server.url.startswith("https://")
        port = int(server.url.rsplit(":", 1)[1])
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=str(ca_file)))
        conn.request("POST", "/echo", body=b"{}")
        assert json.loads(conn.getresponse().read()) == {"echo": {}}
