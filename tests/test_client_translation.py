"""What privsdk.Client's call options become at each target, as its loopback stand-in receives them.

Each vendor's real SDK sends over real HTTP to its stand-in (tests/wire). A
named ``tool_choice`` and ``strict`` reach a target in its own API's shape or
are refused by name (Unsupported) before anything is sent; input that has no
meaning for a target (an ``input_type`` a model cannot take, one message where
a list is due, a json_schema without a schema) is never sent without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from privsdk.client import Client
from privsdk.config import load_policy
from privsdk.errors import InvalidArgument, InvalidInput, Unsupported
from privsdk.types import Message, ToolChoice
from tests.wire.bedrock import BedrockWire
from tests.wire.cohere import CohereApp
from tests.wire.mistral import MistralApp
from tests.wire.openai import OpenAIWire
from tests.wire.server import App, LoopbackServer
from tests.wire.vertex import API_KEY as GEMINI_KEY
from tests.wire.vertex import TOKEN as VERTEX_TOKEN
from tests.wire.vertex import GeminiApp

_BEDROCK = {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "x"}
#: target: (its wire app, the target's TOML lines, the endpoint's path, the vendor its credentials are for)
TARGETS: dict[str, tuple[Callable[[], App], str, str, str]] = {
    "openai": (lambda: OpenAIWire(key="k"), 'offering = "openai.api"\nmodel = "gpt-4o-mini"', "/v1", "openai"),
    "responses": (
        lambda: OpenAIWire(key="k"),
        'offering = "openai.api"\nmodel = "gpt-4o-mini"\noptions = { api = "responses" }',
        "/v1",
        "openai",
    ),
    "azure": (
        lambda: OpenAIWire(key="k"),
        'offering = "azure.openai"\nmodel = "gpt-4o"\napi_version = "2024-10-21"',
        "",
        "azure",
    ),
    "selfhosted": (lambda: OpenAIWire(key="k"), 'offering = "selfhosted.vllm"\nmodel = "llama"', "/v1", "selfhosted"),
    "cohere": (CohereApp, 'offering = "cohere.saas"\nmodel = "command-r-plus"', "", "cohere"),
    "mistral": (MistralApp, 'offering = "mistral.api"\nmodel = "mistral-small-latest"', "", "mistral"),
    "claude": (
        BedrockWire,
        'offering = "bedrock.runtime"\nmodel = "anthropic.claude-3-haiku-20240307-v1:0"\nregion = "eu-central-1"',
        "",
        "bedrock",
    ),
    "llama": (
        BedrockWire,
        'offering = "bedrock.runtime"\nmodel = "meta.llama3-70b-instruct-v1:0"\nregion = "eu-central-1"',
        "",
        "bedrock",
    ),
    "titan": (
        BedrockWire,
        'offering = "bedrock.runtime"\nmodel = "amazon.titan-embed-text-v2:0"\nregion = "eu-central-1"',
        "",
        "bedrock",
    ),
    "vertex": (
        GeminiApp,
        'offering = "vertex.gemini"\nmodel = "gemini-2.5-flash"\nproject = "p"\nregion = "europe-west4"',
        "",
        "vertex",
    ),
    "gemini": (GeminiApp, 'offering = "gemini.api"\nmodel = "gemini-2.5-flash"', "", "gemini"),
}
CREDENTIALS = {
    "openai": {"api_key": "k"},
    "azure": {"api_key": "k"},
    "selfhosted": {"api_key": "k"},
    "cohere": {"api_key": "k"},
    "mistral": {"api_key": "k"},
    "bedrock": _BEDROCK,
    "vertex": {"access_token": VERTEX_TOKEN},
    "gemini": {"api_key": GEMINI_KEY},
}
WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "get_weather", "description": "weather", "parameters": WEATHER},
}
STRICT_TOOL: dict[str, Any] = {"type": "function", "function": {**TOOL["function"], "strict": True}}
NAMED_FUNCTION = {"type": "function", "function": {"name": "get_weather"}}
NAMED: ToolChoice = NAMED_FUNCTION
SCHEMA = {"type": "object", "properties": {"t": {"type": "number"}}, "required": ["t"], "additionalProperties": False}

#: boto3 must see none of the machine's AWS configuration (tests.conftest.no_machine_aws).
pytestmark = pytest.mark.usefixtures("no_machine_aws")


class Target(NamedTuple):
    name: str
    client: Client
    server: LoopbackServer

    def sent(self) -> dict[str, Any]:
        """The one request body the stand-in received, which it took as the vendor would."""
        assert not self.server.errors, self.server.errors
        assert len(self.server.requests) == 1
        body: dict[str, Any] = self.server.requests[0].json()
        return body

    def refuses(self, error: type[Exception], call: Callable[[], Any]) -> str:
        """The message of ``error``, raised by ``call`` before anything was sent."""
        with pytest.raises(error) as raised:
            call()
        assert self.server.requests == []
        return str(raised.value)


@pytest.fixture
def target(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Target]:
    """A Client whose one target (named by the test's parameter) is served by its stand-in."""
    name = request.param
    make_app, lines, path, vendor = TARGETS[name]
    with LoopbackServer(make_app()) as server:
        config = tmp_path / "privsdk.toml"
        config.write_text(f'[targets.{name}]\n{lines}\nendpoint = "{server.url}{path}"\n', encoding="utf-8")
        policy = load_policy({"PRIVSDK_CONFIG": str(config)})
        client = Client(policy=policy, usage="none", credentials={vendor: CREDENTIALS[vendor]}, timeout=5.0)
        try:
            yield Target(name, client, server)
        finally:
            client.close()


def _tool_choice(body: dict[str, Any]) -> Any:
    return body["toolConfig"].get("toolChoice") if "toolConfig" in body else body.get("tool_choice")


# -- a tool_choice naming a function ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "shape"),
    [
        ("openai", NAMED),  # Chat Completions: as it is
        ("responses", {"type": "function", "name": "get_weather"}),  # the Responses API's flat shape
        ("claude", {"tool": {"name": "get_weather"}}),  # Converse's SpecificToolChoice
    ],
    indirect=["target"],
)
def test_a_named_tool_choice_reaches_the_target_in_its_own_shape(target: Target, shape: Any) -> None:
    answer = target.client.chat(target.name, "weather?", tools=[TOOL], tool_choice=NAMED, max_attempts=1)
    assert [call.name for call in answer.tool_calls] == ["get_weather"]
    assert _tool_choice(target.sent()) == shape


