"""Reroute in ``privsdk.genai``: a request the tenant's policy refuses is answered from its alternative, in
google-genai's own types, and the refused service receives nothing.

The tenant needs EU processing. The app's google-genai client talks to the Gemini Developer API (no
location) or to Vertex AI in ``us-central1``; the tenant's reroute list names Vertex AI targets in
``europe-west4``, which the same SDK reaches, or a private Cohere deployment (another vendor, for chat and
embeddings). Every service is a loopback server speaking its vendor's wire protocol; every call is the
real google-genai SDK over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from google.genai import errors as google_errors
from google.genai import types
from google.oauth2.credentials import Credentials

import privsdk
from privsdk import genai
from privsdk.outbound.judge import Guard
from tests.wire.cohere import CohereApp
from tests.wire.server import Cut, LoopbackServer, Status
from tests.wire.vertex import API_KEY, TOKEN, GeminiApp, error_body, stream_error, tokens, vector

MODEL = "gemini-2.5-flash"
EMBEDDER = "gemini-embedding-001"
PROJECT = "acme-prod"
#: What a user wrote: no usage record, log line, refusal or error message may hold it.
CANARY = "canary-7f3a9c my card number is 4242 4242 4242 4242"
EU_TEXT = "Hallo from Vertex AI in Europe"
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="The weather in a city",
            parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}},
        )
    ]
)
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)


class World:
    """The refused service, the alternative, the usage records, and clients of both google-genai modes."""

    def __init__(self, refused: LoopbackServer, eu: LoopbackServer, usage: Path):
        self.refused, self.eu, self.usage = refused, eu, usage

    @property
    def eu_app(self) -> GeminiApp:
        app = self.eu.app
        assert isinstance(app, GeminiApp)
        return app

    def gemini(self) -> Any:
        """A Gemini Developer API client: no location, so never ``region=eu``."""
        return genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=self.refused.url))

    def vertex(self) -> Any:
        """A Vertex AI client in us-central1."""
        return genai.Client(
            vertexai=True,
            project=PROJECT,
            location="us-central1",
            credentials=Credentials(token=TOKEN),  # type: ignore[no-untyped-call]
            http_options=types.HttpOptions(base_url=self.refused.url),
        )

    def records(self) -> list[dict[str, Any]]:
        Guard.default().flush(5)
        if not self.usage.exists():
            return []
        return [json.loads(line) for line in self.usage.read_text().splitlines() if line]


def _policy(refused: str, eu: str, cohere: str | None = None) -> str:
    alternatives = '["cohere-private"]' if cohere else '["gemini-eu"]'
    embed_alternatives = '["cohere-private-embed"]' if cohere else '["embed-eu"]'
    text = f"""
[endpoints]
"{refused}/v1" = "gemini.api"
"{refused}/v1beta1" = "vertex.gemini"

[targets.gemini-eu]
offering = "vertex.gemini"
model = "{MODEL}"
project = "{PROJECT}"
region = "europe-west4"
endpoint = "{eu}"
attest = ["region=eu"]

[targets.embed-eu]
offering = "vertex.gemini"
model = "{EMBEDDER}"
project = "{PROJECT}"
region = "europe-west4"
endpoint = "{eu}"
attest = ["region=eu"]

[tenants.eu]
on_violation = "reroute"
classes.default = ["region=eu"]
reroute."*/{MODEL}" = {alternatives}
reroute."*/{EMBEDDER}" = {embed_alternatives}
reroute."*/text-embedding-005" = {embed_alternatives}
credentials.vertex.access_token = "TEST_VERTEX_TOKEN"
"""
    if cohere:
        text += f"""
[targets.cohere-private]
offering = "cohere.private"
model = "command-r-plus"
endpoint = "{cohere}"
attest = ["region=eu"]

