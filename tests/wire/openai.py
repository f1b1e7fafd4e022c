"""OpenAI's wire protocol on a loopback server: Chat Completions, Responses API and embeddings.

Serves the OpenAI paths (``/v1/...``, or any prefix: self-hosted servers and
Azure AI Foundry's ``/openai/v1/...``) and Azure OpenAI's deployment paths
(``/openai/deployments/{d}/...?api-version=``). Request bodies are checked the
way the real API checks them: an unknown field, a malformed message or a
field in the wrong place raises, which the loopback server records in
``server.errors``. Answers have every field the SDK's strict validation wants.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Iterator, Mapping
from typing import Any

from tests.wire.server import Recorded, Reply, json_reply, sse

CREATED = 1_700_000_000
#: The request id header the API sets on every answer (the SDK exposes it as ``_request_id``).
REQUEST_ID = {"x-request-id": "req_loopback"}
_JSON = {"Content-Type": "application/json"}
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_AZURE_PATH = re.compile(r"/openai/deployments/([^/]+)/(chat/completions|embeddings)")

_CHAT_FIELDS = frozenset(
    {
        "messages", "model", "audio", "frequency_penalty", "logit_bias", "logprobs", "max_completion_tokens",
        "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction", "presence_penalty",
        "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format", "safety_identifier",
        "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools",
        "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
    }
)  # fmt: skip
_RESPONSES_FIELDS = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "temperature", "top_p", "max_output_tokens", "text",
        "stream", "stream_options", "store", "metadata", "parallel_tool_calls", "previous_response_id", "reasoning",
        "truncation", "user", "include", "service_tier", "safety_identifier", "prompt_cache_key", "background",
        "prompt_cache_retention",
        "max_tool_calls", "top_logprobs",
    }
)  # fmt: skip
_OPERATIONS = ("chat/completions", "embeddings", "responses")
_EMBED_FIELDS = frozenset({"input", "model", "encoding_format", "dimensions", "user"})


class Rejected(ValueError):
    """The request has a shape the real API would refuse."""


def _require(ok: object, what: str) -> None:
    if not ok:
        raise Rejected(what)


def error_body(message: str, *, type: str = "invalid_request_error", code: str | None = None) -> bytes:
    """OpenAI's error JSON (Azure's has the same outer shape)."""
    return json.dumps({"error": {"message": message, "type": type, "param": None, "code": code}}).encode()


def content_filter_body(prompt: str, code: str | None = "content_filter") -> bytes:
    """Azure OpenAI's answer when its content filter refuses the prompt (HTTP 400).

    ``code`` is the top-level code; the refusal is also in ``innererror``, which some answers carry alone.
    """
    return json.dumps(
        {
            "error": {
                "message": f"The response was filtered: the prompt triggered the content management policy: {prompt}",
                "type": None,
                "param": "prompt",
                "code": code,
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
                },
            }
        }
    ).encode()


def stream_error_chunk(message: str, *, type: str = "server_error", code: str | None = None) -> bytes:
    """The ``data: {"error": ...}`` chunk a Chat Completions stream carries when it fails after the 200."""
    return sse({"error": {"message": message, "type": type, "param": None, "code": code}})[0]


def responses_error_event(message: str, *, code: str = "server_error", sequence_number: int = 99) -> bytes:
    """The Responses API's in-band ``error`` event."""
    event = {"type": "error", "code": code, "message": message, "param": None, "sequence_number": sequence_number}
    return sse(event, event="error")[0]


def float32_base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def vector_for(text: str, index: int, dimensions: int) -> list[float]:
    """The embedding the server gives ``text``: exact in float32, so base64 and float answers agree."""
    return [float(len(text)), float(index), *(0.5 + i for i in range(dimensions - 2))]


