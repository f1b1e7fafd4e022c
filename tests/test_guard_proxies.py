"""A request is judged by its URL, so it must not reach a proxy that can read it: such a request is refused.

The real SDKs (openai on httpx2, cohere on httpx, boto3 and aiobotocore) send over real HTTP on loopback, to the
wire servers of ``tests/wire`` declared as the endpoints, through :class:`RecordingProxy`, which keeps every byte
it receives. A proxy reads a plain http request (forwarded whole by an HTTP proxy, relayed as raw bytes by a
SOCKS one), and an https request botocore forwards to an https proxy (``proxy_use_forwarding_for_https``): each is
refused before a byte reaches the proxy, leaves a usage record, and the message names the proxy without its user
info. An https request tunnelled through the proxy (CONNECT, the SDKs' default) is encrypted end to end and is
sent as before.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiobotocore.session
import pytest
from aiobotocore.config import AioConfig
from botocore.config import Config
from botocore.exceptions import ClientError

import privsdk
import privsdk.boto3 as pboto3
import privsdk.cohere
import privsdk.mistralai
from privsdk import openai as dropin
from privsdk.outbound.judge import Guard
from tests.guard_support import records
from tests.wire.bedrock import BedrockWire
from tests.wire.cohere import CohereApp
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer, tls_context

PROMPT = "my secret diagnosis is flu"
KEY = "sk-proxied"
PROXY_USER, PROXY_PASSWORD = "proxyuser", "proxy-pass-0451"
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
BEDROCK_MESSAGES = [{"role": "user", "content": [{"text": PROMPT}]}]
AWS_KEYS = {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "fake-secret"}
ONE_ATTEMPT: dict[str, Any] = {"retries": {"total_max_attempts": 1, "mode": "standard"}, "connect_timeout": 2}
#: What the proxy answers a request it was handed to forward, as the vendor would: had the guard let one through,
#: the SDK would take it for the vendor's answer, and the test would see the bytes the proxy kept.
FORWARDED_ANSWER = json.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
).encode()
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class RecordingProxy:
    """A loopback proxy that keeps every byte it receives, in ``received``.

    A CONNECT, or a SOCKS5 connection, is tunnelled to ``upstream`` (host:port), as an HTTP proxy does for https.
    A request in absolute form (a forwarded one) is answered with :data:`FORWARDED_ANSWER`. Anything else (a TLS
    ClientHello to an https proxy) is kept and the connection closed: the client fails to connect.
    """

    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = upstream
        self.received = bytearray()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, scheme: str = "http", *, user: bool = True) -> str:
        """The proxy's URL, with a user and password unless ``user`` is False."""
        info = f"{PROXY_USER}:{PROXY_PASSWORD}@" if user else ""
        return f"{scheme}://{info}127.0.0.1:{self.port}"

    def close(self) -> None:
        self._listener.close()

    def _keep(self, data: bytes) -> None:
        with self._lock:
            self.received += data

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            head = self._recv(conn)
            if head[:1] == b"\x05":
                self._socks5(conn)
                return
            if not head[:1].isalpha():  # not HTTP: a TLS handshake to an https proxy
                return
            while b"\r\n\r\n" not in head:
                data = self._recv(conn)
                if not data:
                    return
                head += data
            if head.startswith(b"CONNECT ") and self.upstream is not None:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pipe(conn, head.partition(b"\r\n\r\n")[2])
                return
            answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            conn.sendall(answer + b"Content-Length: %d\r\n\r\n%s" % (len(FORWARDED_ANSWER), FORWARDED_ANSWER))
        except OSError:
            return
        finally:
            conn.close()

    def _recv(self, conn: socket.socket) -> bytes:
        data = conn.recv(65536)
        self._keep(data)
        return data

    def _socks5(self, conn: socket.socket) -> None:
        """After the client's greeting: its user and password (RFC 1929) taken as they come, then its CONNECT,
        tunnelled to ``upstream`` whatever address it names (each message comes in one packet on loopback)."""
        if self.upstream is None:
            conn.sendall(b"\x05\xff")  # no acceptable method
            return
        conn.sendall(b"\x05\x02")  # user and password
        self._recv(conn)
        conn.sendall(b"\x01\x00")
        self._recv(conn)  # CONNECT ADDRESS PORT
        conn.sendall(b"\x05\x00\x00\x01" + bytes(6))
        self._pipe(conn, b"")

    def _pipe(self, client: socket.socket, early: bytes) -> None:
        """Relay to ``upstream`` and back until either side closes, keeping what the client sends (TLS records,
        for https)."""
        assert self.upstream is not None
        host, _, port = self.upstream.rpartition(":")
        upstream = socket.create_connection((host, int(port)))
        if early:
            upstream.sendall(early)
        peers = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 5)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        self._keep(data)
                    peers[sock].sendall(data)
        finally:
            upstream.close()