[targets.cohere-private-embed]
offering = "cohere.private"
model = "embed-v4.0"
endpoint = "{cohere}"
attest = ["region=eu"]
"""
    return text


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
                 "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_HTTP_CLIENT", "GOOGLE_GENAI_API_VERSION",
                 "PRIVSDK_ENDPOINTS", "PRIVSDK_REQUIRE", "PRIVSDK_ATTEST"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    with LoopbackServer(GeminiApp()) as refused, LoopbackServer(GeminiApp(EU_TEXT)) as eu:
        usage = tmp_path / "usage.jsonl"
        config = tmp_path / "privsdk.toml"
        config.write_text(_policy(refused.url, eu.url), encoding="utf-8")
        monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
        monkeypatch.setenv("PRIVSDK_TENANT", "eu")
        monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{usage}")
        monkeypatch.setenv("TEST_VERTEX_TOKEN", TOKEN)
        Guard.reset_default()
        yield World(refused, eu, usage)
        Guard.reset_default()
        assert eu.errors == [] and refused.errors == []
        assert refused.requests == []  # the refused service never received a byte


# -- chat, stream, embeddings: sync ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["gemini", "vertex"])
def test_a_rerouted_call_is_answered_from_the_alternative_in_google_genais_types(world: World, mode: str) -> None:
    client = world.gemini() if mode == "gemini" else world.vertex()
    config = types.GenerateContentConfig(system_instruction="Be brief", temperature=0.2, max_output_tokens=64)
    answer = client.models.generate_content(model=MODEL, contents="Say hello", config=config)
    assert isinstance(answer, types.GenerateContentResponse)
    assert answer.text == EU_TEXT
    assert answer.candidates and answer.candidates[0].finish_reason == types.FinishReason.STOP
    usage = answer.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count) == (tokens("Say hello Be brief"), tokens(EU_TEXT))
    assert answer.model_version == f"{MODEL}-001"
    chat = client.chats.create(model=MODEL)
    assert (chat.send_message("hi").text, chat.send_message("again").text) == (EU_TEXT, EU_TEXT)
    assert len(chat.get_history()) == 4
    turns = [r.json()["contents"][-1]["parts"] for r in world.eu.requests[1:3]]
    assert turns == [[{"text": "hi"}], [{"text": "again"}]]
    assert len(world.eu.requests[2].json()["contents"]) == 3  # the second turn carries the session's history
    del world.eu.requests[1:3]  # the checks below are about the other calls

    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Say hello"))
    assert all(isinstance(c, types.GenerateContentResponse) for c in chunks)
    assert "".join(c.text or "" for c in chunks) == EU_TEXT
    assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    last = chunks[-1].usage_metadata
    assert last is not None and last.candidates_token_count == tokens(EU_TEXT)

    vectors = client.models.embed_content(model=EMBEDDER, contents=["alpha", "beta gamma"])
    assert isinstance(vectors, types.EmbedContentResponse) and vectors.embeddings is not None
    assert [e.values for e in vectors.embeddings] == [vector("alpha", 4), vector("beta gamma", 4)]
    # the alternative got the same conversation, as Vertex AI in europe-west4
    paths = [r.path for r in world.eu.requests]
    assert [p.rsplit(":", 1)[1] for p in paths] == ["generateContent", "streamGenerateContent", "batchEmbedContents"]
    assert all(f"/projects/{PROJECT}/locations/europe-west4/" in p for p in paths)
    sent = world.eu.requests[0].json()
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief"}]}
    assert sent["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 64}


def test_the_vertex_embedding_shapes_are_answered_as_vertex_would(world: World) -> None:
    """google-genai calls ``:predict`` for Vertex's text-embedding models and ``:embedContent`` for one
    content on a Gemini embedding model; each answer has the shape the SDK parses."""
    client = world.vertex()
    config = types.EmbedContentConfig(output_dimensionality=3, task_type="RETRIEVAL_DOCUMENT")
    predicted = client.models.embed_content(model="text-embedding-005", contents=["alpha"], config=config)
    one = client.models.embed_content(model=EMBEDDER, contents="beta gamma")
    assert predicted.embeddings is not None and one.embeddings is not None
    assert predicted.embeddings[0].values == vector("alpha", 3)
    assert predicted.embeddings[0].statistics is not None
    assert predicted.embeddings[0].statistics.token_count == 1
    assert [e.values for e in one.embeddings] == [vector("beta gamma", 4)]
    sent = world.eu.requests[0].json()
    assert sent["embedContentConfig"] == {"taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 3}


def test_a_tool_loop_carries_calls_and_results_through_the_reroute(world: World) -> None:
    world.eu_app.calls = [{"id": "call-1", "name": "get_weather", "args": {"city": "Paris"}}]
    world.eu_app.text = ""
    client = world.gemini()
    tools = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=NO_AFC)
    contents: list[Any] = [types.Content(role="user", parts=[types.Part.from_text(text="Weather in Paris?")])]
    first = client.models.generate_content(model=MODEL, contents=contents, config=tools)
    assert first.function_calls
    call = first.function_calls[0]
    assert (call.id, call.name, call.args) == ("call-1", "get_weather", {"city": "Paris"})
    assert first.candidates and first.candidates[0].content
    contents.append(first.candidates[0].content)
    result = types.Part.from_function_response(name="get_weather", response={"temperature": 21})
    contents.append(types.Content(role="user", parts=[result]))
    world.eu_app.calls, world.eu_app.text = [], "21 degrees"
    second = client.models.generate_content(model=MODEL, contents=contents, config=tools)
    assert second.text == "21 degrees"
    streamed = list(client.models.generate_content_stream(model=MODEL, contents=contents, config=tools))
    assert "".join(c.text or "" for c in streamed) == "21 degrees"
    sent = world.eu.requests[1].json()
    ((declaration,),) = [tool["functionDeclarations"] for tool in sent["tools"]]
    schema = declaration.get("parametersJsonSchema", declaration.get("parameters_json_schema"))
    assert (declaration["name"], declaration["description"]) == ("get_weather", "The weather in a city")
    assert schema == {"type": "object", "properties": {"city": {"type": "string"}}}
    model_turn, answer_turn = sent["contents"][1], sent["contents"][2]
    assert model_turn["parts"][0]["functionCall"]["name"] == "get_weather"
    assert answer_turn["parts"][0]["functionResponse"]["response"] == {"temperature": 21}


def test_a_json_answer_keeps_its_schema_on_the_alternative(world: World) -> None:
    """Gemini's ``responseSchema`` (OpenAPI types) reaches the alternative as the JSON Schema it means."""
    world.eu_app.text = '{"city": "Paris"}'
    schema = types.Schema(
        type=types.Type.OBJECT,
        properties={
            "city": types.Schema(type=types.Type.STRING, nullable=True),
            "zip_code": types.Schema(type=types.Type.ARRAY, items=types.Schema(type=types.Type.INTEGER), min_items=1),
        },
        required=["city"],
    )
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema)
    client = world.gemini()  # held: google-genai closes its connections when the client is collected
    answer = client.models.generate_content(model=MODEL, contents="Where?", config=config)
    assert answer.text == '{"city": "Paris"}'
    generation = world.eu.requests[0].json()["generationConfig"]
    assert generation["responseMimeType"] == "application/json"
    assert generation["responseJsonSchema"] == {
        "type": "object",
        "properties": {
            "city": {"type": ["string", "null"]},
            "zip_code": {"type": "array", "items": {"type": "integer"}, "minItems": 1},
        },
        "required": ["city"],
    }


