"""``privsdk.genai``: google-genai's own Client with the guard in its transport, against a loopback Gemini service.

Every test drives the real google-genai SDK over real HTTP. Configuration is the environment alone
(PRIVSDK_ENDPOINTS declares the loopback server as a Vertex AI / Gemini API endpoint).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from google import genai as google_genai
from google.genai import errors as google_errors
from google.genai import types
from google.oauth2.credentials import Credentials

import privsdk
from privsdk import genai
from privsdk.outbound.judge import Guard
from privsdk.outbound.transport import is_guarded
from tests.wire.server import Drip, LoopbackServer, Recorded, Reply, Status, json_reply
from tests.wire.vertex import API_KEY, TOKEN, GeminiApp

PROJECT = "acme-prod"
LOCATION = "europe-west4"
MODEL = "gemini-2.5-flash"
#: What a user wrote: no refusal message, exception chain or usage record may hold it.
PROMPT = "my card number is 4242 4242 4242 4242"
ZDR = {"PRIVSDK_REQUIRE": "zdr", "PRIVSDK_ATTEST": "vertex:abuse_monitoring_exception,vertex:caching_disabled"}
SEARCH = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
#: The search tool added as raw body fields, past the SDK's own types.
SEARCH_BODY: dict[str, Any] = {"tools": [{"googleSearch": {}}]}
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="The weather in a city",
            parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}},
        )
    ]
)


class Env:
    """The loopback server, declared as the endpoint of both offerings, and the usage records written."""

    def __init__(self, server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch):
        self.server, self.usage, self.monkeypatch = server, usage, monkeypatch

    def set(self, **env: str) -> None:
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)
        Guard.reset_default()

    def records(self) -> list[dict[str, Any]]:
        Guard.default().flush(5)
        if not self.usage.exists():
            return []
        return [json.loads(line) for line in self.usage.read_text().splitlines() if line]

    def vertex(self, module: Any = genai, *, base_url: str | None = None, **http: Any) -> Any:
        """A Vertex AI client of ``module`` that sends to ``base_url`` (the loopback server's by default)."""
        return module.Client(
            vertexai=True,
            project=PROJECT,
            location=LOCATION,
            credentials=Credentials(token=TOKEN),  # type: ignore[no-untyped-call]
            http_options=types.HttpOptions(base_url=base_url or self.server.url, **http),
        )

    def gemini(self, module: Any = genai) -> Any:
        return module.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=self.server.url))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
                 "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_HTTP_CLIENT", "GOOGLE_GENAI_API_VERSION"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    with LoopbackServer(GeminiApp()) as server:
        usage = tmp_path / "usage.jsonl"
        url = server.url
        endpoints = f"{url}/v1beta1=vertex.gemini,{url}/v1beta=gemini.api,{url}/upload=gemini.api"
        state = Env(server, usage, monkeypatch)
        state.set(PRIVSDK_ENDPOINTS=endpoints, PRIVSDK_USAGE=f"jsonl://{usage}")
        yield state
        assert server.errors == []


# -- allowed requests --------------------------------------------------------------------------------


def test_allowed_requests_are_sent_and_recorded_with_operation_and_tokens(env: Env) -> None:
    env.set(**ZDR)
    client = env.vertex()
    answer = client.models.generate_content(model=MODEL, contents=PROMPT)
    streamed = "".join(c.text or "" for c in client.models.generate_content_stream(model=MODEL, contents=PROMPT))
    vectors = client.models.embed_content(model="text-embedding-005", contents=["a b", "c"])
    assert answer.text == streamed == "Hello from Gemini on loopback"
    assert vectors.embeddings is not None and len(vectors.embeddings) == 2
    assert len(env.server.requests) == 3
    records = env.records()
    assert [(r["operation"], r["outcome"], r["input_tokens"], r["output_tokens"]) for r in records] == [
        ("chat", "ok", 8, 5),
        ("stream", "ok", 8, 5),
        ("embed", "ok", 3, None),
    ]
    assert {r["model"] for r in records} == {MODEL, "text-embedding-005"}
    assert PROMPT not in env.usage.read_text()


def test_async_requests_pass_the_guard_too(env: Env) -> None:
    env.set(**ZDR)
    client = env.vertex()

    async def main() -> tuple[str | None, str]:
        answer = await client.aio.models.generate_content(model=MODEL, contents=PROMPT)
        chunks = await client.aio.models.generate_content_stream(model=MODEL, contents=PROMPT)
        return answer.text, "".join([c.text or "" async for c in chunks])

    assert asyncio.run(main()) == ("Hello from Gemini on loopback",) * 2
    records = env.records()
    assert [(r["operation"], r["input_tokens"], r["output_tokens"]) for r in records] == [
        ("chat", 8, 5),
        ("stream", 8, 5),
    ]
    with pytest.raises(genai.PolicyViolation):
        asyncio.run(client.aio.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH))
    assert len(env.server.requests) == 2


def test_the_sdks_own_retries_stay_as_the_app_set_them(env: Env) -> None:
    retry = types.HttpRetryOptions(attempts=2, initial_delay=0.01, max_delay=0.02)
    client = env.vertex(retry_options=retry)
    env.server.fail(Status(429, body=b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}'))
    assert client.models.generate_content(model=MODEL, contents="hi").text == "Hello from Gemini on loopback"
    assert len(env.server.requests) == 2


# -- refusals ----------------------------------------------------------------------------------------


def test_a_refusal_sends_nothing_and_is_both_privsdk_and_google_genai_error(env: Env) -> None:
    env.set(**ZDR)
    client = env.vertex()
    with pytest.raises(google_errors.APIError) as caught:
        client.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH)
    error = caught.value
    assert isinstance(error, privsdk.PolicyViolation) and isinstance(error, google_errors.ClientError)
    assert (error.code, error.status, error.response) == (403, "PERMISSION_DENIED", None)
    assert error.decision.outcome == "refuse" and [u.requirement for u in error.decision.unmet] == ["zdr"]
    assert env.server.requests == []
    text = f"{error} {error.details} {error.message} {error.__cause__!r} {error.__context__!r}"
    assert "4242" not in text
    (record,) = env.records()
    assert (record["outcome"], record["decision"], record["operation"], record["unmet"]) == (
        "refused",
        "refuse",
        "chat",
        ["zdr"],
    )
    assert PROMPT not in env.usage.read_text()


