"""Cohere's wire protocol: what a request to api.cohere.com (or a private/SageMaker deployment) asks for.

Paths are ``/v1/<family>/...`` and ``/v2/<family>/...`` as the cohere SDK
sends them; a SageMaker endpoint takes the same bodies at
``/endpoints/<name>/invocations[-response-stream]`` (the cohere SDK's
``SagemakerClientV2``), with the endpoint name as the model. Chat streams when
the body says ``"stream": true``.

Features read from the body:

- v1 chat ``connectors``: the ``web-search`` connector is ``web_search``; any
  other connector makes Cohere fetch from a registered data source, which is a
  vendor-run tool: ``hosted_tools``.
- v1 chat ``conversation_id``: Cohere keeps the chat history under that id
  and replays it: ``stored_responses``.
- image parts of a chat message, ``images`` or image ``inputs`` of an embed:
  ``file_inputs``. Inline ``documents`` are text sent with the prompt, as the
  prompt is: no feature. ``search_queries_only`` only asks the model to write
  search queries (nothing is searched): no feature.

Token counts come from ``usage`` (v2 chat) or ``meta`` (v1, embed, rerank),
billed units first, and in a stream from the v2 ``message-end`` event or the
v1 ``stream-end`` line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from privsdk.outbound.outgoing import (
    Asks,
    Meter,
    Outgoing,
    UnknownRoute,
    Unreadable,
    body_model,
    content_type,
    json_object,
    shown_segment,
)
from privsdk.outbound.wire.meters import EventMeter, JsonMeter, Tokens, count, error_kind
from privsdk.outbound.wire.routes import after_prefix

_NONE: frozenset[str] = frozenset()
#: Endpoint families whose requests generate text from a prompt (chat, or stream when the body says so).
_GENERATE = frozenset({"chat", "generate", "summarize"})
#: Families that keep or process content outside the four served operations, or manage the account.
_FIXED = {
    "embed": "embed",
    "rerank": "rerank",
    "datasets": "files",
    "embed-jobs": "batch",
    "batches": "batch",
    "finetuning": "fine_tune",
    "audio": "audio",
    "classify": "other",
    "tokenize": "other",
    "detokenize": "other",
    "parse": "other",
    "connectors": "other",
}


class CohereReader:
    """The :class:`~privsdk.outbound.outgoing.WireReader` for Cohere's API."""

    def read(self, request: Outgoing) -> Asks:
        parts = after_prefix(request.path.strip("/").split("/"), ("v1", "v2", "endpoints"), ("v1", "v2"))
        head = parts[0]
        if head == "endpoints" and len(parts) == 3:
            return _sagemaker(request, parts)
        if head not in ("v1", "v2") or len(parts) < 2:
            raise UnknownRoute(f"unknown path shape /{shown_segment(head)}/... for Cohere's API")
        family = parts[1]
        method = request.method
        if family in _GENERATE and len(parts) == 2 and method == "POST":
            body = json_object(request, "Cohere", family)
            return Asks(
                "stream" if body.get("stream") is True else "chat", body_model(body, "Cohere"), _chat_features(body)
            )
        if family == "models" or family == "check-api-key":
            # A model listing (or a key check) carries no content.
            return Asks("models")
        fixed = _FIXED.get(family)
        if fixed is None:
            raise UnknownRoute(f"unknown path shape /{head}/{shown_segment(family)}/... for Cohere's API")
        operation = fixed
        if operation == "embed" and method == "POST":
            body = json_object(request, "Cohere", family)
            return Asks("embed", body_model(body, "Cohere"), _embed_features(body))
        if operation == "rerank" and method == "POST":
            return Asks("rerank", body_model(json_object(request, "Cohere", family), "Cohere"))
        return Asks(operation)

    def meter(self, request: Outgoing, asks: Asks, status: int, headers: Mapping[str, str]) -> Meter | None:
        if not 200 <= status < 300:
            return None
        kind = content_type(headers)
        if asks.operation == "stream":
            if "event-stream" in kind:
                return EventMeter(_pick_event, (b"message-end", b"stream-end"), fail=_failure)
            return EventMeter(_pick_line, (b"stream-end",), sse=False, fail=_failure)
        if asks.operation in ("chat", "embed", "rerank") and "json" in kind:
            return JsonMeter(_pick_answer)
        return None