@pytest.fixture(autouse=True)
def _no_machine_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the proxies a test sets: none of the machine's."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    recording = RecordingProxy()
    yield recording
    recording.close()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1, and the CA file that clients trust."""
    return tls_context(tmp_path_factory.mktemp("tls"))


def usage_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str) -> Path:
    """Declare ``endpoint`` (URL=OFFERING) with no requirement, so every request is allowed; the usage file."""
    path = tmp_path / "usage.jsonl"
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", endpoint)
    monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{path}")
    Guard.reset_default()
    return path


def assert_refused_for_proxy(error: BaseException, proxy: RecordingProxy, usage: Path, *, scheme: str = "http") -> None:
    """``error`` is privsdk's refusal naming the proxy (never its user info), nothing reached the proxy, and the
    refusal was recorded."""
    message = str(error)
    assert isinstance(error, privsdk.PolicyViolation)
    assert f"would be sent through the proxy {scheme}://127.0.0.1:{proxy.port}" in message
    assert PROXY_USER not in message and PROXY_PASSWORD not in message and PROMPT not in message
    assert proxy.received == b""
    (record,) = records(usage)
    assert (record["outcome"], record["decision"]) == ("refused", "refuse")
    assert PROXY_PASSWORD not in json.dumps(record) and PROMPT not in json.dumps(record)


# -- openai (httpx2) and cohere (httpx) ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openai_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(OpenAIWire(key=KEY)) as running:
        yield running


@pytest.fixture(scope="module")
def openai_tls_server(ca: tuple[ssl.SSLContext, Path]) -> Iterator[LoopbackServer]:
    with LoopbackServer(OpenAIWire(key=KEY), tls=ca[0]) as running:
        yield running


def chat(client: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY", "all_proxy"])
def test_openai_plain_http_through_an_environment_proxy_is_refused_before_a_byte(
    openai_server: LoopbackServer,
    proxy: RecordingProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    openai_server.requests.clear()
    usage = usage_env(monkeypatch, tmp_path, f"{openai_server.url}/v1=openai.api")
    monkeypatch.setenv(variable, proxy.url())
    client = dropin.OpenAI(api_key=KEY, base_url=f"{openai_server.url}/v1", max_retries=2)
    with pytest.raises(dropin.PolicyViolation) as caught:
        chat(client)
    assert_refused_for_proxy(caught.value, proxy, usage)
    assert "exclude 127.0.0.1 from the proxy (NO_PROXY" in str(caught.value)
    assert openai_server.requests == []


def test_openai_async_client_with_a_proxy_refuses_plain_http_and_no_proxy_sends_it_direct(
    openai_server: LoopbackServer, proxy: RecordingProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai_server.requests.clear()
    usage = usage_env(monkeypatch, tmp_path, f"{openai_server.url}/v1=openai.api")

    async def call() -> Any:
        http = dropin.DefaultAsyncHttpxClient(proxy=proxy.url())
        async with dropin.AsyncOpenAI(api_key=KEY, base_url=f"{openai_server.url}/v1", http_client=http) as client:
            return await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}]
            )

    with pytest.raises(dropin.PolicyViolation) as caught:
        asyncio.run(call())
    assert_refused_for_proxy(caught.value, proxy, usage)
    assert openai_server.requests == []
    # The fix the message names: the host left out of the proxy (httpx reads NO_PROXY as it builds its client).
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with dropin.OpenAI(api_key=KEY, base_url=f"{openai_server.url}/v1", max_retries=0) as direct:
        assert chat(direct).choices[0].message.content
    assert len(openai_server.requests) == 1 and proxy.received == b""


def test_openai_https_through_a_connect_proxy_is_sent_encrypted_end_to_end(
    openai_tls_server: LoopbackServer,
    ca: tuple[ssl.SSLContext, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    openai_tls_server.requests.clear()
    usage = usage_env(monkeypatch, tmp_path, f"{openai_tls_server.url}/v1=openai.api")
    tunnel = RecordingProxy(upstream=openai_tls_server.url.partition("://")[2])
    try:
        http = dropin.DefaultHttpxClient(proxy=tunnel.url(), verify=ssl.create_default_context(cafile=str(ca[1])))
        with dropin.OpenAI(
            api_key=KEY, base_url=f"{openai_tls_server.url}/v1", http_client=http, max_retries=0
        ) as client:
            assert chat(client).choices[0].message.content
    finally:
        tunnel.close()
    assert [r.path for r in openai_tls_server.requests] == ["/v1/chat/completions"]
    assert tunnel.received.startswith(f"CONNECT 127.0.0.1:{openai_tls_server.url.rpartition(':')[2]} ".encode())
    assert PROMPT.encode() not in tunnel.received and KEY.encode() not in tunnel.received  # ciphertext only
    assert [(r["outcome"], r["decision"]) for r in records(usage)] == [("ok", "allow")]


def test_cohere_plain_http_through_an_environment_proxy_is_refused_before_a_byte(
    proxy: RecordingProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer(CohereApp()) as server:
        usage = usage_env(monkeypatch, tmp_path, f"{server.url}=cohere.saas")
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        client = privsdk.cohere.ClientV2(api_key="co-key", base_url=server.url)
        with pytest.raises(privsdk.PolicyViolation) as caught:
            client.chat(model="command-a-03-2025", messages=[{"role": "user", "content": PROMPT}])
        assert server.requests == []
    assert_refused_for_proxy(caught.value, proxy, usage)


@pytest.mark.parametrize("sdk", ["cohere", "mistralai"])
def test_async_clients_whose_transports_mind_the_event_loop_refuse_plain_http_through_a_proxy(
    proxy: RecordingProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sdk: str
) -> None:
    """The async cohere and mistralai clients' transports are wrapped to mind the event loop (loops.LoopSafe)
    before the guard's: the guard looked for the proxy on that wrapper, found none, and sent the prompt, the API
    key and the proxy's credentials to the proxy in plain text."""
    from tests.wire.mistral import MistralApp

    app, offering = (CohereApp(), "cohere.saas") if sdk == "cohere" else (MistralApp(), "mistral.api")
    with LoopbackServer(app) as server:
        usage = usage_env(monkeypatch, tmp_path, f"{server.url}={offering}")
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        messages: Any = [{"role": "user", "content": PROMPT}]
        if sdk == "cohere":
            cohere_client = privsdk.cohere.AsyncClientV2(api_key="co-key", base_url=server.url)
            call = cohere_client.chat(model="command-a-03-2025", messages=messages)
        else:
            mistral_client = privsdk.mistralai.Mistral(api_key="mi-key", server_url=server.url)
            call = mistral_client.chat.complete_async(model="mistral-large-latest", messages=messages)
        with pytest.raises(privsdk.PolicyViolation) as caught:
            asyncio.run(call)
        assert server.requests == []
    assert_refused_for_proxy(caught.value, proxy, usage)