def test_a_refusal_is_never_retried_even_when_the_app_retries_403(env: Env) -> None:
    env.set(**ZDR)
    retry = types.HttpRetryOptions(attempts=4, http_status_codes=[403], initial_delay=0.01, max_delay=0.02)
    client = env.vertex(retry_options=retry)
    with pytest.raises(genai.PolicyViolation):
        client.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH)
    with pytest.raises(genai.PolicyViolation):
        asyncio.run(client.aio.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH))
    assert env.server.requests == []
    assert [r["outcome"] for r in env.records()] == ["refused", "refused"]


def test_a_refusal_is_never_retried_by_retry_options_given_per_request(env: Env) -> None:
    """Retry options in a request's own ``http_options`` make google-genai build a retrier for that call alone:
    it must not retry a refusal either, while it still retries what the app listed, and a client privsdk did
    not guard keeps retrying as google-genai does."""
    env.set(**ZDR)
    retry = types.HttpRetryOptions(attempts=4, http_status_codes=[403], initial_delay=0.01, max_delay=0.02)
    per_request = types.HttpOptions(retry_options=retry)
    searching = types.GenerateContentConfig(tools=SEARCH.tools, http_options=per_request)
    client = env.vertex()
    with pytest.raises(genai.PolicyViolation):
        client.models.generate_content(model=MODEL, contents=PROMPT, config=searching)
    with pytest.raises(genai.PolicyViolation):
        asyncio.run(
            client.aio.models.generate_content(
                model=MODEL, contents=PROMPT, config={"tools": SEARCH.tools, "http_options": {"retry_options": retry}}
            )
        )
    assert env.server.requests == []
    assert [r["outcome"] for r in env.records()] == ["refused", "refused"]

    denied = Status(403, body=b'{"error": {"code": 403, "status": "PERMISSION_DENIED"}}')
    env.server.fail(denied, denied)  # Google's own 403s: retried as the app asked, by the same guarded client
    plain = {"http_options": per_request}
    answer = client.models.generate_content(model=MODEL, contents="hi", config=plain)
    assert answer.text == "Hello from Gemini on loopback" and len(env.server.requests) == 3
    env.server.fail(denied, denied)
    answer = asyncio.run(client.aio.models.generate_content(model=MODEL, contents="hi", config=plain))
    assert answer.text == "Hello from Gemini on loopback" and len(env.server.requests) == 6

    env.server.fail(denied, denied)
    unguarded = env.vertex(google_genai)
    assert unguarded.models.generate_content(model=MODEL, contents="hi", config=plain).text
    assert len(env.server.requests) == 9


@pytest.mark.parametrize(
    ("feature", "config"),
    [
        ("grounding_maps", types.GenerateContentConfig(tools=[types.Tool(google_maps=types.GoogleMaps())])),
        ("prompt_caching", types.GenerateContentConfig(cached_content="projects/p/locations/l/cachedContents/1")),
        ("extra_body", types.GenerateContentConfig(http_options=types.HttpOptions(extra_body=SEARCH_BODY))),
    ],
)  # fmt: skip
def test_features_the_body_asks_for_are_judged(env: Env, feature: str, config: types.GenerateContentConfig) -> None:
    env.set(**ZDR)
    client = env.vertex()  # held: google-genai closes its connections when the client is collected
    with pytest.raises(genai.PolicyViolation):
        client.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    assert env.server.requests == []


#: Vertex AI's search tools run by a third party (Parallel.ai, Exa.ai): the SDK's camelCase, and snake_case in the body.
THIRD_PARTY_SEARCH = {
    "parallelAiSearch": types.GenerateContentConfig(
        tools=[types.Tool(parallel_ai_search=types.ToolParallelAiSearch())]
    ),
    "parallel_ai_search": types.GenerateContentConfig(
        http_options=types.HttpOptions(extra_body={"tools": [{"parallel_ai_search": {"api_key": "4242"}}]})
    ),
    "exaAiSearch": types.GenerateContentConfig(tools=[types.Tool(exa_ai_search=types.ToolExaAiSearch())]),
}


@pytest.mark.parametrize(("named", "config"), THIRD_PARTY_SEARCH.items(), ids=list(THIRD_PARTY_SEARCH))
def test_a_search_tool_run_by_a_third_party_is_refused_as_a_tool_the_catalogue_has_no_facts_for(
    env: Env, named: str, config: types.GenerateContentConfig
) -> None:
    """Vertex AI's Parallel.ai search tool was read as Google Search grounding, whose facts are Google's (kept 30
    days): under a requirement Vertex meets it was sent, handing the queries to a third party no source speaks of.
    Like Exa.ai's, it is a tool kind privsdk knows nothing of: refused before a byte, naming the tool and the fix."""
    env.set(PRIVSDK_REQUIRE="no_training")  # met by Vertex AI: only the unknown tool can refuse the call
    client = env.vertex()
    with pytest.raises(genai.PolicyViolation) as caught:
        client.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    message = str(caught.value)
    assert f"unknown tool kind {named}" in message and "leave the tool out" in message
    assert "4242" not in message
    assert env.server.requests == []
    assert client.models.generate_content(model=MODEL, contents=PROMPT).text == "Hello from Gemini on loopback"
    assert [r["outcome"] for r in env.records()] == ["refused", "ok"]