@pytest.mark.parametrize("target", ["llama", "mistral", "cohere", "vertex"], indirect=True)
def test_a_named_tool_choice_is_unsupported_where_the_target_cannot_take_it(target: Target) -> None:
    """Never dropped: without it the model is free to call no function."""
    target.refuses(Unsupported, lambda: target.client.chat(target.name, "weather?", tools=[TOOL], tool_choice=NAMED))


@pytest.mark.parametrize("target", ["openai", "responses", "claude"], indirect=True)
@pytest.mark.parametrize("choice", [{"type": "function"}, {"type": "function", "function": {}}, {"name": None}])
def test_a_malformed_named_tool_choice_is_invalid_input(target: Target, choice: Any) -> None:
    """Chat Completions targets were sent a tool_choice without a name as it was (the vendor's error came back)."""
    message = target.refuses(
        InvalidInput, lambda: target.client.chat(target.name, "weather?", tools=[TOOL], tool_choice=choice)
    )
    assert "tool_choice" in message


@pytest.mark.parametrize("target", ["openai"], indirect=True)
def test_a_named_tool_choice_carries_its_name_and_nothing_else(target: Target) -> None:
    """Keys of the app's mapping other than the function's name were sent on to the vendor."""
    choice: Any = {**NAMED_FUNCTION, "note": "what the app keeps beside it"}
    target.client.chat(target.name, "weather?", tools=[TOOL], tool_choice=choice, max_attempts=1)
    assert _tool_choice(target.sent()) == NAMED


# -- strict ----------------------------------------------------------------------------------------------------------


def _format(strict: bool | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "w", "schema": SCHEMA}
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def _sent_format(body: dict[str, Any]) -> dict[str, Any]:
    """The json_schema spec as sent: Chat Completions nest it, the Responses API has it flat under text.format."""
    fmt: dict[str, Any] = (
        body["response_format"]["json_schema"] if "response_format" in body else body["text"]["format"]
    )
    return fmt


@pytest.mark.parametrize("strict", [True, False, None])
@pytest.mark.parametrize("target", ["openai", "responses", "azure", "selfhosted", "mistral"], indirect=True)
def test_a_response_format_strict_is_sent_as_given(target: Target, strict: bool | None) -> None:
    target.client.chat(target.name, "weather as json", response_format=_format(strict))
    sent = _sent_format(target.sent())
    assert sent["schema"] == SCHEMA
    assert sent.get("strict", "absent") == ("absent" if strict is None else strict)


