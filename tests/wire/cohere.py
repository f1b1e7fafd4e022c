"""Cohere's wire format: API v2 chat (JSON and SSE), embed, rerank, error bodies, in-band stream errors,
and the same bodies as Bedrock and SageMaker carry them for the cohere SDK's AWS clients.

``CohereApp`` answers ``POST /v2/chat``, ``/v2/embed``, ``/v2/rerank`` and ``GET /v1/models`` as
api.cohere.com (and a private or Azure AI Foundry deployment) does, ``POST /model/{id}/invoke`` as Bedrock does and
``POST /endpoints/{name}/invocations`` as SageMaker does. The cohere SDK parses leniently (missing fields
read as None, unknown stream events are skipped), so the app checks every request strictly and raises on
anything the API would reject; a drifting adapter then shows up in ``server.errors``.

The SDK's AWS clients build ``https://bedrock-runtime.{region}.amazonaws.com/...`` themselves and take no
endpoint, so tests reach this app through :class:`ConnectProxy` (``HTTPS_PROXY``, which httpx honours) and a
TLS server whose certificate names the AWS hosts (:func:`aws_tls_context`, trusted through ``SSL_CERT_FILE``).
"""

from __future__ import annotations

import json
import re
import select
import socket
import ssl
import struct
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.wire.server import Recorded, Reply, json_reply

CHAT_PATH = "/v2/chat"
EMBED_PATH = "/v2/embed"
RERANK_PATH = "/v2/rerank"
MODELS_PATH = "/v1/models"
_BEDROCK_PATH = re.compile(r"/model/(?P<model>[^/]+)/(?P<action>invoke|invoke-with-response-stream)")
_SAGEMAKER_PATH = re.compile(r"/endpoints/(?P<model>[^/]+)/(?P<action>invocations|invocations-response-stream)")
_SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>\w+)/\d{8}/(?P<region>[\w-]+)/(?P<service>[\w-]+)/aws4_request, "
)

