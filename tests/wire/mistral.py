"""Mistral's wire format: chat completions (JSON and SSE), embeddings, error bodies, in-band stream errors.

``MistralApp`` answers ``POST /v1/chat/completions``, ``/v1/embeddings`` and ``GET /v1/models`` as la Plateforme
does, and ``POST /models/chat/completions?api-version=...`` as a Mistral model on Azure AI Foundry does. It checks
each request the way the real API does and raises on anything the API would reject (422 for unknown
fields, 400 for tool call ids that are not 9 alphanumerics or a conversation that ends on the wrong
role), so a drifting adapter shows up in ``server.errors``. Answers carry every field the SDK's strict
models require (id, object, model, created, usage, choices).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tests.wire.server import Recorded, Reply, json_reply, sse

CHAT_PATH = "/v1/chat/completions"
EMBED_PATH = "/v1/embeddings"
AZURE_CHAT_PATH = "/models/chat/completions"
MODELS_PATH = "/v1/models"
#: The one model GET /v1/models lists.
MODEL_ID = "mistral-large-latest"
CREATED = 1_767_225_600

#: Body fields the chat endpoint takes (the API answers 422 "Extra inputs are not permitted" to others).
CHAT_FIELDS = frozenset(
    {
        "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed", "metadata",
        "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "n", "prediction",
        "parallel_tool_calls", "reasoning_effort", "prompt_mode", "guardrails", "prompt_cache_key", "service_tier",
        "safe_prompt", "min_tokens", "repetition_penalty", "top_k", "logprobs", "top_logprobs", "prompt_logprobs",
        "top_prompt_logprobs",
    }
)  # fmt: skip
EMBED_FIELDS = frozenset({"model", "input", "metadata", "output_dimension", "output_dtype", "encoding_format"})
_TOOL_CALL_ID = re.compile(r"[A-Za-z0-9]{9}")
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_IMAGE_URL = re.compile(r"(https?://\S+|data:image/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]+)")


def error_body(message: str, type: str = "invalid_request_error", code: str | None = None) -> bytes:
    """Mistral's error JSON (docs: "Error glossary"); ``message`` is where a test puts the prompt it echoes."""
    return json.dumps({"object": "error", "message": message, "type": type, "param": None, "code": code}).encode()


def guardrail_body(prompt: str) -> bytes:
    """The 403 body of a request that a custom guardrail (``guardrails`` in the request) blocked."""
    results = {"moderation_llm_v2": {"input": prompt, "categories": {"selfharm": True}, "scores": {"selfharm": 0.97}}}
    return json.dumps(
        {"error": {"message": f"Content blocked by guardrail: {prompt}", "status": 403}, "guardrails": results}
    ).encode()


def stream_error(message: str, type: str = "service_unavailable", code: str | None = None) -> bytes:
    """An error reported inside a 200 event stream, as a ``data:`` event holding Mistral's error object."""
    return b"".join(sse(json.loads(error_body(message, type, code)), "[DONE]"))


