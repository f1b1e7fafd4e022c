"""The openai adapter reads answers from the SDK untyped: what OpenAI-compatible servers leave out, it reads as
the openai SDK's own models did; what an answer cannot be read without is a content-free Unavailable.

Ollama streams each tool call whole in one delta without ``index``; Azure's asynchronous content filter streams
choices without a ``delta`` (learn.microsoft.com, "Content streaming"); vLLM and other self-hosted servers leave out
``model``, a Responses answer may have no ``status`` (optional in the SDK's ``Response``), and an embeddings
answer must hold one vector per text. The real openai SDK runs through privsdk.Client over real HTTP against the
loopback OpenAI stand-in, with the answers under test queued in front of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from privsdk.client import Client
from privsdk.errors import Unavailable
from privsdk.types import StreamEnd, StreamEvent, TextDelta, Tool, ToolCallDelta, Usage
from tests.test_client_errors import MARK, OUTPUT, PROMPT, SSE, Vendors, clean, raised
from tests.wire.server import Reply, json_reply
from tests.wire.server import sse as events_of

pytestmark = pytest.mark.usefixtures("no_machine_aws")

WEATHER = Tool("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}})


class Servers(Vendors):
    """One loopback server per vendor as in test_client_errors, and on the OpenAI-wire one Responses API, Ollama
    and vLLM targets too."""

    def __enter__(self) -> Servers:
        super().__enter__()
        url = self.servers["openai"].url
        with self.config.open("a", encoding="utf-8") as config:
            config.write(
                f"""
[targets.oar]
offering = "openai.api"
model = "gpt-4o-mini"
endpoint = "{url}/v1"
options = {{ api = "responses" }}

[targets.az]
offering = "azure.openai"
model = "gpt-4o"
endpoint = "{url}"
deployment = "gpt-4o-eu"
api_version = "2024-10-21"
attest = ["deployment=data_zone_eu"]

[targets.ol]
offering = "selfhosted.ollama"
model = "llama3.1"
endpoint = "{url}/ollama/v1"
attest = ["no_request_logging"]

[targets.sh]
offering = "selfhosted.vllm"
model = "llama-3.1-8b-instruct"
endpoint = "{url}/vllm/v1"
attest = ["no_request_logging"]
"""
            )
        return self

    def options(self, **more: Any) -> dict[str, Any]:
        options = super().options(**more)
        options["credentials"]["azure"] = {"api_key": "az-x"}
        return options

    def answer(self, *replies: Reply) -> None:
        self.apps["openai"].next = list(replies)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    with Servers(tmp_path) as found:
        yield found


def sse(*events: dict[str, Any] | str) -> Reply:
    """A Chat Completions stream of ``events``, ended as the API ends one."""
    return Reply(200, headers=SSE, chunks=events_of(*events, "[DONE]"))


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "llama3.1", "choices": [choice]}


USAGE = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "llama3.1", "choices": []}
USAGE["usage"] = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def response(**over: Any) -> dict[str, Any]:
    """A Responses API answer with the fields openai's ``Response`` requires."""
    message = {
        "type": "message",
        "id": "msg_0",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Hello", "annotations": []}],
    }
    body = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "model": "gpt-4o-mini",
        "output": [message],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18},
    }
    return body | over


def event(kind: str, **fields: Any) -> bytes:
    """A Responses API stream event."""
    return events_of({"type": kind, **fields}, event=kind)[0]


def call(**fields: Any) -> dict[str, Any]:
    """A streamed tool call as Ollama sends it: whole, in one delta, without ``index``."""
    return {"type": "function", **fields}


def calls_of(events: list[StreamEvent]) -> list[tuple[int, str | None, str | None, str]]:
    return [(e.call, e.id, e.name, e.arguments) for e in events if isinstance(e, ToolCallDelta)]


# --- Embeddings: one vector per text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "indexes", [(), (0,), (0, 1, 2), (0, 0), (1, 2)], ids=["none", "fewer", "more", "twice", "off"]
)
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_an_embeddings_answer_without_one_vector_per_text_is_unavailable(
    servers: Servers, indexes: tuple[int, ...], is_async: bool
) -> None:
    data = [{"object": "embedding", "index": i, "embedding": [0.5, 1.5]} for i in indexes]
    servers.answer(json_reply({"object": "list", "data": data, "model": "text-embedding-3-small"}))
    client: Any = servers.aclient() if is_async else servers.client()
    error = raised(lambda: asyncio.run(client.embed("sh", ["a", "b"])) if is_async else client.embed("sh", ["a", "b"]))
    assert isinstance(error, Unavailable) and clean(error) is error and error.code == "UnexpectedResponse"
    assert servers.outcomes(client) == [("error", "unavailable")]