# -- async -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["gemini", "vertex"])
def test_async_calls_are_rerouted_too(world: World, mode: str) -> None:
    client = world.gemini() if mode == "gemini" else world.vertex()

    async def main() -> tuple[Any, list[Any], Any]:
        answer = await client.aio.models.generate_content(model=MODEL, contents="Say hello")
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents="Say hello")
        chunks = [c async for c in stream]
        vectors = await client.aio.models.embed_content(model=EMBEDDER, contents=["alpha", "beta"])
        return answer, chunks, vectors

    answer, chunks, vectors = asyncio.run(main())
    assert isinstance(answer, types.GenerateContentResponse) and answer.text == EU_TEXT
    assert answer.usage_metadata is not None and answer.usage_metadata.candidates_token_count == tokens(EU_TEXT)
    assert "".join(c.text or "" for c in chunks) == EU_TEXT
    assert vectors.embeddings is not None and [e.values for e in vectors.embeddings] == [
        vector("alpha", 4),
        vector("beta", 4),
    ]
    assert len(world.eu.requests) == 3


# -- what does not reroute ---------------------------------------------------------------------------


def test_other_operations_and_unmappable_bodies_are_refused_and_send_nothing(world: World) -> None:
    client, vertex = world.gemini(), world.vertex()
    attempts: list[Callable[[], object]] = [
        lambda: client.models.count_tokens(model=MODEL, contents=CANARY),
        lambda: client.models.generate_content(
            model=MODEL, contents=CANARY, config=types.GenerateContentConfig(response_logprobs=True)
        ),
        lambda: client.models.generate_content(
            model=MODEL, contents=CANARY, config=types.GenerateContentConfig(candidate_count=2)
        ),
        lambda: client.models.embed_content(
            model=EMBEDDER, contents=[CANARY], config=types.EmbedContentConfig(title="a title")
        ),
        lambda: vertex.interactions.create(model=MODEL, input=CANARY, store=False),
        # Once carried without it: the alternative truncated input the app wanted refused.
        lambda: vertex.models.embed_content(
            model=EMBEDDER, contents=[CANARY], config=types.EmbedContentConfig(auto_truncate=False)
        ),
    ]
    for attempt in attempts:
        with pytest.raises(genai.PolicyViolation) as caught:
            attempt()
        error = caught.value
        assert isinstance(error, google_errors.APIError) and isinstance(error, privsdk.PolicyViolation)
        assert error.decision.outcome == "refuse" and "reroute only" in str(error)
        assert "canary" not in f"{error} {error.details} {error.__cause__!r} {error.__context__!r}"
    # Grounding with Google Search or Maps makes no residency promise on Vertex AI either: the EU alternative does
    # not meet region=eu with it, so the request is refused before the reroute would read its body.
    for tool in (types.Tool(google_search=types.GoogleSearch()), types.Tool(google_maps=types.GoogleMaps())):
        with pytest.raises(genai.PolicyViolation) as caught:
            client.models.generate_content(
                model=MODEL, contents=CANARY, config=types.GenerateContentConfig(tools=[tool])
            )
        assert "no compliant alternative among gemini-eu" in str(caught.value)
        assert [u.requirement for u in caught.value.decision.unmet] == ["region=eu"]
    assert world.eu.requests == []
    records = world.records()
    assert len(records) == len(attempts) + 2
    # Nothing was rerouted: each is recorded as the refusal it became, with no alternative named.
    assert all(r["outcome"] == "refused" and r["decision"] == "refuse" and r["chosen_target"] is None for r in records)