@pytest.mark.parametrize(
    ("requirement", "attest", "offered"),
    [
        ("region=eu", "vertex:region=eu", "any region (no residency promise)"),
        ("hipaa_baa", "vertex:baa", "unknown (sources silent or in conflict)"),
    ],
    ids=["region=eu", "hipaa_baa"],
)
def test_search_grounding_on_vertex_makes_no_residency_or_baa_promise(
    env: Env, requirement: str, attest: str, offered: str
) -> None:
    """No source says Grounding with Google Search keeps processing in the endpoint's region (Google lists data
    residency as unsupported for it) or that a BAA covers it: an EU endpoint attested region=eu, or a project under
    a BAA, sends a plain call and refuses one that grounds with Google Search, before a byte."""
    env.set(PRIVSDK_REQUIRE=requirement, PRIVSDK_ATTEST=attest)
    client = env.vertex()  # europe-west4, an EU location
    assert client.models.generate_content(model=MODEL, contents=PROMPT).text == "Hello from Gemini on loopback"
    with pytest.raises(genai.PolicyViolation) as caught:
        client.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH)
    (unmet,) = caught.value.decision.unmet
    assert (unmet.requirement, unmet.offered) == (requirement, offered)
    assert unmet.source == "https://docs.cloud.google.com/cloud-assist/configure-grounding"
    assert len(env.server.requests) == 1
    assert [r["outcome"] for r in env.records()] == ["ok", "refused"]


def test_operations_beyond_chat_are_refused_on_every_path_of_the_sdk(env: Env) -> None:
    """Uploads, caches, batches, the Live API's websocket: none is catalogued, all refused without a byte sent."""
    vertex, gemini = env.vertex(), env.gemini()
    attempts: list[Callable[[], object]] = [
        lambda: gemini.files.upload(file=io.BytesIO(PROMPT.encode()), config={"mime_type": "text/plain"}),
        lambda: vertex.caches.create(model=MODEL, config=types.CreateCachedContentConfig(contents=[PROMPT])),
        lambda: vertex.batches.create(model=MODEL, src="gs://bucket/requests.jsonl"),
    ]
    for attempt in attempts:
        with pytest.raises(genai.PolicyViolation):
            attempt()

    async def live() -> None:
        async with vertex.aio.live.connect(model="gemini-live-2.5-flash"):
            pass

    with pytest.raises(genai.PolicyViolation):
        asyncio.run(live())
    assert env.server.requests == []


# -- clients the app or the SDK built ---------------------------------------------------------------


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
def test_a_client_the_app_passes_is_guarded_in_place(env: Env, library: str) -> None:
    http = pytest.importorskip(library)
    env.set(**ZDR)
    sync, agen = http.Client(), http.AsyncClient()
    client = env.vertex(httpx_client=sync, httpx_async_client=agen)
    assert is_guarded(sync) and is_guarded(agen)
    assert client.models.generate_content(model=MODEL, contents="hi").text
    assert asyncio.run(client.aio.models.generate_content(model=MODEL, contents="hi")).text
    with pytest.raises(genai.PolicyViolation):
        client.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH)
    assert len(env.server.requests) == 2
    sync.close()


@pytest.mark.parametrize("backend", ["httpx", "httpx2"])
def test_the_sdks_own_clients_are_guarded_whichever_backend(env: Env, backend: str) -> None:
    """google-genai builds httpx2 clients by default, httpx ones when told (GOOGLE_GENAI_HTTP_CLIENT)."""
    pytest.importorskip(backend)
    env.set(GOOGLE_GENAI_HTTP_CLIENT=backend, **ZDR)
    client = env.vertex()
    api = client._api_client
    for http in (api._httpx_client, api._async_httpx_client):
        assert backend in {c.__module__.partition(".")[0] for c in type(http).__mro__}
        assert is_guarded(http)
    assert client.models.generate_content(model=MODEL, contents="hi").text
    assert asyncio.run(client.aio.models.generate_content(model=MODEL, contents="hi")).text
    with pytest.raises(genai.PolicyViolation):
        client.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH)
    with pytest.raises(genai.PolicyViolation):
        asyncio.run(client.aio.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH))
    assert len(env.server.requests) == 2


def test_guard_a_client_the_app_built(env: Env) -> None:
    env.set(**ZDR)
    client = env.vertex(google_genai)
    assert privsdk.guard(client) is client
    assert genai.guard_client(client) is client  # idempotent
    with pytest.raises(genai.PolicyViolation):
        client.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH)
    with pytest.raises(genai.PolicyViolation):
        asyncio.run(client.aio.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH))
    assert client.models.generate_content(model=MODEL, contents="hi").text
    assert len(env.server.requests) == 1
    with pytest.raises(TypeError):
        genai.guard_client(object())