def _sagemaker(request: Outgoing, parts: list[str]) -> Asks:
    """A cohere body posted to a SageMaker endpoint; what it asks for follows from the body's shape."""
    action = parts[2]
    if action not in ("invocations", "invocations-response-stream") or request.method != "POST":
        raise UnknownRoute("unknown path shape /endpoints/<name>/... for a Cohere SageMaker endpoint")
    body = json_object(request, "Cohere", "invocations")
    model = unquote(parts[1])
    if "messages" in body or "message" in body:
        streamed = action.endswith("-stream") or body.get("stream") is True
        return Asks("stream" if streamed else "chat", model, _chat_features(body))
    if any(isinstance(body.get(field), list) for field in ("texts", "images", "inputs")):
        # Lists, as Cohere's embed takes them: a model of another maker on a SageMaker endpoint (Hugging Face's
        # text generation, say) posts {"inputs": "<prompt>"}, a generation that is no Cohere embed.
        return Asks("embed", model, _embed_features(body))
    if "query" in body and "documents" in body:
        return Asks("rerank", model)
    raise Unreadable("a Cohere SageMaker request that is neither chat, embed nor rerank")


def _chat_features(body: Mapping[str, Any]) -> frozenset[str]:
    features: set[str] = set()
    connectors = body.get("connectors")
    if isinstance(connectors, list):
        for connector in connectors:
            ident = connector.get("id") if isinstance(connector, dict) else None
            features.add("web_search" if ident == "web-search" else "hosted_tools")
    if body.get("conversation_id"):
        features.add("stored_responses")
    messages = body.get("messages")
    if isinstance(messages, list) and _has_image(messages):
        features.add("file_inputs")
    return frozenset(features) if features else _NONE


def _has_image(messages: list[Any]) -> bool:
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") not in ("text", "document", None):
                    return True  # image_url, or a part type newer than this reader: content beyond text
    return False


def _embed_features(body: Mapping[str, Any]) -> frozenset[str]:
    if body.get("images"):
        return frozenset({"file_inputs"})
    inputs = body.get("inputs")
    if isinstance(inputs, list):
        for item in inputs:
            content = item.get("content") if isinstance(item, dict) else None
            if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") != "text" for p in content):
                return frozenset({"file_inputs"})
    return _NONE


def _counts(usage: Any) -> Tokens | None:
    """(input, output) from a usage or meta object: billed units first, then the tokens the model processed."""
    if not isinstance(usage, dict):
        return None
    billed = usage.get("billed_units")
    tokens = usage.get("tokens")
    billed = billed if isinstance(billed, dict) else {}
    tokens = tokens if isinstance(tokens, dict) else {}
    found_in = count(billed.get("input_tokens"))
    found_out = count(billed.get("output_tokens"))
    if found_in is None:
        found_in = count(tokens.get("input_tokens"))
    if found_out is None:
        found_out = count(tokens.get("output_tokens"))
    return found_in, found_out


def _pick_answer(answer: Any) -> Tokens | None:
    if not isinstance(answer, dict):
        return None
    usage = answer.get("usage")
    return _counts(usage if isinstance(usage, dict) else answer.get("meta"))


def _pick_event(event: Any) -> Tokens | None:
    if not isinstance(event, dict):
        return None
    if event.get("type") != "message-end":
        return _pick_line(event)  # a v1 stream asked for as server-sent events
    delta = event.get("delta")
    return _counts(delta.get("usage")) if isinstance(delta, dict) else None


def _pick_line(line: Any) -> Tokens | None:
    if not isinstance(line, dict) or line.get("event_type") != "stream-end":
        return None
    response = line.get("response")
    return _counts(response.get("meta")) if isinstance(response, dict) else None


def _failure(event: Any) -> str | None:
    """The error class of a stream Cohere ended with an error: its closing event's finish reason ``ERROR`` (v2's
    message-end), or ``ERROR``, ``ERROR_TOXIC``, ``ERROR_LIMIT`` (v1's stream-end); None for any other event."""
    if not isinstance(event, dict):
        return None
    delta = event.get("delta")
    reason = delta.get("finish_reason") if isinstance(delta, dict) else event.get("finish_reason")
    if not (isinstance(reason, str) and reason.startswith("ERROR")):
        return None
    return error_kind(reason)


READER = CohereReader()
