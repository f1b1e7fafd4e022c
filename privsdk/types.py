"""The vendor-neutral shapes of requests and responses.

Every adapter turns these into its SDK's own call and its SDK's answer back
into these. They are NamedTuples: immutable, typed, and cheap enough to build
per stream chunk. A request names no model: the adapter serves one target,
and the target fixes the model, so nothing of one target travels to another
when a call is rerouted or falls back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from privsdk.decision import Decision

Role = Literal["system", "user", "assistant", "tool"]
#: Why a model stopped, the same words for every vendor.
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "other"]
#: How a model may use the tools: a mode, or (OpenAI-style targets only) a function named as OpenAI's API does.
ToolChoice = Literal["auto", "none", "required"] | Mapping[str, Any]
#: What an embedding is for, where the vendor distinguishes (Cohere, Vertex, Bedrock Cohere models).
InputType = Literal["search_document", "search_query", "classification", "clustering"]

_NO_EXTRA: Mapping[str, Any] = {}
#: ChatRequest's temperature, top_p, max_tokens, stop and seed when none is set.
_NO_SAMPLING = (None, None, None, (), None)


class Text(NamedTuple):
    """A text part of a message."""

    text: str


class Image(NamedTuple):
    """An image part of a message: inline bytes or a URL the vendor fetches (where it can)."""

    data: bytes | None = None
    url: str | None = None
    media_type: str = "image/png"


Part = Text | Image


class ToolCall(NamedTuple):
    """A model's request to call a tool; ``arguments`` is the JSON text the model wrote."""

    id: str
    name: str
    arguments: str


class Message(NamedTuple):
    """One turn. ``content`` is a string or a tuple of parts; a ``tool`` turn answers ``tool_call_id``."""

    role: Role
    content: str | tuple[Part, ...] = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text parts joined."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, Text))


class Tool(NamedTuple):
    """A function the model may call; ``parameters`` is a JSON Schema object. ``strict`` asks the vendor to hold
    the call's arguments to the schema (None: the vendor's default)."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}
    strict: bool | None = None


class ResponseFormat(NamedTuple):
    """Ask for JSON output: any JSON object, or one that fits ``schema`` (named ``name``). ``strict`` asks the
    vendor to hold the answer to the schema (None: the vendor's default)."""

    schema: Mapping[str, Any] | None = None
    name: str = "response"
    strict: bool | None = None


class ChatRequest(NamedTuple):
    """A chat call. ``extra`` holds vendor-specific body fields, passed to this target's SDK as they are."""

    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    response_format: ResponseFormat | None = None
    extra: Mapping[str, Any] = _NO_EXTRA

    def sampling(self, names: Mapping[str, str]) -> dict[str, Any]:
        """The sampling settings that are set, under the vendor's names.

        ``names`` maps privsdk's (``temperature``, ``top_p``, ``max_tokens``,
        ``stop``, ``seed``) to the vendor's field names; ``stop`` comes as a list.
        """
        if self[3:8] == _NO_SAMPLING:  # the usual request sets none: one comparison instead of the loop
            return {}
        out: dict[str, Any] = {}
        for field, name in names.items():
            value = getattr(self, field)
            if value is not None and value != ():
                out[name] = list(value) if field == "stop" else value
        return out


#: Every field of a ChatRequest but its messages, as a request that sets none of them has them: most requests,
#: which the call path tells with one comparison (``request[1:] == MESSAGES_ONLY``) and builds positionally.
MESSAGES_ONLY = ChatRequest(())[1:]


class Usage(NamedTuple):
    """Token counts as the vendor reported them; None where it reported none."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    search_units: int | None = None  # what Cohere bills a rerank by


class ChatResponse(NamedTuple):
    """A chat answer. ``raw`` is the SDK's answer as the adapter received it: the SDK's own object, or where the
    adapter asks the SDK for it untyped (openai, and boto3's dicts), the answer's JSON."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: FinishReason
    usage: Usage
    model: str
    raw: Any = None
    #: Set by the client: the decision that governed the call (``decision.chosen`` is where it went).
    decision: Decision | None = None


class TextDelta(NamedTuple):
    """A piece of the answer's text."""

    text: str


class ToolCallDelta(NamedTuple):
    """A piece of the ``call``-th tool call (from 0): its id and name arrive once, its arguments in pieces."""

    call: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class StreamEnd(NamedTuple):
    """The last event of a stream."""

    finish_reason: FinishReason
    usage: Usage
    model: str


StreamEvent = TextDelta | ToolCallDelta | StreamEnd


class EmbedRequest(NamedTuple):
    """Texts to embed; ``dimensions`` asks for shorter vectors where the model can give them."""

    texts: tuple[str, ...]
    input_type: InputType | None = None
    dimensions: int | None = None
    extra: Mapping[str, Any] = _NO_EXTRA


class EmbedResponse(NamedTuple):
    """One float vector per input text, in input order."""

    vectors: list[list[float]]
    usage: Usage
    model: str
    raw: Any = None
    #: Set by the client: the decision that governed the call (``decision.chosen`` is where it went).
    decision: Decision | None = None


class RerankRequest(NamedTuple):
    """Order ``documents`` by relevance to ``query``; ``top_n`` keeps the best n."""

    query: str
    documents: tuple[str, ...]
    top_n: int | None = None
    extra: Mapping[str, Any] = _NO_EXTRA


class Ranked(NamedTuple):
    """A document, by its position in the request, and its relevance score."""

    document: int
    score: float


class RerankResponse(NamedTuple):
    """Documents best first."""

    results: list[Ranked]
    usage: Usage
    model: str
    raw: Any = None
    #: Set by the client: the decision that governed the call (``decision.chosen`` is where it went).
    decision: Decision | None = None