class MistralApp:
    """The server's answers. Tests set the fields to script what the model says.

    ``tool_calls`` are (id, name, arguments) the model calls; ``chunks`` is how many pieces a streamed text
    comes in; ``usage`` is (prompt_tokens, completion_tokens); embeddings have ``dimensions`` floats unless
    the request asks for ``output_dimension``.
    """

    def __init__(
        self,
        text: str = "Bonjour from Mistral",
        *,
        tool_calls: Sequence[tuple[str, str, str]] = (),
        finish_reason: str = "stop",
        usage: tuple[int, int] = (12, 5),
        chunks: int = 3,
        dimensions: int = 4,
    ):
        self.text = text
        self.tool_calls = tool_calls
        self.finish_reason = finish_reason
        self.usage = usage
        self.chunks = chunks
        self.dimensions = dimensions

    def __call__(self, request: Recorded) -> Reply:
        if request.method == "GET" and request.path == MODELS_PATH:
            return json_reply({"object": "list", "data": [{"id": MODEL_ID, "type": "base", "capabilities": {}}]})
        if request.method != "POST":
            raise ValueError(f"{request.method} {request.path}: only POST is served (and GET {MODELS_PATH})")
        if not request.headers.get("authorization", "").startswith("Bearer "):
            raise ValueError("no Bearer credentials")
        if request.headers.get("content-type") != "application/json":
            raise ValueError(f"content-type {request.headers.get('content-type')!r}")
        body = request.json()
        if request.path == EMBED_PATH:
            return self.embed(body)
        if request.path == AZURE_CHAT_PATH:
            if not request.query.get("api-version"):
                raise ValueError("Azure needs an api-version query parameter")
        elif request.path != CHAT_PATH:
            raise ValueError(f"no route {request.path}")
        check_chat(body)
        if body.get("stream"):
            if "text/event-stream" not in request.headers.get("accept", ""):
                raise ValueError("a stream must accept text/event-stream")
            return Reply(200, headers={"Content-Type": "text/event-stream"}, chunks=self.stream_events(body["model"]))
        return json_reply(self.completion(body["model"]))

    def _usage(self) -> dict[str, int]:
        prompt, completion = self.usage
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _tool_calls(self) -> list[dict[str, Any]]:
        return [
            {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}, "index": i}
            for i, (id, name, arguments) in enumerate(self.tool_calls)
        ]

    def completion(self, model: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text, "prefix": False}
        message["tool_calls"] = self._tool_calls() or None
        return {
            "id": "cmpl-e5cc70bb28c444948073e77776eb30ef",
            "object": "chat.completion",
            "model": model,
            "created": CREATED,
            "usage": self._usage(),
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
        }

    def stream_events(self, model: str) -> list[bytes]:
        """The SSE events of a streamed answer: role, text pieces, tool calls, then finish_reason with usage."""

        def chunk(delta: Mapping[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return {
                "id": "cmpl-0a1b2c3d4e5f",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "choices": [choice],
                **extra,
            }

        events: list[dict[str, Any] | str] = [chunk({"role": "assistant", "content": ""})]
        size = max(1, -(-len(self.text) // self.chunks))
        events += [chunk({"content": self.text[i : i + size]}) for i in range(0, len(self.text), size)]
        if self.tool_calls:
            events.append(chunk({"tool_calls": self._tool_calls()}))
        events.append(chunk({"content": ""}, self.finish_reason, usage=self._usage()))
        return sse(*events, "[DONE]")

    def embed(self, body: Mapping[str, Any]) -> Reply:
        unknown = set(body) - EMBED_FIELDS
        if unknown:
            raise ValueError(f"embeddings: extra inputs are not permitted: {sorted(unknown)}")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise ValueError("embeddings: model is required")
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError("embeddings: input must be a string or a non-empty list of strings")
        dimensions = body.get("output_dimension") or self.dimensions
        prompt = sum(len(t.split()) for t in texts)
        return json_reply(
            {
                "id": "embd-aad6fc62b17349b192ef09225058bc45",
                "object": "list",
                "model": body["model"],
                "usage": {"prompt_tokens": prompt, "completion_tokens": 0, "total_tokens": prompt},
                "data": [
                    {"object": "embedding", "index": i, "embedding": [float(len(t)) + i / 10] * dimensions}
                    for i, t in enumerate(texts)
                ],
            }
        )


def check_chat(body: Mapping[str, Any]) -> None:
    """Raise where la Plateforme would reject the chat request."""
    unknown = set(body) - CHAT_FIELDS
    if unknown:
        raise ValueError(f"chat: extra inputs are not permitted: {sorted(unknown)}")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ValueError("chat: model is required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("chat: messages must be a non-empty list")
    called: set[str] = set()
    for message in messages:
        _check_message(message, called)
    last = messages[-1]
    if last["role"] not in ("user", "tool") and not (last["role"] == "assistant" and last.get("prefix")):
        raise ValueError(f"Expected last role User or Tool (or Assistant with prefix True) but got {last['role']}")
    for tool in body.get("tools") or ():
        function = tool.get("function", {})
        if tool.get("type", "function") != "function" or not _TOOL_NAME.fullmatch(function.get("name", "")):
            raise ValueError(f"bad tool {tool!r}")
        if not isinstance(function.get("parameters"), dict):
            raise ValueError("a function tool needs parameters (a JSON schema object)")
    choice = body.get("tool_choice")
    if choice is not None and choice not in ("auto", "none", "any", "required") and not isinstance(choice, dict):
        raise ValueError(f"bad tool_choice {choice!r}")
    _check_response_format(body.get("response_format"))
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str | list):
        raise ValueError("stop must be a string or a list of strings")


def _check_message(message: Mapping[str, Any], called: set[str]) -> None:
    role = message.get("role")
    content = message.get("content")
    if role == "system":
        _check_content(content, images=False)
    elif role == "user":
        _check_content(content, images=True)
    elif role == "assistant":
        calls = message.get("tool_calls") or []
        if content in (None, "") and not calls:
            raise ValueError("an assistant message needs content or tool_calls")
        if content is not None:
            _check_content(content, images=False)
        for call in calls:
            if not _TOOL_CALL_ID.fullmatch(call.get("id", "")):
                raise ValueError(f"Tool call id was {call.get('id')} but must be a-z, A-Z, 0-9, with a length of 9.")
            if not isinstance(call["function"].get("arguments"), str | dict):
                raise ValueError("tool call arguments must be a JSON string or object")
            called.add(call["id"])
    elif role == "tool":
        _check_content(content, images=False)
        if message.get("tool_call_id") not in called:
            raise ValueError(f"tool message answers unknown tool call {message.get('tool_call_id')!r}")
    else:
        raise ValueError(f"unknown role {role!r}")


def _check_content(content: Any, *, images: bool) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        raise ValueError(f"content must be a string or a non-empty list of chunks, not {content!r}")
    for chunk in content:
        if chunk.get("type") == "text" and isinstance(chunk.get("text"), str):
            continue
        if images and chunk.get("type") == "image_url":
            url = chunk["image_url"]
            url = url.get("url") if isinstance(url, dict) else url
            if isinstance(url, str) and _IMAGE_URL.fullmatch(url):
                continue
        raise ValueError(f"bad content chunk {chunk!r}")


def _check_response_format(response_format: Any) -> None:
    if response_format is None:
        return
    kind = response_format.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise ValueError(f"bad response_format type {kind!r}")
    if kind == "json_schema":
        schema = response_format.get("json_schema") or {}
        if not schema.get("name") or not isinstance(schema.get("schema"), dict):
            raise ValueError("json_schema needs a name and a schema")