def test_embeddings_without_model_are_named_for_the_target_and_put_in_input_order(servers: Servers) -> None:
    data = [{"object": "embedding", "index": i, "embedding": [float(i), 0.5]} for i in (2, 0, 1)]
    servers.answer(json_reply({"object": "list", "data": data}))
    answer = servers.client().embed("sh", ["a", "b", "c"])
    assert (answer.vectors, answer.model) == ([[0.0, 0.5], [1.0, 0.5], [2.0, 0.5]], "llama-3.1-8b-instruct")


# --- Chat Completions: fields compatible servers leave out ---------------------------------------------------------


def _tool_stream(*calls: dict[str, Any]) -> Reply:
    return sse(
        *(chunk({"role": "assistant", "content": "", "tool_calls": [c]}) for c in calls),
        chunk({"role": "assistant", "content": ""}, "tool_calls"),
        USAGE,
    )


def test_a_tool_call_streamed_without_index_streams(servers: Servers) -> None:
    servers.answer(_tool_stream(call(id="call_a", function={"name": "get_weather", "arguments": '{"city":"Oslo"}'})))
    client = servers.client()
    events = list(client.chat("ol", PROMPT, tools=[WEATHER], stream=True))
    assert calls_of(events) == [(0, "call_a", "get_weather", '{"city":"Oslo"}')]
    assert events[-1] == StreamEnd("tool_calls", Usage(11, 7), "llama3.1")
    assert servers.outcomes(client) == [("ok", None)]


def test_async_tool_calls_streamed_without_index_are_numbered_as_they_begin(servers: Servers) -> None:
    """Each delta with an id begins the next call; one without continues the last."""
    servers.answer(
        _tool_stream(
            call(id="call_a", function={"name": "get_weather", "arguments": '{"city":'}),
            call(function={"arguments": '"Oslo"}'}),
            call(id="call_b", function={"name": "get_weather", "arguments": '{"city":"Rome"}'}),
        )
    )
    client = servers.aclient()

    async def run() -> list[StreamEvent]:
        return [e async for e in await client.chat("ol", PROMPT, tools=[WEATHER], stream=True)]

    events = asyncio.run(run())
    assert calls_of(events) == [
        (0, "call_a", "get_weather", '{"city":'),
        (0, None, None, '"Oslo"}'),
        (1, "call_b", "get_weather", '{"city":"Rome"}'),
    ]
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason == "tool_calls"


def test_a_chat_answer_without_model_or_call_ids_is_named_for_the_target(servers: Servers) -> None:
    message = {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "get_weather"}}]}
    body = {"id": "c", "object": "chat.completion", "created": 1}
    body["choices"] = [{"index": 0, "message": message, "finish_reason": "tool_calls"}]
    servers.answer(json_reply(body))
    answer = servers.client().chat("sh", PROMPT, tools=[WEATHER])
    assert (answer.model, answer.finish_reason, answer.usage.input_tokens) == (
        "llama-3.1-8b-instruct",
        "tool_calls",
        None,
    )
    assert [(c.id, c.name, c.arguments) for c in answer.tool_calls] == [("", "get_weather", "")]


# --- Azure's asynchronous content filter: choices without a delta --------------------------------------------------

FILTER_OK = {"hate": {"filtered": False, "severity": "safe"}, "violence": {"filtered": False, "severity": "safe"}}


def azure(*choices: dict[str, Any], model: str = "", usage: dict[str, int] | None = None) -> dict[str, Any]:
    """A chunk as Azure streams it; the filter's own chunks name no model and have no id."""
    return {"choices": list(choices), "created": 0, "id": "", "model": model, "object": ""} | (
        {"usage": usage} if usage else {}
    )


def annotation(start: int, end: int, finish: str | None = None, results: Any = FILTER_OK) -> dict[str, Any]:
    """The asynchronous filter's verdict on the text from ``start`` to ``end``: a choice with no ``delta``."""
    offsets = {"check_offset": start, "start_offset": start, "end_offset": end}
    choice = {"index": 0, "finish_reason": finish, "content_filter_offsets": offsets, "content_filter_results": results}
    return azure(choice)