def test_guarding_a_client_guards_the_per_loop_async_clients_it_already_built(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without aiohttp (google-genai's optional extra, which ``privsdk[vertex]`` does not install) the SDK sends
    async requests through one inner httpx2 client per event loop, cached on first use: one cached by an async call
    before ``privsdk.guard(client)`` sent the later async calls on that loop (``models``, ``interactions``) unjudged.
    """
    from google.genai import _api_client

    monkeypatch.setattr(_api_client, "has_aiohttp", False)  # an install without aiohttp, as far as the SDK knows
    env.set(**ZDR)
    client = env.vertex(google_genai)

    async def main() -> None:
        assert (await client.aio.models.generate_content(model=MODEL, contents="hi")).text  # unguarded, cached
        (cached,) = client._api_client._async_httpx_client._loop_clients.values()
        assert not is_guarded(cached)
        privsdk.guard(client)
        assert is_guarded(cached)
        with pytest.raises(genai.PolicyViolation):
            await client.aio.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH)
        with pytest.raises(genai.PolicyViolation):
            await client.aio.interactions.create(model=MODEL, input=PROMPT)  # stored by default
        assert (await client.aio.models.generate_content(model=MODEL, contents="hi")).text

    asyncio.run(main())
    assert len(env.server.requests) == 2
    assert PROMPT not in json.dumps([r.json() for r in env.server.requests])
    assert [r["outcome"] for r in env.records()] == ["refused", "refused", "ok"]


def _sync_client(client: Any) -> Any:
    return client._api_client._httpx_client


def test_instrument_guards_clients_the_sdk_builds_until_uninstrument(env: Env) -> None:
    env.set(**ZDR)
    privsdk.instrument()
    try:
        inside = env.vertex(google_genai)  # as a framework would build it
        assert type(inside) is google_genai.Client
        assert is_guarded(_sync_client(inside))
        with pytest.raises(genai.PolicyViolation):
            inside.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH)
    finally:
        privsdk.uninstrument()
    after = env.vertex(google_genai)
    assert not is_guarded(_sync_client(after))
    assert _sync_client(inside) is not _sync_client(after)
    assert env.server.requests == []


def test_the_sdks_base_api_client_reached_through_the_drop_in_is_guarded(env: Env) -> None:
    """``privsdk.genai.client.BaseApiClient`` was google-genai's own: ``genai.client.AsyncClient(genai.client.
    BaseApiClient(...))``, and the api client's own ``request``, sent unguarded; and a Live API websocket opened
    around a guarded api client by anything but ``client.aio.live`` connected unjudged. Under instrument(), the SDK's
    own BaseApiClient is guarded too."""
    env.set(**ZDR)
    assert genai.client.BaseApiClient is genai._api_client.BaseApiClient
    sdk_api_client: Any = google_genai._api_client.BaseApiClient  # google.genai.client's name for it
    assert issubclass(genai.client.BaseApiClient, sdk_api_client)
    options: Any = {"api_key": API_KEY, "http_options": types.HttpOptions(base_url=env.server.url)}
    api = genai.client.BaseApiClient(**options)
    with pytest.raises(genai.PolicyViolation):
        asyncio.run(genai.client.AsyncClient(api).models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH))
    with pytest.raises(genai.PolicyViolation):
        api.request("post", f"models/{MODEL}:generateContent", {"contents": [{"parts": [{"text": PROMPT}]}]})

    async def live(opened: Any) -> None:  # the Live API's websocket: judged before it connects, or not at all
        async with opened.connect(model="gemini-live-2.5-flash"):
            pass

    with pytest.raises(genai.PolicyViolation):
        asyncio.run(live(genai.client.AsyncClient(api).live))
    # Whatever opens the websocket around a guarded api client (the SDK's own AsyncClient, AsyncLive or
    # AsyncLiveMusic): it takes its URL from the api client, which has the guard judge it first.
    guarded = env.gemini()._api_client
    for opened in (google_genai.client.AsyncClient(guarded).live, genai.live.AsyncLive(guarded)):
        with pytest.raises(genai.PolicyViolation):
            asyncio.run(live(opened))

    async def music() -> None:
        async with genai.live_music.AsyncLiveMusic(guarded).connect(model="lyria-realtime-exp"):
            pass

    with pytest.warns(Warning), pytest.raises(genai.PolicyViolation):  # the SDK warns that music is experimental
        asyncio.run(music())
    privsdk.instrument()
    try:
        raw = google_genai.client.AsyncClient(sdk_api_client(**options))
        with pytest.raises(genai.PolicyViolation):
            asyncio.run(raw.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH))
        with pytest.raises(genai.PolicyViolation):
            asyncio.run(live(google_genai.client.AsyncClient(sdk_api_client(**options)).live))
    finally:
        privsdk.uninstrument()
    assert not is_guarded(sdk_api_client(**options)._httpx_client)
    assert env.server.requests == []


@pytest.mark.parametrize("prefix", ["/gemini", "/v1/acc-1/gw-1/google-ai-studio"])
def test_a_gateway_with_a_path_prefix_is_judged_and_sent(env: Env, prefix: str) -> None:
    """Behind a gateway declared with a path (docs/guard.md), every google-genai request was refused as an
    "unknown path shape /gemini/..." where the other SDKs' were read; now it is judged as without the prefix. A
    prefix that opens with a version of its own (Cloudflare AI Gateway's) was read as the API's version, and refused."""
    app = GeminiApp()

    def gateway(request: Recorded) -> Any:  # drops its prefix and forwards, as a gateway does
        return app(request._replace(path=request.path.removeprefix(prefix)))

    with LoopbackServer(gateway) as server:
        env.set(PRIVSDK_ENDPOINTS=f"{server.url}{prefix}=gemini.api")
        client = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=server.url + prefix))
        assert client.models.generate_content(model=MODEL, contents=PROMPT).text == app.text
        (sent,) = [r.path for r in server.requests]
        assert sent.startswith(f"{prefix}/v1") and sent.endswith(f"/models/{MODEL}:generateContent")
        env.set(PRIVSDK_REQUIRE="zdr")  # the Gemini API offers no ZDR: refused as any Gemini API request is
        with pytest.raises(genai.PolicyViolation, match="unmet: zdr"):
            client.models.generate_content(model=MODEL, contents=PROMPT)
        assert len(server.requests) == 1


def test_an_aiohttp_session_the_app_passes_is_a_configuration_error_not_passed_over(env: Env) -> None:
    """A guarded client sends through its guarded httpx clients only: an ``aiohttp_client`` in ``HttpOptions`` was
    ignored without a word (its default headers never sent, its trace hooks never called)."""
    import aiohttp

    async def build() -> None:
        async with aiohttp.ClientSession(headers={"x-app": "1"}) as session:
            options = types.HttpOptions(base_url=env.server.url, aiohttp_client=session)
            with pytest.raises(privsdk.ConfigError, match=r"HttpOptions\.aiohttp_client.*httpx_async_client="):
                genai.Client(api_key=API_KEY, http_options=options)
            google_genai.Client(api_key=API_KEY, http_options=options)  # the SDK's own takes it, unguarded

    asyncio.run(build())
    assert env.server.requests == []


# -- conformance -------------------------------------------------------------------------------------


def _public(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


@pytest.mark.filterwarnings("ignore:.*usage is experimental:UserWarning")
def test_the_drop_in_has_every_public_attribute_of_the_sdk_client(env: Env) -> None:
    theirs, ours = env.vertex(google_genai), env.vertex()
    assert isinstance(ours, google_genai.Client)
    assert _public(theirs) <= _public(ours)
    for name in sorted(_public(theirs)):
        a, b = getattr(theirs, name), getattr(ours, name)
        assert type(a) is type(b) or isinstance(b, type(a)), name
        if type(a).__module__.startswith("google.genai"):
            assert _public(a) <= _public(b), name
            for inner in _public(a):
                child = getattr(a, inner)
                if type(child).__module__.startswith("google.genai") and not callable(child):
                    assert _public(child) <= _public(getattr(b, inner)), f"{name}.{inner}"


def test_the_face_module_replaces_google_genai() -> None:
    assert genai.types is types and genai.errors is google_errors
    assert genai.version is google_genai.version and genai.__version__ == google_genai.__version__
    assert issubclass(genai.Client, google_genai.Client)
    assert set(dir(google_genai)) <= set(dir(genai))
    for name in google_genai.__all__:
        if name != "Client" and hasattr(google_genai, name):  # google-genai lists "voices" but has no such module
            assert getattr(genai, name) is getattr(google_genai, name)


def _script(genai_module: Any, env: Env) -> list[Any]:
    """An app written against google-genai: plain call, stream, chat session, a tool loop, embeddings, async."""
    client = env.vertex(genai_module)
    out: list[Any] = []
    config = types.GenerateContentConfig(temperature=0.2, max_output_tokens=64, system_instruction="Be brief")
    answer = client.models.generate_content(model=MODEL, contents="Say hello", config=config)
    usage = answer.usage_metadata
    assert usage is not None and answer.sdk_http_response is not None
    out.append(
        (answer.text, usage.prompt_token_count, usage.candidates_token_count, answer.candidates[0].finish_reason)
    )
    out.append(answer.sdk_http_response.headers.get("content-type"))
    out.append([c.text for c in client.models.generate_content_stream(model=MODEL, contents="Say hello")])
    chat = client.chats.create(model=MODEL)
    out.append((chat.send_message("hi").text, chat.send_message("again").text, len(chat.get_history())))
    app = env.server.app
    assert isinstance(app, GeminiApp)
    app.calls = [{"name": "get_weather", "args": {"city": "Paris"}}]
    no_afc = types.AutomaticFunctionCallingConfig(disable=True)
    tools = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=no_afc)
    contents: list[Any] = [types.Content(role="user", parts=[types.Part.from_text(text="Weather in Paris?")])]
    first = client.models.generate_content(model=MODEL, contents=contents, config=tools)
    assert first.function_calls and first.candidates and first.candidates[0].content
    call = first.function_calls[0]
    contents.append(first.candidates[0].content)
    result = types.Part.from_function_response(name=call.name or "", response={"temperature": 21})
    contents.append(types.Content(role="user", parts=[result]))
    second = client.models.generate_content(model=MODEL, contents=contents, config=tools)
    out.append((call.name, call.args, second.text))
    app.calls = []
    vectors = client.models.embed_content(model="text-embedding-005", contents=["alpha", "beta gamma"])
    out.append([e.values for e in vectors.embeddings or []])
    env.server.fail(Status(400, body=b'{"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}'))
    try:
        client.models.generate_content(model=MODEL, contents="hi")
    except genai_module.errors.ClientError as exc:
        out.append((type(exc).__name__, exc.code, exc.status))

    async def main() -> Any:
        answer = await client.aio.models.generate_content(model=MODEL, contents="Say hello")
        chunks = await client.aio.models.generate_content_stream(model=MODEL, contents="Say hello")
        return answer.text, [c.text async for c in chunks]

    out.append(asyncio.run(main()))
    return out


def test_a_script_runs_unchanged_with_only_the_import_swapped(env: Env) -> None:
    theirs = _script(google_genai, env)
    sent = [(r.method, r.path, r.body) for r in env.server.requests]
    env.server.requests.clear()
    ours = _script(genai, env)
    assert ours == theirs
    assert [(r.method, r.path, r.body) for r in env.server.requests] == sent
    assert len(env.records()) == len(sent)  # one record per request the drop-in sent (the 400 included)


# -- the cases of issue 9: the location decides the host, the host decides the region -----------------


@pytest.mark.parametrize(
    ("location", "unmet"),
    [
        ("global", ["region=eu", "hipaa_baa"]),
        ("us-central1", ["region=eu", "hipaa_baa"]),
        ("europe-west4", ["hipaa_baa"]),
        ("eu", ["hipaa_baa"]),  # aiplatform.eu.rep.googleapis.com
    ],
)
def test_the_host_the_sdk_picks_for_a_location_decides_the_region(
    env: Env, monkeypatch: pytest.MonkeyPatch, location: str, unmet: list[str]
) -> None:
    """A ``region=eu`` attestation holds only where the request really goes. Every case is refused (no BAA), so
    nothing leaves the loopback machine; what is unmet shows where the guard placed the request."""
    env.set(PRIVSDK_REQUIRE="region=eu,hipaa_baa", PRIVSDK_ATTEST="vertex:region=eu", PRIVSDK_ENDPOINTS="")
    client = genai.Client(
        vertexai=True,
        project=PROJECT,
        location=location,
        credentials=Credentials(token=TOKEN),  # type: ignore[no-untyped-call]
        http_options=types.HttpOptions(timeout=1000),
    )
    with pytest.raises(genai.PolicyViolation) as caught:
        client.models.generate_content(model=MODEL, contents=PROMPT)
    assert [u.requirement for u in caught.value.decision.unmet] == unmet
    # the same location from the SDK's own environment variable
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", location)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    from_env = genai.Client(vertexai=True, credentials=Credentials(token=TOKEN))  # type: ignore[no-untyped-call]
    with pytest.raises(genai.PolicyViolation) as caught:
        from_env.models.generate_content(model=MODEL, contents=PROMPT)
    assert [u.requirement for u in caught.value.decision.unmet] == unmet


def test_an_undeclared_base_url_is_refused_whatever_is_attested(env: Env) -> None:
    env.set(PRIVSDK_ENDPOINTS="", PRIVSDK_REQUIRE="no_training", PRIVSDK_ATTEST="vertex:region=eu")
    client = env.vertex()
    with pytest.raises(genai.PolicyViolation, match="not an endpoint privsdk knows"):
        client.models.generate_content(model=MODEL, contents=PROMPT)
    assert env.server.requests == []


def test_a_guard_given_to_guard_client_replaces_the_one_a_client_had(env: Env) -> None:
    client = env.vertex()  # guarded by the process-wide guard, which requires nothing
    assert client.models.generate_content(model=MODEL, contents="hi").text
    declared = f"{env.server.url}/v1beta1=vertex.gemini"
    strict = Guard(environ={**ZDR, "PRIVSDK_ENDPOINTS": declared, "PRIVSDK_USAGE": "none"})
    assert genai.guard_client(client, guard=strict) is client
    with pytest.raises(genai.PolicyViolation):
        client.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH)
    with pytest.raises(genai.PolicyViolation):
        asyncio.run(client.aio.models.generate_content(model=MODEL, contents=PROMPT, config=SEARCH))
    assert len(env.server.requests) == 1


def test_the_interactions_api_stores_by_default_and_is_refused_under_zdr(env: Env) -> None:
    """``client.interactions`` (google-genai's newer resource, its own generated client on the same httpx
    clients): ``store`` is on unless the request turns it off, and the stored state has no stated retention."""
    env.set(**ZDR)
    client = env.vertex()
    with pytest.raises(genai.PolicyViolation):
        client.interactions.create(model=MODEL, input=PROMPT)
    with pytest.raises(genai.PolicyViolation):
        client.interactions.create(model=MODEL, input=PROMPT, store=True, tools=[{"type": "google_search"}])
    assert env.server.requests == []
    assert [r["outcome"] for r in env.records()] == ["refused", "refused"]


def _endpoint_app(request: Recorded) -> Reply:
    """A loopback Vertex AI endpoint (``endpoints/{id}:generateContent``): answers as the model deployed there."""
    if request.method != "POST" or not request.path.endswith(":generateContent") or "/endpoints/" not in request.path:
        raise ValueError(f"{request.method} {request.path}")
    answer = {"role": "model", "parts": [{"text": "from the endpoint"}]}
    return json_reply({"candidates": [{"content": answer, "finishReason": "STOP"}]})


@pytest.mark.parametrize("endpoint", ["gemini-support-llama-vllm", "1234567890"])
def test_a_vertex_endpoint_is_judged_by_the_target_that_names_it_never_by_its_id(
    env: Env, tmp_path: Path, endpoint: str
) -> None:
    """A Vertex AI endpoint is the customer's own deployment, whose ID its owner chose: one named ``gemini-...`` (vLLM
    serving Llama, say) was judged as Google's Gemini, whose EU processing was attested, and sent. It is judged
    through a target that names it, or refused, whatever its ID looks like."""
    path = f"projects/{PROJECT}/locations/{LOCATION}/endpoints/{endpoint}"
    eu = {"PRIVSDK_REQUIRE": "region=eu"}
    with LoopbackServer(_endpoint_app) as server:
        env.set(**eu, PRIVSDK_ATTEST="vertex:region=eu", PRIVSDK_ENDPOINTS=f"{server.url}/v1beta1=vertex.gemini")
        client = env.vertex(base_url=server.url)
        with pytest.raises(genai.PolicyViolation) as caught:
            client.models.generate_content(model=path, contents=PROMPT)
        assert f"deployment = '{endpoint}'" in str(caught.value) and "4242" not in str(caught.value)
        assert server.requests == []
        # The tenant names the endpoint, what it runs (a tuned Gemini, here) and what is attested for it: judged as
        # that target, and sent.
        config = tmp_path / "privsdk.toml"
        config.write_text(
            f'[targets.support]\noffering = "vertex.gemini"\nmodel = "{MODEL}"\ndeployment = "{endpoint}"\n'
            f'project = "{PROJECT}"\nregion = "{LOCATION}"\nattest = ["region=eu"]\n',
            encoding="utf-8",
        )
        env.set(**eu, PRIVSDK_ATTEST="", PRIVSDK_CONFIG=str(config))
        genai.guard_client(client, guard=Guard.default())
        assert client.models.generate_content(model=path, contents="hi").text == "from the endpoint"
        assert [r.path.rsplit("/", 1)[1] for r in server.requests] == [f"{endpoint}:generateContent"]
        assert server.errors == []


def test_a_guarded_client_connects_to_no_agent_platform_mcp_server(env: Env) -> None:
    """google-genai connects to an Agent Platform MCP server (an mcp_servers tool, on Vertex AI) with an httpx client
    it builds for the connection, beside the guarded ones, and calls its tools with the model's arguments: the
    connection is refused before it opens, and recorded so."""
    env.set(**ZDR)
    client = env.vertex()
    tools = types.GenerateContentConfig(tools=[types.Tool(mcp_servers=[types.McpServer(name="bigquery")])])
    with pytest.raises(genai.PolicyViolation) as caught:
        asyncio.run(client.aio.models.generate_content(model=MODEL, contents=PROMPT, config=tools))
    assert "4242" not in str(caught.value)
    assert env.server.requests == []
    assert [r["outcome"] for r in env.records()] == ["refused"]


def _interactions_app(request: Recorded) -> Reply:
    """A loopback Interactions API: answers a created interaction, and takes nothing else."""
    if request.method != "POST" or not request.path.endswith("/interactions"):
        raise ValueError(f"{request.method} {request.path}")
    return json_reply({"id": "i1", "status": "completed", "outputs": []})


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"response_format": {"type": "audio"}}, "audio_output"),  # the field that replaces response_modalities
        ({"response_format": [{"type": "text"}, {"type": "image", "delivery": "uri"}]}, "delivery"),  # kept media
        ({"cached_content": "cachedContents/abc"}, "unmet: zdr"),  # an explicit context cache: prompt_caching
        ({"environment": {"type": "remote"}}, "hosted_tools"),  # a sandbox at Google
        ({"generation_config": {"speech_config": {"voice": "Kore"}}}, "audio_output"),
        ({"extra_body": {"webhook_config": {"uris": ["https://hooks.example/4242"]}}}, "webhook_config"),  # not read
        ({"response_modalities": ["video"]}, "output modality"),  # no feature names video output: it was sent
        ({"response_modalities": ["text", "document"]}, "output modality"),
    ],
    ids=[
        "response_format audio",
        "image by uri",
        "cached_content",
        "environment",
        "speech_config",
        "unknown field",
        "video modality",
        "document modality",
    ],
)
def test_interaction_fields_that_keep_log_or_run_something_are_refused_before_a_byte(
    env: Env, fields: dict[str, Any], why: str
) -> None:
    """Each field the Interactions API takes that makes Google keep content, or run its tools, is read (or, not
    being read, refuses the request), though ``store`` is off; the refusal names a field, never a value."""
    # Declared at the origin: behind a path prefix, a body the reader refuses is reported by the route after it.
    env.set(**ZDR, PRIVSDK_ENDPOINTS=f"{env.server.url}=vertex.gemini")
    client = env.vertex()
    with pytest.raises(genai.PolicyViolation) as caught:
        client.interactions.create(model=MODEL, input=PROMPT, store=False, **fields)
    assert env.server.requests == []
    assert why in str(caught.value) and "4242" not in str(caught.value)
    assert [r["outcome"] for r in env.records()] == ["refused"]


def test_an_ordinary_interaction_without_store_is_sent(env: Env) -> None:
    """The allow-list of interaction fields lets google-genai's ordinary requests through."""
    with LoopbackServer(_interactions_app) as server:
        env.set(**ZDR, PRIVSDK_ENDPOINTS=f"{server.url}/v1beta1=vertex.gemini")
        client = env.vertex(base_url=server.url)
        interaction = client.interactions.create(
            model=MODEL,
            input=PROMPT,
            store=False,
            system_instruction="be brief",
            generation_config={"temperature": 0.2, "max_output_tokens": 64},
            response_format={"type": "text", "mime_type": "application/json", "schema": {"type": "object"}},
            tools=[{"type": "function", "name": "get_weather"}],
        )
        assert getattr(interaction, "id", None) == "i1"  # an Interaction, not a stream
        (sent,) = server.requests
        assert server.errors == []
    assert sent.path.endswith("/interactions")
    assert {"store", "system_instruction", "generation_config", "response_format", "tools"} <= set(sent.json())
    assert [r["outcome"] for r in env.records()] == ["ok"]


@pytest.mark.parametrize(
    ("api", "model", "contents"),
    [
        ("vertex", "text-embedding-005", ["a b", "c"]),  # :predict
        ("vertex", "gemini-embedding-001", "a b"),  # :embedContent
        ("vertex", "gemini-embedding-001", ["a b", "c"]),  # :batchEmbedContents
        ("gemini", "gemini-embedding-001", ["a b", "c"]),  # the Gemini API's :batchEmbedContents
    ],
    ids=["vertex predict", "vertex embedContent", "vertex batchEmbedContents", "gemini batchEmbedContents"],
)
@pytest.mark.parametrize(
    "extra",
    [
        {"cachedContent": "cachedContents/4242"},
        {"store": True},
        {"someFutureField": {"destination": "bq://4242"}},
    ],
    ids=["cachedContent", "store", "unknown field"],
)
def test_embedding_bodies_are_read_and_a_field_not_read_is_refused_before_a_byte(
    env: Env, api: str, model: str, contents: Any, extra: dict[str, Any]
) -> None:
    """An embedding body was not read at all: ``cachedContent``, ``store`` or any field in ``extra_body`` went out,
    where generate_content refuses it. The fields google-genai sends pass; any other is refused, named, its value
    never shown."""
    url = env.server.url
    env.set(PRIVSDK_ENDPOINTS=f"{url}/v1beta1=vertex.gemini,{url}/v1=gemini.api")  # google-genai's Gemini API: v1
    client = env.vertex() if api == "vertex" else env.gemini()
    options: dict[str, Any] = {"task_type": "RETRIEVAL_DOCUMENT", "output_dimensionality": 3, "title": "doc"}
    if api == "vertex":
        options["auto_truncate"] = True
    ordinary = types.EmbedContentConfig(**options)
    with pytest.raises(genai.PolicyViolation) as caught:
        client.models.embed_content(
            model=model, contents=contents, config=ordinary.model_copy(update={"http_options": {"extra_body": extra}})
        )
    assert next(iter(extra)) in str(caught.value) and "4242" not in str(caught.value)
    assert env.server.requests == []
    answer = client.models.embed_content(model=model, contents=contents, config=ordinary)
    assert answer.embeddings is not None and len(answer.embeddings) == (1 if isinstance(contents, str) else 2)
    assert len(env.server.requests) == 1
    assert [r["outcome"] for r in env.records()] == ["refused", "ok"]


def test_store_on_generate_content_is_request_logging(env: Env) -> None:
    """``GenerateContentConfig(store=True)`` turns on per-request logging at the Gemini API: refused where the
    offering's guarantees say nothing of such logs; ``store=False`` asks for nothing and is sent."""
    url = env.server.url
    env.set(PRIVSDK_ENDPOINTS=f"{url}=gemini.api", PRIVSDK_REQUIRE="no_training,max_retention_days=60")
    env.set(PRIVSDK_ATTEST="gemini:plan=paid")
    gemini = env.gemini()
    with pytest.raises(genai.PolicyViolation) as caught:
        gemini.models.generate_content(model=MODEL, contents=PROMPT, config=types.GenerateContentConfig(store=True))
    assert "request_response_logging" in str(caught.value)
    assert env.server.requests == []
    answer = gemini.models.generate_content(
        model=MODEL, contents=PROMPT, config=types.GenerateContentConfig(store=False)
    )
    assert answer.text == "Hello from Gemini on loopback"
    (sent,) = env.server.requests
    assert sent.json()["store"] is False

    # On Vertex (where google-genai will not send it, but extra_body can) the logging's BigQuery table is kept
    # until deleted: refused under zdr. So is a field privsdk does not read (outputConfig: media to Cloud Storage).
    env.set(**ZDR, PRIVSDK_ENDPOINTS=f"{url}=vertex.gemini")
    vertex = env.vertex()
    store = types.GenerateContentConfig(http_options=types.HttpOptions(extra_body={"store": True}))
    output = types.GenerateContentConfig(
        generation_output_config=types.GenerationOutputConfig(output_uri_prefix="gs://bucket/4242/")
    )
    for config, why in ((store, "unmet: zdr"), (output, "outputConfig")):
        with pytest.raises(genai.PolicyViolation) as caught:
            vertex.models.generate_content(model=MODEL, contents=PROMPT, config=config)
        assert why in str(caught.value) and "4242" not in str(caught.value)
    assert len(env.server.requests) == 1


# -- privsdk.Client's Vertex adapter sends through the same guard ---------------------------------------


def test_client_extra_fields_cannot_slip_features_past_the_guard(env: Env, tmp_path: Path) -> None:
    """Issue 9: ``extra={"tools": [{"googleSearch": {}}]}`` and ``cachedContent`` went out under a zdr tenant."""
    from privsdk import Client
    from privsdk.config import load_policy

    config = tmp_path / "privsdk.toml"
    config.write_text(
        f"""
[targets.gemini-eu]
offering = "vertex.gemini"
model = "{MODEL}"
project = "{PROJECT}"
region = "{LOCATION}"
endpoint = "{env.server.url}"
attest = ["abuse_monitoring_exception", "caching_disabled"]

[tenants.strict]
classes.default = ["zdr"]
""",
        encoding="utf-8",
    )
    policy = load_policy({"PRIVSDK_CONFIG": str(config)})
    client = Client(policy=policy, usage="none", credentials={"vertex": {"access_token": TOKEN}}, timeout=5.0)
    try:
        assert client.chat("gemini-eu", "hello", tenant="strict").text == "Hello from Gemini on loopback"
        extras: list[dict[str, Any]] = [SEARCH_BODY, {"cachedContent": "projects/p/cachedContents/1"}]
        for extra in extras:
            with pytest.raises(privsdk.PolicyViolation) as caught:
                client.chat("gemini-eu", PROMPT, tenant="strict", extra=extra)
            assert isinstance(caught.value, genai.PolicyViolation)  # the transport's guard refused it, unchanged
    finally:
        client.close()
    assert len(env.server.requests) == 1


def test_streams_and_chat_sessions_are_refused_before_they_send(env: Env) -> None:
    env.set(**ZDR)
    client = env.vertex()
    with pytest.raises(genai.PolicyViolation):
        list(client.models.generate_content_stream(model=MODEL, contents=PROMPT, config=SEARCH))

    async def astream() -> None:
        async for _ in await client.aio.models.generate_content_stream(model=MODEL, contents=PROMPT, config=SEARCH):
            pass

    with pytest.raises(genai.PolicyViolation):
        asyncio.run(astream())
    with pytest.raises(genai.PolicyViolation):
        client.chats.create(model=MODEL, config=SEARCH).send_message(PROMPT)
    assert env.server.requests == []
    assert [(r["operation"], r["outcome"]) for r in env.records()] == [
        ("stream", "refused"),
        ("stream", "refused"),
        ("chat", "refused"),
    ]


# -- how an answer ended ------------------------------------------------------------------------------


def test_a_stream_closed_before_its_last_chunk_is_cancelled_though_every_chunk_had_counts(env: Env) -> None:
    """Gemini sends usageMetadata on every chunk: only the last chunk's finishReason says the answer was whole.
    A stream the app stops reading is recorded cancelled; one read to its end, ok (Vertex AI, Gemini API, async)."""
    app = env.server.app
    assert isinstance(app, GeminiApp)
    app.text = "one two three four five six seven eight nine ten"
    app.chunks = 5
    env.set(PRIVSDK_ENDPOINTS=f"{env.server.url}/v1beta1=vertex.gemini,{env.server.url}/v1=gemini.api")

    async def early_async(client: Any) -> str | None:
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents=PROMPT)
        first = await stream.__anext__()
        await stream.aclose()
        return first.text  # type: ignore[no-any-return]

    for client in (env.vertex(), env.gemini()):
        env.server.fail(Drip(0.3))  # the next chunk comes well after the app has let go
        stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
        assert next(iter(stream)).text == "one two t"
        stream.close()
        whole = "".join(c.text or "" for c in client.models.generate_content_stream(model=MODEL, contents=PROMPT))
        assert whole == app.text
        env.server.fail(Drip(0.3))
        assert asyncio.run(early_async(client)) == "one two t"
    assert [(r["outcome"], r["input_tokens"], r["output_tokens"]) for r in env.records()] == [
        ("cancelled", 8, None),  # the counts of the chunks that came, and no more
        ("ok", 8, 10),
        ("cancelled", 8, None),
    ] * 2


# -- what an answer says it cost -----------------------------------------------------------------------------


@pytest.mark.parametrize("count", ["1e999", "-1e999", "100000000000000000000", "true"])
def test_a_count_that_is_no_count_never_fails_the_call_and_is_recorded_as_none(env: Env, count: str) -> None:
    """A Vertex AI embedding answer (or a proxy in front of it) with a token count of 1e999 (inf to JSON readers),
    far past any answer's, or true: the app gets its answer as the SDK reads it, and the record says none."""
    statistics = '"statistics": {"token_count": ' + count + "}"
    body = '{"predictions": [{"embeddings": {"values": [0.5, 0.25], ' + statistics + "}}]}"
    env.server.fail(Status(200, {"Content-Type": "application/json"}, body.encode()))
    client = env.vertex()
    vectors = client.models.embed_content(model="text-embedding-005", contents="a b")
    assert vectors.embeddings is not None and vectors.embeddings[0].values == [0.5, 0.25]
    assert [(r["operation"], r["outcome"], r["input_tokens"]) for r in env.records()] == [("embed", "ok", None)]