def test_a_socks_proxy_refuses_plain_http_and_lets_https_through(
    openai_server: LoopbackServer,
    openai_tls_server: LoopbackServer,
    ca: tuple[ssl.SSLContext, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A SOCKS proxy relays raw bytes: plain http is the prompt in clear, https is TLS from the client to the
    server."""
    pytest.importorskip("socksio", reason="httpx's SOCKS proxies need socksio (httpx[socks])")
    openai_server.requests.clear()
    openai_tls_server.requests.clear()
    usage = usage_env(monkeypatch, tmp_path, f"{openai_server.url}/v1=openai.api,{openai_tls_server.url}/v1=openai.api")
    socks = RecordingProxy(upstream=openai_tls_server.url.partition("://")[2])
    try:
        monkeypatch.setenv("ALL_PROXY", socks.url("socks5"))
        with pytest.raises(dropin.PolicyViolation) as caught:
            chat(dropin.OpenAI(api_key=KEY, base_url=f"{openai_server.url}/v1", max_retries=0))
        assert_refused_for_proxy(caught.value, socks, usage, scheme="socks5")
        verify = ssl.create_default_context(cafile=str(ca[1]))
        http = dropin.DefaultHttpxClient(verify=verify)  # the proxy from ALL_PROXY, as httpx reads it
        url = f"{openai_tls_server.url}/v1"
        with dropin.OpenAI(api_key=KEY, base_url=url, http_client=http, max_retries=0) as client:
            assert chat(client).choices[0].message.content
    finally:
        socks.close()
    assert openai_server.requests == [] and len(openai_tls_server.requests) == 1
    assert socks.received.startswith(b"\x05") and PROMPT.encode() not in socks.received  # ciphertext only
    assert [(r["outcome"], r["decision"]) for r in records(usage)] == [("refused", "refuse"), ("ok", "allow")]


# -- boto3 (botocore's urllib3 session) and aiobotocore ------------------------------------------------------------


@pytest.fixture(scope="module")
def bedrock() -> Iterator[LoopbackServer]:
    with LoopbackServer(BedrockWire()) as running:
        yield running


@pytest.fixture(scope="module")
def bedrock_tls(ca: tuple[ssl.SSLContext, Path]) -> Iterator[LoopbackServer]:
    with LoopbackServer(BedrockWire(), tls=ca[0]) as running:
        yield running


def converse(client: Any) -> Any:
    return client.converse(modelId=CLAUDE, messages=BEDROCK_MESSAGES)


def tls_bedrock_client(server: LoopbackServer, ca_file: Path, config: Config) -> Any:
    """A drop-in bedrock-runtime client of the TLS loopback Bedrock, trusting its CA."""
    return pboto3.client(
        "bedrock-runtime", region_name="eu-central-1", endpoint_url=server.url, verify=str(ca_file), config=config,
        **AWS_KEYS,
    )  # fmt: skip


@pytest.mark.usefixtures("no_machine_aws")
@pytest.mark.parametrize("how", ["config", "environment"])
def test_boto3_plain_http_through_a_proxy_is_refused_before_a_byte(
    bedrock: LoopbackServer, proxy: RecordingProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    bedrock.requests.clear()
    usage = usage_env(monkeypatch, tmp_path, f"{bedrock.url}=bedrock.runtime")
    if how == "config":
        config = Config(proxies={"http": proxy.url()}, **ONE_ATTEMPT)
    else:  # botocore reads HTTP_PROXY as it makes the client
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        config = Config(**ONE_ATTEMPT)
    client = pboto3.client(
        "bedrock-runtime", region_name="eu-central-1", endpoint_url=bedrock.url, config=config, **AWS_KEYS
    )
    with pytest.raises(ClientError) as caught:
        converse(client)
    assert isinstance(caught.value, pboto3.PolicyViolation)
    assert_refused_for_proxy(caught.value, proxy, usage)
    assert bedrock.requests == []


@pytest.mark.usefixtures("no_machine_aws")
def test_boto3_https_forwarded_by_an_https_proxy_is_refused_before_a_byte(
    bedrock_tls: LoopbackServer,
    ca: tuple[ssl.SSLContext, Path],
    proxy: RecordingProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``proxy_use_forwarding_for_https``: TLS to the proxy, which reads the request and forwards it."""
    bedrock_tls.requests.clear()
    usage = usage_env(monkeypatch, tmp_path, f"{bedrock_tls.url}=bedrock.runtime")
    config = Config(
        proxies={"https": proxy.url("https")},
        proxies_config={"proxy_use_forwarding_for_https": True, "proxy_ca_bundle": str(ca[1])},
        **ONE_ATTEMPT,
    )
    client = tls_bedrock_client(bedrock_tls, ca[1], config)
    with pytest.raises(ClientError) as caught:
        converse(client)
    assert_refused_for_proxy(caught.value, proxy, usage, scheme="https")
    assert "turn proxy_use_forwarding_for_https off" in str(caught.value)
    assert bedrock_tls.requests == []


@pytest.mark.usefixtures("no_machine_aws")
def test_boto3_https_through_a_connect_proxy_is_sent_encrypted_end_to_end(
    bedrock_tls: LoopbackServer, ca: tuple[ssl.SSLContext, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bedrock_tls.requests.clear()
    usage = usage_env(monkeypatch, tmp_path, f"{bedrock_tls.url}=bedrock.runtime")
    tunnel = RecordingProxy(upstream=bedrock_tls.url.partition("://")[2])
    try:
        config = Config(proxies={"https": tunnel.url()}, **ONE_ATTEMPT)
        client = tls_bedrock_client(bedrock_tls, ca[1], config)
        assert converse(client)["output"]["message"]["content"][0]["text"]
        client.close()
    finally:
        tunnel.close()
    assert len(bedrock_tls.requests) == 1
    assert tunnel.received.startswith(b"CONNECT 127.0.0.1:")
    assert PROMPT.encode() not in tunnel.received  # ciphertext only
    assert [(r["outcome"], r["decision"]) for r in records(usage)] == [("ok", "allow")]


@pytest.mark.usefixtures("no_machine_aws")
def test_boto3_https_through_an_https_proxy_without_forwarding_is_not_refused(
    bedrock_tls: LoopbackServer,
    ca: tuple[ssl.SSLContext, Path],
    proxy: RecordingProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An https proxy tunnels https (TLS inside the TLS to the proxy): the guard lets it go. This proxy only keeps
    the client's TLS handshake and hangs up, so the request fails to connect, as botocore's own error."""
    usage = usage_env(monkeypatch, tmp_path, f"{bedrock_tls.url}=bedrock.runtime")
    proxies_config = {"proxy_ca_bundle": str(ca[1])}
    config = Config(proxies={"https": proxy.url("https")}, proxies_config=proxies_config, **ONE_ATTEMPT)
    client = tls_bedrock_client(bedrock_tls, ca[1], config)
    with pytest.raises(Exception) as caught:
        converse(client)
    client.close()
    assert not isinstance(caught.value, privsdk.PolicyViolation)
    assert proxy.received.startswith(b"\x16")  # a TLS handshake to the proxy, no request in clear
    assert PROMPT.encode() not in proxy.received
    assert [r["outcome"] for r in records(usage)] == ["error"]


@pytest.mark.usefixtures("no_machine_aws")
def test_aiobotocore_plain_http_through_a_proxy_is_refused_before_a_byte(
    bedrock: LoopbackServer, proxy: RecordingProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bedrock.requests.clear()
    usage = usage_env(monkeypatch, tmp_path, f"{bedrock.url}=bedrock.runtime")

    async def call() -> BaseException:
        config = AioConfig(proxies={"http": proxy.url()}, **ONE_ATTEMPT)
        session = aiobotocore.session.get_session()
        async with session.create_client(
            "bedrock-runtime", region_name="eu-central-1", endpoint_url=bedrock.url, config=config, **AWS_KEYS
        ) as client:
            privsdk.guard(client)
            with pytest.raises(ClientError) as caught:
                await converse(client)
            error: BaseException = caught.value
            return error

    assert_refused_for_proxy(asyncio.run(call()), proxy, usage)
    assert bedrock.requests == []