#: Body fields of POST /v2/chat (API reference, "Chat"); the API answers 400 to any other.
CHAT_FIELDS = frozenset(
    {
        "model", "messages", "tools", "strict_tools", "documents", "citation_options", "response_format",
        "safety_mode", "max_tokens", "stop_sequences", "temperature", "seed", "frequency_penalty",
        "presence_penalty", "k", "p", "logprobs", "tool_choice", "thinking", "priority", "stream",
    }
)  # fmt: skip
EMBED_FIELDS = frozenset(
    {"model", "input_type", "texts", "images", "inputs", "max_tokens", "output_dimension", "embedding_types",
     "truncate", "priority"}
)  # fmt: skip
RERANK_FIELDS = frozenset({"model", "query", "documents", "top_n", "max_tokens_per_doc", "relevant_spans", "priority"})
INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering", "image"})
EMBEDDING_TYPES = frozenset({"float", "int8", "uint8", "binary", "ubinary", "base64"})
OUTPUT_DIMENSIONS = frozenset({256, 512, 1024, 1536})
_IMAGE_URL = re.compile(r"(https?://\S+|data:image/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]+)")
_TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: Token counts the default answer reports: billed (what the account pays) and processed (with Cohere's template).
BILLED = {"input_tokens": 11, "output_tokens": 4}
PROCESSED = {"input_tokens": 211, "output_tokens": 6}


class Rejected(ValueError):
    """A request the real API would answer with 400."""


def error_body(message: str) -> bytes:
    """Cohere's error JSON; ``message`` is where a test puts the prompt that Cohere echoes."""
    return json.dumps({"id": "2f1c0c7e-error", "message": message}).encode()


def event(body: Mapping[str, Any]) -> bytes:
    """One event of a v2 stream: the event name repeats the body's ``type``."""
    return f"event: {body['type']}\ndata: {json.dumps(body)}\n\n".encode()


def stream_error(message: str) -> bytes:
    """How Cohere reports a failure inside a started stream: message-end with finish reason ERROR and ``error``."""
    return event({"type": "message-end", "delta": {"error": message, "finish_reason": "ERROR", "usage": None}})


def vector(text: str, position: int, dimensions: int) -> list[float]:
    """The embedding the app gives ``text`` at ``position`` of the request."""
    return [float(len(text)), float(position)] + [0.5] * (dimensions - 2)


def relevance(query: str, document: str) -> float:
    """The app's relevance score: the share of the query's words found in the document."""
    words = query.lower().split()
    found = set(document.lower().split())
    return round(sum(w in found for w in words) / len(words), 4)


def pieces(text: str, count: int) -> list[str]:
    """``text`` cut into ``count`` consecutive pieces (the last takes the rest)."""
    size = max(1, len(text) // count)
    out = [text[i * size : (i + 1) * size] for i in range(count - 1)]
    return [*out, text[(count - 1) * size :]]


class CohereApp:
    """The server's answers. Tests set the attributes to script what the model says.

    ``tool_calls`` are (id, name, arguments) the model calls; ``chunks`` is how many content-delta events a
    streamed text comes in; ``usage`` is the answer's usage object (None leaves it out). With ``anonymous``
    the app is a private deployment that takes no key, else it wants a bearer token.
    """

    def __init__(
        self,
        text: str = "Hello from Cohere",
        *,
        tool_calls: Sequence[tuple[str, str, str]] = (),
        finish_reason: str | None = None,
        chunks: int = 3,
        dimensions: int = 4,
    ):
        self.text = text
        self.tool_calls = tool_calls
        self.finish_reason = finish_reason
        self.chunks = chunks
        self.dimensions = dimensions
        self.usage: Mapping[str, Any] | None = {"billed_units": BILLED, "tokens": PROCESSED}
        self.anonymous = False

    def __call__(self, request: Recorded) -> Reply:
        if request.method == "GET" and request.path == MODELS_PATH:
            return json_reply({"models": [{"name": "command-a-03-2025", "endpoints": ["chat"]}]})
        if request.method != "POST":
            raise Rejected(f"{request.method} {request.path}")
        if request.headers.get("content-type") != "application/json":
            raise Rejected(f"content-type {request.headers.get('content-type')!r}")
        body = request.json()
        aws = _BEDROCK_PATH.fullmatch(request.path) or _SAGEMAKER_PATH.fullmatch(request.path)
        if aws is not None:
            return self._aws(request, body, aws)
        authorization = request.headers.get("authorization")
        if not (self.anonymous and authorization is None) and not (authorization or "").startswith("Bearer "):
            raise Rejected(f"authorization {authorization!r}")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise Rejected("model is required")
        if request.path == CHAT_PATH:
            _check_fields(body, CHAT_FIELDS)
            stream = body.get("stream", False)
            if not isinstance(stream, bool):
                raise Rejected("stream must be a boolean")
            _check_chat(body)
            return self._stream(body) if stream else json_reply(self._chat(body))
        if request.path == EMBED_PATH:
            return json_reply(self._embed(body))
        if request.path == RERANK_PATH:
            return json_reply(self._rerank(body))
        raise Rejected(f"no such path {request.path}")

    def _aws(self, request: Recorded, body: dict[str, Any], match: re.Match[str]) -> Reply:
        """Bedrock's invoke / SageMaker's invocations: the v2 body without model and stream, SigV4-signed."""
        service = "bedrock" if match.re is _BEDROCK_PATH else "sagemaker"
        signed = _SIGV4.match(request.headers.get("authorization", ""))
        if signed is None or signed["service"] != service or "x-amz-date" not in request.headers:
            raise Rejected(f"not a SigV4 request for {service}")
        if match["action"] not in ("invoke", "invocations"):
            raise Rejected("the cohere SDK's AWS clients cannot read a v2 event stream; the adapter must not stream")
        if "model" in body or "stream" in body:
            raise Rejected("the model is in the path, never in the body")
        body = {"model": match["model"], **body}
        if "messages" in body:
            _check_fields(body, CHAT_FIELDS)
            _check_chat(body)
            answer = self._chat(body)
            billed = answer.pop("usage", None) or {}  # Bedrock counts tokens in headers, not in the body
            counts = billed.get("billed_units", {})
        elif "texts" in body:
            answer = self._embed(body)
            counts = answer.pop("meta")["billed_units"]
        else:
            if body.pop("api_version", None) != 2:
                raise Rejected("a v2 rerank on Bedrock carries api_version 2")
            answer = self._rerank(body)
            answer.pop("meta")
            counts = {}
        headers = {f"X-Amzn-Bedrock-{k.title()}-Token-Count": str(v) for k, v in _token_headers(counts).items()}
        return json_reply(answer, headers=headers)

    def _message(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.tool_calls:
            if not body.get("tools"):
                raise Rejected("the script calls tools, but the request offers none")
            return {
                "role": "assistant",
                "tool_plan": "I will call the tools.",
                "tool_calls": [
                    {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                    for i, n, a in self.tool_calls
                ],
            }
        return {"role": "assistant", "content": [{"type": "text", "text": self.text}]}

    def _finish(self) -> str:
        return self.finish_reason or ("TOOL_CALL" if self.tool_calls else "COMPLETE")

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "id": "c0ffee00-chat",
            "finish_reason": self._finish(),
            "message": self._message(body),
        }
        if self.usage is not None:
            answer["usage"] = self.usage
        return answer

    def _stream(self, body: dict[str, Any]) -> Reply:
        message = self._message(body)
        events: list[dict[str, Any]] = [
            {
                "type": "message-start",
                "id": "c0ffee00-stream",
                "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": []}},
            }
        ]
        if self.tool_calls:
            events.append({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": message["tool_plan"]}}})
            for index, (call_id, name, arguments) in enumerate(self.tool_calls):
                start = {"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                events.append({"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": start}}})
                for piece in pieces(arguments, 2):
                    delta = {"tool_calls": {"function": {"arguments": piece}}}
                    events.append({"type": "tool-call-delta", "index": index, "delta": {"message": delta}})
                events.append({"type": "tool-call-end", "index": index})
        else:
            events.append(
                {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}
            )
            for piece in pieces(self.text, self.chunks):
                events.append({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}})
            events.append({"type": "content-end", "index": 0})
        events.append({"type": "message-end", "delta": {"finish_reason": self._finish(), "usage": self.usage}})
        return Reply(200, headers={"Content-Type": "text/event-stream"}, chunks=[event(e) for e in events])

    def _embed(self, body: dict[str, Any]) -> dict[str, Any]:
        _check_fields(body, EMBED_FIELDS)
        texts = body.get("texts")
        if not isinstance(texts, list) or not texts or len(texts) > 96 or not all(isinstance(t, str) for t in texts):
            raise Rejected("texts must be 1 to 96 strings")
        if body.get("input_type") not in INPUT_TYPES:
            raise Rejected("input_type is required for embed v3 and later models")
        kinds = body.get("embedding_types", ["float"])
        if not isinstance(kinds, list) or not kinds or not set(kinds) <= EMBEDDING_TYPES:
            raise Rejected(f"embedding_types {kinds!r}")
        dimensions = body.get("output_dimension", self.dimensions)
        if "output_dimension" in body and dimensions not in OUTPUT_DIMENSIONS:
            raise Rejected(f"output_dimension {dimensions!r}")
        vectors = [vector(t, i, dimensions) for i, t in enumerate(texts)]
        return {
            "id": "c0ffee00-embed",
            "response_type": "embeddings_by_type",
            "embeddings": {kind: vectors for kind in kinds},
            "texts": texts,
            "meta": {
                "api_version": {"version": "2"},
                "billed_units": {"input_tokens": sum(len(t.split()) for t in texts)},
            },
        }

    def _rerank(self, body: dict[str, Any]) -> dict[str, Any]:
        _check_fields(body, RERANK_FIELDS)
        query, documents = body.get("query"), body.get("documents")
        if not isinstance(query, str) or not query:
            raise Rejected("query is required")
        if not isinstance(documents, list) or not documents or not all(isinstance(d, str) for d in documents):
            raise Rejected("documents must be a non-empty list of strings")
        top_n = body.get("top_n", len(documents))
        if not isinstance(top_n, int) or top_n < 1:
            raise Rejected(f"top_n {top_n!r}")
        scored = sorted(
            ({"index": i, "relevance_score": relevance(query, d)} for i, d in enumerate(documents)),
            key=lambda r: (-r["relevance_score"], r["index"]),
        )
        search_units = -(-len(documents) // 100)
        return {
            "id": "c0ffee00-rerank",
            "results": scored[:top_n],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": search_units}},
        }


def _token_headers(billed: Mapping[str, Any]) -> dict[str, int]:
    return {name: billed[f"{name}_tokens"] for name in ("input", "output") if f"{name}_tokens" in billed}


def _check_fields(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise Rejected(f"invalid request: unknown field(s) {sorted(unknown)}")


def _check_chat(body: Mapping[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Rejected("messages must be a non-empty list")
    called: set[str] = set()
    for message in messages:
        _check_message(message, called)
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not tools:
            raise Rejected("tools must be a non-empty list")
        for tool in tools:
            function = tool.get("function") if isinstance(tool, dict) else None
            if set(tool) != {"type", "function"} or tool["type"] != "function" or not isinstance(function, dict):
                raise Rejected(f"tool {tool!r}")
            _check_fields(function, frozenset({"name", "description", "parameters"}))
            if not _TOOL_NAME.fullmatch(str(function.get("name"))) or not isinstance(function.get("parameters"), dict):
                raise Rejected(f"tool function {function!r}")
    if body.get("tool_choice") not in (None, "REQUIRED", "NONE"):
        raise Rejected(f"tool_choice {body['tool_choice']!r}")
    response_format = body.get("response_format")
    if response_format is not None:
        if tools:
            raise Rejected("response_format is not supported with tools")
        if response_format.get("type") not in ("text", "json_object") or not set(response_format) <= {
            "type",
            "json_schema",
        }:
            raise Rejected(f"response_format {response_format!r}")
        if "json_schema" in response_format and not isinstance(response_format["json_schema"], dict):
            raise Rejected("json_schema must be an object")
    p = body.get("p")
    if p is not None and not (isinstance(p, (int, float)) and 0.01 <= p <= 0.99):
        raise Rejected(f"p must be between 0.01 and 0.99, got {p!r}")
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, (int, float)) and temperature >= 0):
        raise Rejected(f"temperature {temperature!r}")
    for name in ("max_tokens", "seed"):
        if name in body and not isinstance(body[name], int):
            raise Rejected(f"{name} must be an integer")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or len(stops) > 5 or not all(isinstance(s, str) for s in stops)
    ):
        raise Rejected("stop_sequences: up to 5 strings")


def _check_message(message: Any, called: set[str]) -> None:
    role = message.get("role") if isinstance(message, dict) else None
    if role == "user":
        _check_fields(message, frozenset({"role", "content"}))
        _check_content(message.get("content"), {"text", "image_url"}, allow_empty=False)
    elif role == "system":
        _check_fields(message, frozenset({"role", "content"}))
        _check_content(message.get("content"), {"text"}, allow_empty=False)
    elif role == "assistant":
        _check_fields(message, frozenset({"role", "content", "tool_calls", "tool_plan", "citations"}))
        calls = message.get("tool_calls") or []
        if "content" not in message and not calls:
            raise Rejected("an assistant message needs content or tool_calls")
        if "content" in message:
            _check_content(message["content"], {"text"}, allow_empty=True)
        for call in calls:
            function = call.get("function") or {}
            if call.get("type") != "function" or not isinstance(call.get("id"), str) or not function.get("name"):
                raise Rejected(f"tool call {call!r}")
            json.loads(function.get("arguments", ""))
            called.add(call["id"])
    elif role == "tool":
        _check_fields(message, frozenset({"role", "content", "tool_call_id"}))
        if message.get("tool_call_id") not in called:
            raise Rejected("a tool message must answer a tool call of an earlier assistant message")
        _check_content(message.get("content"), {"text", "document"}, allow_empty=False)
    else:
        raise Rejected(f"message {message!r}")


def _check_content(content: Any, kinds: set[str], *, allow_empty: bool) -> None:
    if isinstance(content, str):
        if not content and not allow_empty:
            raise Rejected("empty message content")
        return
    if not isinstance(content, list) or not (content or allow_empty):
        raise Rejected(f"content {content!r}")
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds:
            raise Rejected(f"content part of type {kind!r}")
        if kind == "text" and not (set(part) == {"type", "text"} and isinstance(part["text"], str)):
            raise Rejected(f"text part {part!r}")
        if kind == "image_url":
            url = part.get("image_url", {}).get("url") if isinstance(part.get("image_url"), dict) else None
            if set(part) != {"type", "image_url"} or not isinstance(url, str) or not _IMAGE_URL.fullmatch(url):
                raise Rejected("image_url needs a url: https or a base64 data URI")


def aws_tls_context(directory: Path, region: str) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context whose certificate names Bedrock's and SageMaker's runtime hosts in ``region``,
    and the CA file a client trusts."""
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    hosts = (f"bedrock-runtime.{region}.amazonaws.com", f"runtime.sagemaker.{region}.amazonaws.com")
    ca.issue_cert(*hosts).configure_cert(context)
    ca_file = directory / "aws-loopback-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


class ConnectProxy:
    """An HTTP CONNECT proxy that tunnels every connection to one loopback server, whatever host was asked.

    ``tunnels`` records each CONNECT target (``host:port``). A reset on one side resets the other, so a
    server-side Reset fault reaches the client as a dropped connection.
    """

    def __init__(self, upstream_url: str):
        self._upstream = ("127.0.0.1", int(upstream_url.rsplit(":", 1)[1]))
        self.tunnels: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(4096)
            if not data:
                client.close()
                return
            head += data
        head, rest = head.split(b"\r\n\r\n", 1)
        method, target = head.split(b"\r\n", 1)[0].split()[:2]
        if method != b"CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            client.close()
            return
        self.tunnels.append(target.decode())
        upstream = socket.create_connection(self._upstream)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        _pipe(client, upstream)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    peers = {a: b, b: a}
    try:
        while True:
            readable, _, _ = select.select(list(peers), [], [])
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    peer = peers[sock]
                    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if not data:
                    return
                peers[sock].sendall(data)
    except OSError:
        return
    finally:
        a.close()
        b.close()