def _sent_tool_strict(body: dict[str, Any]) -> Any:
    tool = body["toolConfig"]["tools"][0]["toolSpec"] if "toolConfig" in body else body["tools"][0]
    return tool.get("strict", tool.get("function", {}).get("strict", "absent"))


@pytest.mark.parametrize("target", ["openai", "responses", "azure", "selfhosted", "mistral", "claude"], indirect=True)
def test_a_strict_tool_is_sent_strict(target: Target) -> None:
    target.client.chat(target.name, "weather?", tools=[STRICT_TOOL], max_attempts=1)
    assert _sent_tool_strict(target.sent()) is True


@pytest.mark.parametrize("target", ["openai", "mistral", "claude"], indirect=True)
def test_a_tool_without_strict_is_sent_without_it(target: Target) -> None:
    target.client.chat(target.name, "weather?", tools=[TOOL], max_attempts=1)
    assert _sent_tool_strict(target.sent()) == "absent"


@pytest.mark.parametrize("target", ["cohere"], indirect=True)
def test_cohere_takes_strict_tools_for_all_tools_or_none(target: Target) -> None:
    other = {"type": "function", "function": {"name": "get_time", "parameters": WEATHER}}
    target.refuses(Unsupported, lambda: target.client.chat(target.name, "weather?", tools=[STRICT_TOOL, other]))
    target.client.chat(target.name, "weather?", tools=[STRICT_TOOL], max_attempts=1)
    assert target.sent()["strict_tools"] is True


@pytest.mark.parametrize("target", ["vertex", "gemini"], indirect=True)
def test_a_strict_tool_is_unsupported_on_gemini(target: Target) -> None:
    target.refuses(Unsupported, lambda: target.client.chat(target.name, "weather?", tools=[STRICT_TOOL]))


@pytest.mark.parametrize(
    "fmt",
    [
        {"type": "json_schema", "json_schema": {"name": "w"}},
        {"type": "json_schema"},
        {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA, "strict": "yes"}},
    ],
)
@pytest.mark.parametrize("target", ["openai"], indirect=True)
def test_a_json_schema_without_a_schema_or_with_a_strict_not_bool_is_invalid_input(
    target: Target, fmt: dict[str, Any]
) -> None:
    """Sent as json_object, the answer would be any JSON object where the caller asked for one shape."""
    message = target.refuses(InvalidInput, lambda: target.client.chat(target.name, "json", response_format=fmt))
    assert message.startswith("response_format")


@pytest.mark.parametrize("target", ["openai"], indirect=True)
def test_a_tool_strict_not_bool_is_invalid_input(target: Target) -> None:
    tool = {"type": "function", "function": {**TOOL["function"], "strict": 1}}
    message = target.refuses(InvalidInput, lambda: target.client.chat(target.name, "json", tools=[tool]))
    assert message.startswith("tools[0]")


# -- one message where a list is due ---------------------------------------------------------------------------------


@pytest.mark.parametrize("one", [{"role": "user", "content": "Summarise"}, Message("user", "Summarise")])
@pytest.mark.parametrize("target", ["openai"], indirect=True)
def test_one_message_where_a_list_is_due_is_invalid_input(target: Target, one: Any) -> None:
    """Iterated, a dict would be sent as its keys ("role", "content") and the prompt lost."""
    message = target.refuses(InvalidInput, lambda: target.client.chat(target.name, one))
    assert message.startswith("messages")


# -- embeddings input_type -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["mistral", "titan"], indirect=True)
def test_input_type_is_unsupported_where_the_model_embeds_every_text_alike(target: Target) -> None:
    message = target.refuses(
        Unsupported, lambda: target.client.embed(target.name, ["refund policy?"], input_type="search_query")
    )
    assert "input_type" in message
    target.client.embed(target.name, ["refund policy?"])
    assert "input_type" not in target.sent()


@pytest.mark.parametrize("target", ["vertex", "gemini"], indirect=True)
def test_an_input_type_gemini_has_no_task_type_for_is_invalid_argument(target: Target) -> None:
    message = target.refuses(
        InvalidArgument,
        lambda: target.client.embed(target.name, ["x"], input_type="query"),  # type: ignore[arg-type]
    )
    # The Client checks it at its boundary (the adapter's own check stands behind it): the valid values, never the
    # caller's.
    assert "search_query" in message and "search_document" in message and "'query'" not in message