class OpenAIWire:
    """The app for :class:`~tests.wire.server.LoopbackServer`; attributes set what the "model" answers.

    ``key`` is the credential every request must carry: ``Authorization: Bearer``
    on OpenAI paths, and on Azure paths ``api-key`` (``entra=False``) or a Bearer
    token (``entra=True``). A request without it gets the vendor's 401.
    """

    def __init__(self, *, key: str = "sk-loopback", entra: bool = False, model: str = "gpt-4o-mini-2024-07-18"):
        self.key = key
        self.entra = entra
        self.model = model
        self.text = "Hello from the loopback server"
        self.pieces = 5  # stream the text in this many chunks
        self.tool_calls: list[tuple[str, str, str]] = [("call_1", "get_weather", '{"city": "Paris"}')]
        self.finish_reason: str | None = None  # overrides the natural one ("stop" or "tool_calls")
        self.usage = (11, 7)
        self.incomplete: str | None = None  # Responses API: answer status incomplete with this reason
        self.embedding_format: str | None = None  # answer in this format whatever the request asked
        #: Fields of its own the server takes beyond OpenAI's, as a self-hosted vLLM takes ``top_k``: it reads them
        #: and checks the rest as OpenAI's API does.
        self.own_fields: frozenset[str] = frozenset()

    # --- routing -------------------------------------------------------------------------------------------------

    def __call__(self, request: Recorded) -> Reply:
        if request.method == "GET" and request.path.endswith("/models"):
            return self._check_auth(request, azure=False) or self._models()
        _require(request.method == "POST", "only POST is served")
        azure = _AZURE_PATH.fullmatch(request.path)
        if azure or request.path == "/openai/responses":  # Azure's Responses: the body's model is a deployment
            versions = request.query.get("api-version", [])
            _require(len(versions) == 1 and re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", versions[0]), "api-version")
            denied = self._check_auth(request, azure=True)
            operation = azure.group(2) if azure else "responses"
        else:
            denied = self._check_auth(request, azure=False)
            operation = next((op for op in _OPERATIONS if request.path.endswith("/" + op)), None)
            _require(operation is not None, f"no such path {request.path}")
        if denied is not None:
            return denied
        _require(request.headers.get("content-type") == "application/json", "content-type")
        body = request.json()
        _require(isinstance(body, dict) and isinstance(body.get("model"), str) and body["model"], "model")
        body = {k: v for k, v in body.items() if k not in self.own_fields}
        if operation == "embeddings":
            return self._embeddings(body)
        if operation == "responses":
            return self._responses(body)
        return self._chat(body, azure=azure is not None)

    def _check_auth(self, request: Recorded, *, azure: bool) -> Reply | None:
        headers = request.headers
        if azure and not self.entra:
            ok = headers.get("api-key") == self.key and "authorization" not in headers
        else:
            ok = headers.get("authorization") == f"Bearer {self.key}" and "api-key" not in headers
        if ok:
            return None
        return Reply(401, error_body("Incorrect API key provided.", code="invalid_api_key"), _JSON)

    # --- Chat Completions ----------------------------------------------------------------------------------------

    def _chat(self, body: dict[str, Any], *, azure: bool) -> Reply:
        check_chat(body)
        calls = self._calls_for(body.get("tools"), body.get("tool_choice"), body["messages"][-1]["role"] == "tool")
        finish = self.finish_reason or ("tool_calls" if calls else "stop")
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if calls else self.text, "refusal": None}
            if calls:
                message["tool_calls"] = [
                    {"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in calls
                ]
            choices = [
                {"index": n, "message": message, "finish_reason": finish, "logprobs": None}
                for n in range(body.get("n") or 1)
            ]
            return json_reply(self._completion("chat.completion", choices, usage=True), headers=REQUEST_ID)
        chunks: list[dict[str, Any]] = []
        if azure:  # Azure opens every stream with a chunk that has only the prompt's filter results
            chunks.append(
                {**self._completion("chat.completion.chunk", [], usage=False), "model": "", "prompt_filter_results": []}
            )
        chunks.append(self._chunk({"role": "assistant", "content": ""}))
        if calls:
            for n, (call_id, name, arguments) in enumerate(calls):
                head = {"index": n, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                chunks.append(self._chunk({"tool_calls": [head]}))
                for piece in _split(arguments, 2):
                    chunks.append(self._chunk({"tool_calls": [{"index": n, "function": {"arguments": piece}}]}))
        else:
            chunks.extend(self._chunk({"content": piece}) for piece in _split(self.text, self.pieces))
        chunks.append(self._chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            # Every chunk but the last then has "usage": null, as OpenAI's do.
            chunks = [{**chunk, "usage": None} for chunk in chunks]
            chunks.append(self._completion("chat.completion.chunk", [], usage=True))
        # OpenAI sends each event as compact JSON.
        events = (json.dumps(chunk, separators=(",", ":")) for chunk in chunks)
        return Reply(200, headers={"Content-Type": "text/event-stream"}, chunks=sse(*events, "[DONE]"))

    def _calls_for(self, tools: Any, choice: Any, answering_tool: bool) -> list[tuple[str, str, str]]:
        """Call a tool when tools are offered, unless told not to or answering a tool's result.

        A ``tool_choice`` naming one function (``{"type": "function", ...}``) calls that one only.
        """
        if not tools or choice == "none" or (answering_tool and choice != "required"):
            return []
        names = {t["function"]["name"] if "function" in t else t["name"] for t in tools}
        if isinstance(choice, dict):
            names &= {choice["function"]["name"] if "function" in choice else choice["name"]}
        return [c for c in self.tool_calls if c[1] in names]

    def _completion(self, obj: str, choices: list[dict[str, Any]], *, usage: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": "chatcmpl-loopback",
            "object": obj,
            "created": CREATED,
            "model": self.model,
            "system_fingerprint": "fp_loopback",
            "choices": choices,
        }
        if usage:
            p, c = self.usage
            out["usage"] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        return out

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return self._completion("chat.completion.chunk", [choice], usage=False)

    # --- Responses API -------------------------------------------------------------------------------------------

    def _responses(self, body: dict[str, Any]) -> Reply:
        check_responses(body)
        last = body["input"][-1] if isinstance(body["input"], list) else {}
        calls = self._calls_for(body.get("tools"), body.get("tool_choice"), last.get("type") == "function_call_output")
        output: list[dict[str, Any]] = [
            {
                "type": "function_call",
                "id": f"fc_{n}",
                "call_id": i,
                "name": name,
                "arguments": a,
                "status": "completed",
            }
            for n, (i, name, a) in enumerate(calls)
        ]
        if not calls:
            text = {"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}
            output.append(
                {"type": "message", "id": "msg_0", "role": "assistant", "status": "completed", "content": [text]}
            )
        final = self._response(body, output, "incomplete" if self.incomplete else "completed")
        if not body.get("stream"):
            return json_reply(final, headers=REQUEST_ID)
        return Reply(200, headers={"Content-Type": "text/event-stream"}, chunks=list(self._events(body, final)))

    def _response(self, body: dict[str, Any], output: list[dict[str, Any]], status: str) -> dict[str, Any]:
        p, c = self.usage
        return {
            "id": "resp_loopback",
            "object": "response",
            "created_at": CREATED,
            "status": status,
            "error": None,
            "incomplete_details": {"reason": self.incomplete} if self.incomplete else None,
            "instructions": None,
            "max_output_tokens": body.get("max_output_tokens"),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": True,
            "temperature": body.get("temperature", 1.0),
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_p": body.get("top_p", 1.0),
            "store": body.get("store", True),
            "usage": {
                "input_tokens": p,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": c,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": p + c,
            },
        }

    def responses_failed_event(self, message: str, *, code: str = "server_error") -> bytes:
        """The Responses API's ``response.failed`` event, which ends a stream whose response failed."""
        failed = {**self._response({}, [], "failed"), "error": {"code": code, "message": message}}
        event = {"type": "response.failed", "sequence_number": 99, "response": failed}
        return sse(event, event="response.failed")[0]

    def _events(self, body: dict[str, Any], final: dict[str, Any]) -> Iterator[bytes]:
        seq = iter(range(1_000_000))

        def event(kind: str, **fields: Any) -> bytes:
            return sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind)[0]

        started = {**self._response(body, [], "in_progress"), "usage": None}
        yield event("response.created", response=started)
        yield event("response.in_progress", response=started)
        for n, item in enumerate(final["output"]):
            if item["type"] == "function_call":
                yield event("response.output_item.added", output_index=n, item={**item, "arguments": ""})
                for piece in _split(item["arguments"], 2):
                    yield event(
                        "response.function_call_arguments.delta", item_id=item["id"], output_index=n, delta=piece
                    )
                yield event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=n,
                    arguments=item["arguments"],
                    name=item["name"],
                )
            else:
                yield event("response.output_item.added", output_index=n, item={**item, "content": []})
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                yield event(
                    "response.content_part.added", item_id=item["id"], output_index=n, content_index=0, part=part
                )
                for piece in _split(self.text, self.pieces):
                    yield event(
                        "response.output_text.delta",
                        item_id=item["id"],
                        output_index=n,
                        content_index=0,
                        delta=piece,
                        logprobs=[],
                    )
                yield event(
                    "response.output_text.done",
                    item_id=item["id"],
                    output_index=n,
                    content_index=0,
                    text=self.text,
                    logprobs=[],
                )
            yield event("response.output_item.done", output_index=n, item=item)
        yield event("response.incomplete" if self.incomplete else "response.completed", response=final)

    # --- model listing -------------------------------------------------------------------------------------------

    def _models(self) -> Reply:
        model = {"id": self.model, "object": "model", "created": CREATED, "owned_by": "system"}
        return json_reply({"object": "list", "data": [model]}, headers=REQUEST_ID)

    # --- embeddings ----------------------------------------------------------------------------------------------

    def _embeddings(self, body: dict[str, Any]) -> Reply:
        check_embeddings(body)
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        dims = body.get("dimensions", 4)
        as_base64 = (self.embedding_format or body.get("encoding_format")) == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": float32_base64(v) if as_base64 else v,
            }
            for i, v in ((i, vector_for(t, i, dims)) for i, t in enumerate(texts))
        ]
        p = self.usage[0]
        return json_reply(
            {"object": "list", "data": data, "model": self.model, "usage": {"prompt_tokens": p, "total_tokens": p}}
        )