# -- failures of the alternative ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "google", "error_class"),
    [
        (429, "RESOURCE_EXHAUSTED", google_errors.ClientError),
        (503, "UNAVAILABLE", google_errors.ServerError),
    ],
)
def test_a_failure_of_the_alternative_is_google_genais_own_error_without_vendor_text(
    world: World, status: int, google: str, error_class: type[google_errors.APIError]
) -> None:
    client = world.gemini()
    for _ in range(12):  # enough for every attempt google-genai's own retry settings may make: all fail
        world.eu.fail(Status(status, body=error_body(status, google, f"echo: {CANARY}")))
    with pytest.raises(error_class) as caught:
        client.models.generate_content(model=MODEL, contents=CANARY)
    error = caught.value
    assert isinstance(error, google_errors.APIError) and error.code == status and error.status == google
    assert not isinstance(error, privsdk.PolicyViolation)
    assert "canary" not in f"{error} {error.details} {error.message} {error.__cause__!r} {error.__context__!r}"

    async def astream() -> None:
        async for _ in await client.aio.models.generate_content_stream(model=MODEL, contents=CANARY):
            pass

    with pytest.raises(error_class) as caught:
        asyncio.run(astream())
    assert caught.value.code == status
    world.eu._faults.clear()


def test_a_request_the_alternatives_client_rejects_is_refused(world: World) -> None:
    """Text no vendor takes (a lone surrogate) passes google-genai's JSON encoder but not privsdk's checks: the
    reroute cannot serve it, which is a refusal (as in every drop-in), and nothing is sent anywhere."""
    client = world.gemini()
    with pytest.raises(genai.PolicyViolation) as caught:
        client.models.generate_content(model=MODEL, contents=f"{CANARY} \ud800")
    assert isinstance(caught.value, google_errors.ClientError)
    assert caught.value.decision.outcome == "refuse" and "cannot serve it" in str(caught.value)
    assert "canary" not in f"{caught.value} {caught.value.details}"
    assert world.eu.requests == []