def text(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return azure({"index": 0, "delta": delta, "finish_reason": finish}, model="gpt-4o-2024-11-20")


PROMPT_FILTER = azure() | {"prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTER_OK}]}


def test_the_asynchronous_filters_annotations_leave_the_stream_as_it_is(servers: Servers) -> None:
    """Azure's asynchronous filter interleaves its annotations with the answer and sends more after the finish."""
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    servers.answer(
        sse(
            PROMPT_FILTER,
            text({"role": "assistant", "content": ""}),
            text({"content": "Hello "}),
            annotation(0, 6),
            text({"content": "there"}),
            text({}, "stop"),
            annotation(6, 11),
            azure(model="gpt-4o-2024-11-20", usage=usage),
        )
    )
    client = servers.client()
    events = list(client.chat("az", PROMPT, stream=True))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello ", "there"]
    assert events[-1] == StreamEnd("stop", Usage(9, 2), "gpt-4o-2024-11-20")
    assert servers.outcomes(client) == [("ok", None)]


def test_the_asynchronous_filters_block_ends_the_stream_as_content_filter(servers: Servers) -> None:
    """A block is an annotation with finish reason content_filter, and [DONE] follows: an answer cut by the filter,
    which ends normally and is not retried (docs/vendors.md)."""
    blocked = {"hate": {"filtered": True, "severity": "high"}}
    servers.answer(
        sse(PROMPT_FILTER, text({"content": "Part one"}), annotation(0, 8, "content_filter", blocked)),
    )
    client = servers.client()
    events = list(client.chat("az", PROMPT, stream=True))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Part one"]
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason == "content_filter"
    assert servers.outcomes(client) == [("ok", None)] and len(servers.servers["openai"].requests) == 1


# --- Responses API: status is optional -----------------------------------------------------------------------------


def test_a_responses_answer_without_status_or_model_is_complete(servers: Servers) -> None:
    body = response()
    del body["status"], body["model"]
    servers.answer(json_reply(body))
    answer = servers.client().chat("oar", PROMPT)
    assert (answer.text, answer.finish_reason, answer.model) == ("Hello", "stop", "gpt-4o-mini")


def test_a_responses_stream_whose_final_response_has_no_status_ends_normally(servers: Servers) -> None:
    final = response()
    del final["status"]
    servers.answer(
        Reply(
            200,
            headers=SSE,
            chunks=[
                event("response.created", response={"id": "resp_1"}),  # no model yet
                event("response.output_text.delta", output_index=0, content_index=0, item_id="msg_0", delta="Hello"),
                *events_of({"note": "an event without a type"}),
                event("response.completed", response=final),
            ],
        )
    )
    events = list(servers.client().chat("oar", PROMPT, stream=True))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello"]
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason == "stop"


# --- What cannot be read is Unavailable, and carries nothing of the answer -----------------------------------------


def _chat(client: Client, target: str) -> object:
    return client.chat(target, PROMPT)


def _stream(client: Client, target: str) -> object:
    return list(client.chat(target, PROMPT, stream=True))


def _embed(client: Client, target: str) -> object:
    return client.embed(target, [PROMPT])


def _events(*events: bytes) -> Reply:
    return Reply(200, headers=SSE, chunks=list(events))


MALFORMED: dict[str, tuple[Callable[[Client, str], object], str, Reply]] = {
    "chat html page": (_chat, "oa", Reply(200, f"<html>{OUTPUT}</html>".encode(), {"Content-Type": "text/html"})),
    "chat json string": (_chat, "oa", json_reply(OUTPUT)),
    "chat text/plain not json": (_chat, "oa", Reply(200, OUTPUT.encode(), {"Content-Type": "text/plain"})),
    "chat message a string": (_chat, "oa", json_reply({"choices": [{"message": OUTPUT}]})),
    "chat choices a string": (_chat, "oa", json_reply({"choices": OUTPUT, "model": "m"})),
    "responses content a string": (
        _chat,
        "oar",
        json_reply(response(output=[{"type": "message", "content": OUTPUT}])),
    ),
    "responses failed": (_chat, "oar", json_reply(response(status="failed", error={"code": None, "message": OUTPUT}))),
    "embed not base64": (_embed, "oa", json_reply({"data": [{"index": 0, "embedding": OUTPUT}], "model": "m"})),
    "embed text/plain": (_embed, "oa", Reply(200, OUTPUT.encode(), {"Content-Type": "text/plain"})),
    "stream event wrong shape": (_stream, "oa", sse(chunk({"content": "x"}), {"choices": [{"delta": OUTPUT}]})),
    "stream event a string": (_stream, "oa", sse(chunk({"content": "x"}), json.dumps(OUTPUT))),
    "responses stream created a string": (
        _stream,
        "oar",
        _events(event("response.output_text.delta", delta="x"), event("response.created", response=OUTPUT)),
    ),
    "responses status unknown": (_chat, "oar", json_reply(response(status=OUTPUT))),
    "responses stream status unknown": (
        _stream,
        "oar",
        _events(event("response.completed", response={"status": OUTPUT, "output": []})),
    ),
    "responses stream details a string": (
        _stream,
        "oar",
        _events(event("response.completed", response={"status": "incomplete", "incomplete_details": OUTPUT})),
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_an_unreadable_answer_is_an_error_that_carries_nothing_of_it(
    servers: Servers, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    operation, target, reply = MALFORMED[case]
    servers.answer(reply)
    client = servers.client()
    caplog.set_level(logging.DEBUG)
    error = clean(raised(lambda: operation(client, target)))
    if case != "responses failed":  # that one is the vendor's in-band error, classified by its code
        assert isinstance(error, Unavailable) and error.code == "UnexpectedResponse"
    assert MARK not in caplog.text
    assert servers.outcomes(client) == [("error", getattr(error, "kind", None))]
    assert all(MARK not in repr(r) for r in servers.records)