def _split(text: str, pieces: int) -> list[str]:
    """``text`` in ``pieces`` non-empty parts (fewer if it is shorter)."""
    size = max(1, -(-len(text) // max(1, pieces)))
    return [text[i : i + size] for i in range(0, len(text), size)]


# --- request checks, as the real API applies them --------------------------------------------------------------------


def _check_fields(body: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = set(body) - allowed
    _require(not unknown, f"{what}: unrecognized request arguments {sorted(unknown)}")


def _check_image_url(url: Any) -> None:
    _require(isinstance(url, str) and re.match(r"(https?://|data:image/[a-z]+;base64,)", url), "image url")


def _check_json_schema_format(fmt: Mapping[str, Any], *, nested: bool) -> None:
    kind = fmt.get("type")
    _require(kind in ("text", "json_object", "json_schema"), "response format type")
    if kind == "json_schema":
        spec = fmt.get("json_schema") if nested else fmt
        if not isinstance(spec, Mapping):
            raise Rejected("json_schema")
        _require(isinstance(spec.get("name"), str) and isinstance(spec.get("schema"), Mapping), "json_schema shape")


def _check_tool_choice(choice: Any, names: set[str], *, nested: bool) -> None:
    """A mode, or one named function: ``{"type": "function", "function": {"name"}}`` (Responses: ``"name"`` flat)."""
    if isinstance(choice, dict):
        named = choice.get("function", {}).get("name") if nested else choice.get("name")
        _require(choice.get("type") == "function" and named in names, "tool_choice names an offered function")
    else:
        _require(choice in ("none", "auto", "required"), "tool_choice")


def check_chat(body: Mapping[str, Any]) -> None:
    _check_fields(body, _CHAT_FIELDS, "chat")
    messages = body.get("messages")
    if not (isinstance(messages, list) and messages):
        raise Rejected("messages")
    called: set[str] = set()
    for m in messages:
        role = m.get("role")
        content = m.get("content")
        if role == "user":
            _require(isinstance(content, str) or (isinstance(content, list) and content), "user content")
            for part in content if isinstance(content, list) else ():
                if part.get("type") == "image_url":
                    _check_image_url(part.get("image_url", {}).get("url"))
                else:
                    _require(part.get("type") == "text" and isinstance(part.get("text"), str), "user part")
        elif role in ("system", "developer"):
            _require(isinstance(content, str), f"{role} content")
        elif role == "assistant":
            calls = m.get("tool_calls")
            _require(isinstance(content, str) or calls, "assistant content or tool_calls")
            for call in calls or ():
                fn = call.get("function", {})
                _require(call.get("type") == "function" and isinstance(call.get("id"), str), "tool call")
                _require(isinstance(fn.get("name"), str) and isinstance(fn.get("arguments"), str), "tool call function")
                called.add(call["id"])
        elif role == "tool":
            _require(m.get("tool_call_id") in called, "a tool message must answer an earlier assistant tool call")
            _require(isinstance(content, str), "tool content")
        else:
            raise Rejected(f"role {role!r}")
    tools = body.get("tools")
    for tool in tools or ():
        fn = tool.get("function", {})
        _require(tool.get("type") == "function" and _TOOL_NAME.fullmatch(fn.get("name", "")), "tool")
        _require(set(fn) <= {"name", "description", "parameters", "strict"}, "tool function fields")
    if "tool_choice" in body:
        _require(tools, "tool_choice is only allowed when tools are specified")
        _check_tool_choice(body["tool_choice"], {t["function"]["name"] for t in tools or ()}, nested=True)
    _require("stream_options" not in body or body.get("stream") is True, "stream_options needs stream")
    _require(body.get("n", 1) == 1 or (isinstance(body["n"], int) and 1 <= body["n"] <= 128), "n")
    _require(not ("max_tokens" in body and "max_completion_tokens" in body), "max_tokens with max_completion_tokens")
    if "temperature" in body:
        _require(0 <= body["temperature"] <= 2, "temperature")
    if "top_p" in body:
        _require(0 <= body["top_p"] <= 1, "top_p")
    if "stop" in body:
        stop = body["stop"]
        _require(isinstance(stop, str) or (isinstance(stop, list) and len(stop) <= 4), "stop")
    if "response_format" in body:
        fmt = body["response_format"]
        _check_json_schema_format(fmt, nested=True)
        if fmt["type"] == "json_object":
            text = json.dumps(messages).lower()
            _require("json" in text, "'messages' must contain the word 'json' to use response_format json_object")


def check_responses(body: Mapping[str, Any]) -> None:
    _check_fields(body, _RESPONSES_FIELDS, "responses")
    items = body.get("input")
    _require(isinstance(items, str) or (isinstance(items, list) and items), "input")
    called: set[str] = set()
    for item in items if isinstance(items, list) else ():
        kind = item.get("type", "message")
        if kind == "message":
            role, content = item.get("role"), item.get("content")
            _require(role in ("user", "assistant", "system", "developer"), "message role")
            for part in content if isinstance(content, list) else ():
                if part.get("type") == "input_image":
                    _check_image_url(part.get("image_url"))
                    _require(part.get("detail") in ("low", "high", "auto", "original"), "input_image detail")
                else:
                    _require(part.get("type") == "input_text" and isinstance(part.get("text"), str), "input part")
            _require(isinstance(content, (str, list)), "message content")
        elif kind == "function_call":
            _require(all(isinstance(item.get(k), str) for k in ("call_id", "name", "arguments")), "function_call")
            called.add(item["call_id"])
        elif kind == "function_call_output":
            _require(item.get("call_id") in called, "function_call_output for an unknown call")
            _require(isinstance(item.get("output"), str), "function_call_output output")
        else:
            raise Rejected(f"input item type {kind!r}")
    for tool in body.get("tools") or ():
        _require(tool.get("type") == "function" and _TOOL_NAME.fullmatch(tool.get("name", "")), "tool")
        _require("strict" in tool and "parameters" in tool, "function tools need strict and parameters")
    if "tool_choice" in body:
        names = {t["name"] for t in body.get("tools") or ()}
        _check_tool_choice(body["tool_choice"], names, nested=False)
    _require("stream_options" not in body or body.get("stream") is True, "stream_options needs stream")
    if "text" in body:
        _check_json_schema_format(body["text"].get("format", {}), nested=False)


def check_embeddings(body: Mapping[str, Any]) -> None:
    _check_fields(body, _EMBED_FIELDS, "embeddings")
    texts = body.get("input")
    _require(isinstance(texts, str) or (isinstance(texts, list) and 0 < len(texts) <= 2048), "input")
    _require(all(isinstance(t, str) and t for t in (texts if isinstance(texts, list) else [texts])), "input texts")
    _require(body.get("encoding_format", "float") in ("float", "base64"), "encoding_format")
    if "dimensions" in body:
        _require(isinstance(body["dimensions"], int) and body["dimensions"] >= 2, "dimensions")