def test_a_stream_the_alternative_breaks_ends_in_google_genais_own_error(world: World) -> None:
    """The alternative fails after its first event (privsdk cannot retry a stream it has begun): the app gets
    the text so far, then google-genai's ServerError from Google's in-stream error event, with no vendor text."""
    client = world.gemini()
    world.eu_app.chunks = 3
    world.eu.fail(Cut(after=1, then=stream_error(500, "INTERNAL", f"echo: {CANARY}"), drop=False))
    got: list[str] = []
    with pytest.raises(google_errors.APIError) as caught:
        for chunk in client.models.generate_content_stream(model=MODEL, contents=CANARY):
            got.append(chunk.text or "")
    assert got and EU_TEXT.startswith("".join(got))
    assert caught.value.code >= 500 and "canary" not in f"{caught.value} {caught.value.details}"

    world.eu.fail(Cut(after=1, drop=True))

    async def astream() -> list[str]:
        return [c.text or "" async for c in await client.aio.models.generate_content_stream(model=MODEL, contents="hi")]

    with pytest.raises(google_errors.ServerError) as caught:
        asyncio.run(astream())
    assert caught.value.code == 502 and caught.value.status == "UNAVAILABLE"


def test_chat_and_embeddings_reroute_to_another_vendor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tenant's alternative is a private Cohere deployment: google-genai's answer objects carry Cohere's
    text, tool calls, finish reason, tokens and vectors."""
    monkeypatch.delenv("PRIVSDK_ENDPOINTS", raising=False)
    cohere_app = CohereApp("Bonjour from a private Cohere", tool_calls=[("call-9", "get_weather", '{"city": "Paris"}')])
    cohere_app.anonymous = True  # a private deployment inside the tenant's network, with no key
    with LoopbackServer(GeminiApp()) as refused, LoopbackServer(cohere_app) as cohere:
        config = tmp_path / "privsdk.toml"
        config.write_text(_policy(refused.url, "http://127.0.0.1:9", cohere.url), encoding="utf-8")
        monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
        monkeypatch.setenv("PRIVSDK_TENANT", "eu")
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        Guard.reset_default()
        client = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=refused.url))
        # the tenant's own Vertex credential is named but not set: the alternative cannot be served, so refuse
        with pytest.raises(genai.PolicyViolation, match="TEST_VERTEX_TOKEN"):
            client.models.generate_content(model=MODEL, contents=CANARY)
        monkeypatch.setenv("TEST_VERTEX_TOKEN", TOKEN)
        Guard.reset_default()
        try:
            tools = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=NO_AFC)
            first = client.models.generate_content(model=MODEL, contents="Weather in Paris?", config=tools)
            streamed = list(client.models.generate_content_stream(model=MODEL, contents="Weather?", config=tools))
            cohere_app.tool_calls = ()
            plain = asyncio.run(client.aio.models.generate_content(model=MODEL, contents="Say hello"))
            vectors = client.models.embed_content(model=EMBEDDER, contents=["alpha", "beta"])
        finally:
            Guard.reset_default()
        assert refused.requests == [] and cohere.errors == []
        assert [r.path for r in cohere.requests] == ["/v2/chat"] * 3 + ["/v2/embed"]
    assert first.function_calls and [(c.id, c.name, c.args) for c in first.function_calls] == [
        ("call-9", "get_weather", {"city": "Paris"})
    ]
    assert first.candidates and first.candidates[0].finish_reason == types.FinishReason.STOP
    assert first.usage_metadata is not None and first.usage_metadata.prompt_token_count == 11
    calls = [c for chunk in streamed for c in chunk.function_calls or []]
    assert [(c.id, c.name, c.args) for c in calls] == [("call-9", "get_weather", {"city": "Paris"})]
    assert plain.text == "Bonjour from a private Cohere"
    assert vectors.embeddings is not None and len(vectors.embeddings) == 2


# -- no content in records, logs, errors -------------------------------------------------------------


def test_the_canary_appears_in_no_record_log_or_error(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = world.gemini()
    assert client.models.generate_content(model=MODEL, contents=CANARY).text == EU_TEXT
    assert "".join(c.text or "" for c in client.models.generate_content_stream(model=MODEL, contents=CANARY))
    assert client.models.embed_content(model=EMBEDDER, contents=[CANARY]).embeddings
    assert asyncio.run(client.aio.models.generate_content(model=MODEL, contents=CANARY)).text == EU_TEXT
    sent = world.records()
    # one record a call: the privsdk client's attempt at the alternative, recorded as the reroute it served
    assert sorted((r["decision"], r["operation"], r["chosen_target"], r["outcome"]) for r in sent) == [
        ("reroute", "chat", "gemini-eu", "ok"),
        ("reroute", "chat", "gemini-eu", "ok"),
        ("reroute", "embed", "embed-eu", "ok"),
        ("reroute", "stream", "gemini-eu", "ok"),
    ]
    assert {r["vendor"] for r in sent} == {"vertex"}
    assert all(r["input_tokens"] for r in sent)
    assert "canary" not in world.usage.read_text()
    assert "canary" not in caplog.text


@pytest.mark.parametrize(
    ("field", "config"),
    [
        ("topK", types.GenerateContentConfig(top_k=5)),
        ("presencePenalty", types.GenerateContentConfig(presence_penalty=0.5)),
        ("frequencyPenalty", types.GenerateContentConfig(frequency_penalty=0.5)),
        ("thinkingConfig", types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=512))),
        ("labels", types.GenerateContentConfig(labels={"team": "x"})),
        (
            "safetySettings",
            types.GenerateContentConfig(
                safety_settings=[
                    types.SafetySetting(
                        category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                        threshold=types.HarmBlockThreshold.BLOCK_NONE,
                    )
                ]
            ),
        ),
    ],
)
def test_a_setting_the_reroute_cannot_carry_is_refused_by_name_and_sends_nothing(
    world: World, field: str, config: types.GenerateContentConfig
) -> None:
    """Dropping these would answer with other sampling, thinking or filters than asked: refused, naming the field."""
    client = world.gemini()  # held: a client let go of closes its connection pool
    with pytest.raises(genai.PolicyViolation) as caught:
        client.models.generate_content(model=MODEL, contents=CANARY, config=config)
    assert caught.value.decision.outcome == "refuse" and f"field {field} (" in str(caught.value), str(caught.value)
    assert "canary" not in str(caught.value)
    assert world.eu.requests == []


def test_a_python_function_tool_with_a_return_annotation_is_rerouted(world: World) -> None:
    """On Vertex AI, google-genai declares a Python function with a return annotation with a response schema; one
    fix refused it, and so the most common way to give google-genai tools. The schema says only what the function
    returns: the declaration is carried without it."""

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    vertex = world.vertex()
    config = types.GenerateContentConfig(
        tools=[get_weather], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    answer = vertex.models.generate_content(model=MODEL, contents="Weather in Paris?", config=config)
    assert answer.text and world.refused.requests == []
    [sent] = [r.json() for r in world.eu.requests]
    [declaration] = sent["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "get_weather" and "response" not in declaration
