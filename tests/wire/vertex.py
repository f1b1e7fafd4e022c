"""Gemini's wire format, on Vertex AI and on the Gemini Developer API, as google-genai reaches them.

``GeminiApp`` answers

* Vertex AI: ``POST /{v1,v1beta1}/projects/{p}/locations/{l}/publishers/google/models/{m}:{method}`` with
  ``Authorization: Bearer <token>``; methods ``generateContent``, ``streamGenerateContent?alt=sse``,
  ``predict`` (text-embedding-* models), ``embedContent`` and ``batchEmbedContents`` (gemini-embedding-*);
* the Gemini Developer API: ``POST /{v1,v1beta}/models/{m}:{method}`` with ``x-goog-api-key``; methods
  ``generateContent``, ``streamGenerateContent?alt=sse`` and ``batchEmbedContents``.

Request bodies are protobuf JSON: the services take a field by its camelCase or its snake_case name
(google-genai sends ``inlineData.mime_type`` and ``parameters_json_schema`` as they are), so the checks
do too, and reject any other field, a wrong role, a part with no data or two, a function response that
answers no earlier call by name, and (when the app plays a Gemini 3 model, ``signature`` set) a
function call that comes back without the thought signature the model gave it. Anything rejected is
raised, so it lands in ``server.errors``. Streams are SSE ``data:`` events with CRLF line ends and no
end marker: the last event carries the finish reason and the usage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tests.wire.server import Recorded, Reply, json_reply

TOKEN = "test-token"
API_KEY = "test-api-key"
VERTEX_PATH = re.compile(
    r"/(v1|v1beta1)/projects/([a-z0-9.:-]+)/locations/([a-z0-9-]+)/publishers/google/models/([\w.@-]+):(\w+)"
)
GEMINI_PATH = re.compile(r"/(v1|v1beta)/models/([\w.@-]+):(\w+)")

REQUEST_FIELDS = frozenset(
    {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent"}
)
VERTEX_ONLY_FIELDS = frozenset({"labels", "modelArmorConfig"})
#: The Gemini API's own: ``store`` (per-request logging; google-genai refuses it for Vertex).
GEMINI_ONLY_FIELDS = frozenset({"store"})
GENERATION_FIELDS = frozenset(
    {
        "temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "seed",
        "responseMimeType", "responseSchema", "responseJsonSchema", "presencePenalty", "frequencyPenalty",
        "thinkingConfig", "responseModalities",
    }
)  # fmt: skip
PART_DATA = frozenset({"text", "inlineData", "fileData", "functionCall", "functionResponse"})
PART_FIELDS = PART_DATA | {"thought", "thoughtSignature"}
TASK_TYPES = frozenset(
    {
        "RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY", "CLASSIFICATION", "CLUSTERING",
        "QUESTION_ANSWERING", "FACT_VERIFICATION", "CODE_RETRIEVAL_QUERY",
    }
)  # fmt: skip
MODES = frozenset({"AUTO", "ANY", "NONE", "VALIDATED"})
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}")


def tokens(text: str) -> int:
    """What the app counts as tokens: words."""
    return len(text.split())


def vector(text: str, dimensions: int) -> list[float]:
    """The embedding the app gives ``text``: a stable function of the text."""
    digest = hashlib.sha256(text.encode()).digest()
    return [((digest[i % 32] + i) % 256) / 255 for i in range(dimensions)]


def error_body(code: int, status: str, message: str, *, retry_delay: str | None = None) -> bytes:
    """Google's error JSON (google.rpc.Status); ``message`` is where a test puts the prompt the service echoes."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if retry_delay is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]
    return json.dumps({"error": error}).encode()


def stream_error(code: int, status: str, message: str) -> bytes:
    """An error inside a 200 stream: one SSE event holding the error object."""
    return _event(json.loads(error_body(code, status, message)))


def _event(body: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(body).encode() + b"\r\n\r\n"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _fields(obj: Any, what: str, allowed: Iterable[str]) -> dict[str, Any]:
    """``obj`` with camelCase keys, after checking it is an object of allowed fields only."""
    if not isinstance(obj, dict):
        raise ValueError(f"{what} must be an object")
    out = {_camel(k): v for k, v in obj.items()}
    unknown = set(out) - set(allowed)
    if unknown:
        raise ValueError(f"{what}: unknown fields {sorted(unknown)}")
    return out


def _base64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ValueError(f"{what} must be base64") from None


class GeminiApp:
    """The server's answers; tests set the fields to script what the model says.

    ``calls`` are the functionCall objects the model makes (``{"name", "args"}``, with ``"id"`` where the
    model gives ids); ``signature`` (base64) is the thought signature on the first call; ``block`` is a
    promptFeedback blockReason for a refused prompt; ``chunks`` is how many events a streamed text takes.
    """

    def __init__(
        self,
        text: str = "Hello from Gemini on loopback",
        *,
        calls: Sequence[Mapping[str, Any]] = (),
        finish: str = "STOP",
        block: str | None = None,
        signature: str | None = None,
        thoughts: int = 0,
        chunks: int = 3,
        dimensions: int = 4,
        token: str = TOKEN,
        api_key: str = API_KEY,
    ):
        self.text = text
        self.calls = calls
        self.finish = finish
        self.block = block
        self.signature = signature
        self.thoughts = thoughts
        self.chunks = chunks
        self.dimensions = dimensions
        self.token = token
        self.api_key = api_key

    def __call__(self, request: Recorded) -> Reply:
        if request.method != "POST":
            raise ValueError(f"{request.method} {request.path}")
        vertex = VERTEX_PATH.fullmatch(request.path)
        if vertex is not None:
            model, method = vertex.group(4), vertex.group(5)
            if request.headers.get("authorization") != f"Bearer {self.token}" or "x-goog-api-key" in request.headers:
                raise ValueError("Vertex AI takes an OAuth bearer token, and only that")
        else:
            gemini = GEMINI_PATH.fullmatch(request.path)
            if gemini is None:
                raise ValueError(f"no such path: {request.path}")
            model, method = gemini.group(2), gemini.group(3)
            if request.headers.get("x-goog-api-key") != self.api_key or "authorization" in request.headers:
                raise ValueError("the Gemini API takes an x-goog-api-key header, and only that")
        stream = method == "streamGenerateContent"
        if request.query != ({"alt": ["sse"]} if stream else {}):
            raise ValueError(f"query {request.query} for {method}")
        body = request.json()
        if method in ("generateContent", "streamGenerateContent"):
            prompt = self._check_generate(body, vertex=vertex is not None)
            return self._stream(prompt, model) if stream else json_reply(self._answer(prompt, model))
        if method == "predict" and vertex is not None:
            return json_reply(self._predict(body))
        if method == "embedContent" and vertex is not None:
            return json_reply(self._embed_one(body))
        if method == "batchEmbedContents":
            return json_reply(self._embed_batch(body, None if vertex is not None else f"models/{model}"))
        raise ValueError(f"no method {method} here")

    # -- generateContent --------------------------------------------------------------------------

    def _check_generate(self, body: Any, *, vertex: bool) -> int:
        """Checks a GenerateContentRequest; returns the prompt's token count."""
        body = _fields(body, "request", REQUEST_FIELDS | (VERTEX_ONLY_FIELDS if vertex else GEMINI_ONLY_FIELDS))
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise ValueError("contents must be a non-empty list")
        prompt = 0
        called: set[str] = set()
        for n, content in enumerate(contents):
            content = _fields(content, f"contents[{n}]", ("role", "parts"))
            role = content.get("role")
            if role not in ("user", "model"):
                raise ValueError(f"contents[{n}].role must be user or model, not {role!r}")
            prompt += self._check_parts(content.get("parts"), f"contents[{n}]", role, called)
        if "systemInstruction" in body:
            system = _fields(body["systemInstruction"], "systemInstruction", ("role", "parts"))
            for part in system.get("parts") or ():
                prompt += tokens(_fields(part, "systemInstruction part", ("text",))["text"])
        declared = self._check_tools(body.get("tools", []))
        for name in called:
            if name not in declared:
                raise ValueError(f"function {name} was called but is not declared")
        if "toolConfig" in body:
            config = _fields(body["toolConfig"], "toolConfig", ("functionCallingConfig",))
            calling = _fields(
                config["functionCallingConfig"], "functionCallingConfig", ("mode", "allowedFunctionNames")
            )
            if calling.get("mode") not in MODES:
                raise ValueError(f"functionCallingConfig.mode {calling.get('mode')!r}")
        self._check_generation(body.get("generationConfig", {}))
        return prompt

    def _check_parts(self, parts: Any, what: str, role: str, called: set[str]) -> int:
        if not isinstance(parts, list) or not parts:
            raise ValueError(f"{what}.parts must be a non-empty list")
        prompt = 0
        first_call = True
        for n, part in enumerate(parts):
            part = _fields(part, f"{what}.parts[{n}]", PART_FIELDS)
            data = PART_DATA & set(part)
            if len(data) != 1:
                raise ValueError(f"{what}.parts[{n}] must hold exactly one of {sorted(PART_DATA)}")
            (kind,) = data
            value = part[kind]
            if kind == "text":
                if not isinstance(value, str):
                    raise ValueError("text must be a string")
                prompt += tokens(value)
            elif kind == "inlineData":
                blob = _fields(value, "inlineData", ("mimeType", "data"))
                _base64(blob.get("data"), "inlineData.data")
                if not str(blob.get("mimeType", "")).startswith("image/"):
                    raise ValueError("inlineData.mimeType")
            elif kind == "fileData":
                file = _fields(value, "fileData", ("mimeType", "fileUri", "displayName"))
                if not re.match(r"(gs|https?)://", str(file.get("fileUri", ""))):
                    raise ValueError("fileData.fileUri must be a gs:// or http(s):// URI")
            elif kind == "functionCall":
                if role != "model":
                    raise ValueError("a functionCall belongs to a model turn")
                call = _fields(value, "functionCall", ("id", "name", "args"))
                if not isinstance(call.get("args", {}), dict) or not _FUNCTION_NAME.fullmatch(str(call.get("name"))):
                    raise ValueError("functionCall needs a name and object args")
                if self.signature is not None and first_call and part.get("thoughtSignature") != self.signature:
                    raise ValueError("function call is missing its thought signature")  # Gemini 3 answers 400
                first_call = False
                called.add(call["name"])
            else:
                if role != "user":
                    raise ValueError("a functionResponse belongs to a user turn")
                result = _fields(value, "functionResponse", ("id", "name", "response"))
                if not isinstance(result.get("response"), dict):
                    raise ValueError("functionResponse.response must be an object")
                if result.get("name") not in called:
                    raise ValueError(f"functionResponse {result.get('name')!r} answers no earlier functionCall")
            if "thoughtSignature" in part:
                _base64(part["thoughtSignature"], "thoughtSignature")
        return prompt

    def _check_tools(self, tools: Any) -> set[str]:
        if not isinstance(tools, list):
            raise ValueError("tools must be a list")
        names: set[str] = set()
        for tool in tools:
            declarations = _fields(tool, "tool", ("functionDeclarations",))["functionDeclarations"]
            for declaration in declarations:
                fields = ("name", "description", "parameters", "parametersJsonSchema", "response")
                declaration = _fields(declaration, "functionDeclaration", fields)
                if not _FUNCTION_NAME.fullmatch(str(declaration.get("name"))):
                    raise ValueError("functionDeclaration.name")
                if "parameters" in declaration and "parametersJsonSchema" in declaration:
                    raise ValueError("parameters and parametersJsonSchema are exclusive")
                names.add(declaration["name"])
        return names

    def _check_generation(self, config: Any) -> None:
        config = _fields(config, "generationConfig", GENERATION_FIELDS)
        if "responseSchema" in config and "responseJsonSchema" in config:
            raise ValueError("responseSchema and responseJsonSchema are exclusive")
        if "responseJsonSchema" in config and config.get("responseMimeType") != "application/json":
            raise ValueError("responseJsonSchema needs responseMimeType application/json")
        stop = config.get("stopSequences", [])
        if not isinstance(stop, list) or len(stop) > 5:
            raise ValueError("stopSequences: at most 5")
        if not 0 <= config.get("temperature", 1) <= 2:
            raise ValueError("temperature must be in [0, 2]")

    def _usage(self, prompt: int) -> dict[str, int]:
        out = tokens(self.text)
        usage = {"promptTokenCount": prompt, "candidatesTokenCount": out, "totalTokenCount": prompt + out}
        if self.thoughts:
            usage["thoughtsTokenCount"] = self.thoughts
            usage["totalTokenCount"] += self.thoughts
        return usage

    def _blocked(self, prompt: int, model: str) -> dict[str, Any]:
        ratings = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]
        return {
            "promptFeedback": {"blockReason": self.block, "safetyRatings": ratings},
            "usageMetadata": {"promptTokenCount": prompt, "totalTokenCount": prompt},
            "modelVersion": f"{model}-001",
        }

    def _call_parts(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = [{"functionCall": dict(call)} for call in self.calls]
        if parts and self.signature is not None:
            parts[0]["thoughtSignature"] = self.signature
        return parts

    def _answer(self, prompt: int, model: str) -> dict[str, Any]:
        if self.block is not None:
            return self._blocked(prompt, model)
        parts = ([{"text": self.text}] if self.text else []) + self._call_parts()
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": self.finish, "index": 0}
        return {"candidates": [candidate], "usageMetadata": self._usage(prompt), "modelVersion": f"{model}-001"}

    def _stream(self, prompt: int, model: str) -> Reply:
        headers = {"Content-Type": "text/event-stream"}
        if self.block is not None:
            return Reply(200, headers=headers, chunks=[_event(self._blocked(prompt, model))])
        k = max(1, self.chunks)
        n = len(self.text)
        pieces = [[{"text": self.text[i * n // k : (i + 1) * n // k]}] for i in range(k)] if self.text else []
        if self.calls:
            pieces.append(self._call_parts())  # Gemini sends the calls whole, in one event
        running = {"promptTokenCount": prompt, "totalTokenCount": prompt}
        events: list[dict[str, Any]] = [
            {
                "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
                "usageMetadata": running,
                "modelVersion": f"{model}-001",
            }
            for parts in pieces or [[{"text": ""}]]
        ]
        events[-1]["candidates"][0]["finishReason"] = self.finish
        events[-1]["usageMetadata"] = self._usage(prompt)
        return Reply(200, headers=headers, chunks=[_event(e) for e in events])

    # -- embeddings -------------------------------------------------------------------------------

    def _text_content(self, content: Any, what: str) -> str:
        parts = _fields(content, what, ("role", "parts")).get("parts")
        if not isinstance(parts, list) or len(parts) != 1:
            raise ValueError(f"{what}: one text part per embedding")
        text = _fields(parts[0], f"{what}.parts[0]", ("text",)).get("text")
        if not isinstance(text, str) or not text:
            raise ValueError(f"{what}: text")
        return text

    def _dimensions(self, value: Any) -> int:
        if value is None:
            return self.dimensions
        if not isinstance(value, int) or value < 1:
            raise ValueError("outputDimensionality")
        return value

    def _embed_config(self, config: Any) -> int:
        config = _fields(config, "embedContentConfig", ("taskType", "title", "outputDimensionality", "autoTruncate"))
        if config.get("taskType", "RETRIEVAL_QUERY") not in TASK_TYPES:
            raise ValueError(f"taskType {config.get('taskType')!r}")
        return self._dimensions(config.get("outputDimensionality"))

    def _predict(self, body: Any) -> dict[str, Any]:
        """Vertex AI's text-embedding models: instances in, predictions out, a token count per instance."""
        body = _fields(body, "predict", ("instances", "parameters"))
        parameters = _fields(body.get("parameters", {}), "parameters", ("outputDimensionality", "autoTruncate"))
        dimensions = self._dimensions(parameters.get("outputDimensionality"))
        predictions = []
        characters = 0
        for instance in body.get("instances") or ():
            instance = _fields(instance, "instance", ("content", "taskType", "title"))
            text = instance.get("content")
            if not isinstance(text, str) or instance.get("taskType", "RETRIEVAL_QUERY") not in TASK_TYPES:
                raise ValueError("instance: content and taskType")
            characters += len(text)
            statistics = {"token_count": tokens(text), "truncated": False}
            predictions.append({"embeddings": {"values": vector(text, dimensions), "statistics": statistics}})
        if not predictions:
            raise ValueError("instances must not be empty")
        return {"predictions": predictions, "metadata": {"billableCharacterCount": characters}}

    def _embed_one(self, body: Any) -> dict[str, Any]:
        body = _fields(body, "embedContent", ("content", "embedContentConfig"))
        text = self._text_content(body.get("content"), "content")
        dimensions = self._embed_config(body.get("embedContentConfig", {}))
        return {"embedding": {"values": vector(text, dimensions)}, "usageMetadata": {"promptTokenCount": tokens(text)}}

    def _embed_batch(self, body: Any, model: str | None) -> dict[str, Any]:
        """Vertex AI nests each request's options in embedContentConfig; the Gemini API names the model in each."""
        requests = _fields(body, "batchEmbedContents", ("requests",)).get("requests")
        if not isinstance(requests, list) or not requests:
            raise ValueError("requests must be a non-empty list")
        embeddings = []
        total = 0
        for n, item in enumerate(requests):
            if model is None:
                item = _fields(item, f"requests[{n}]", ("content", "embedContentConfig"))
                dimensions = self._embed_config(item.get("embedContentConfig", {}))
            else:
                item = _fields(
                    item, f"requests[{n}]", ("model", "content", "taskType", "title", "outputDimensionality")
                )
                if item.get("model") != model:
                    raise ValueError(f"requests[{n}].model must be {model}")
                dimensions = self._embed_config({k: v for k, v in item.items() if k not in ("model", "content")})
            text = self._text_content(item.get("content"), f"requests[{n}].content")
            total += tokens(text)
            embeddings.append({"values": vector(text, dimensions)})
        return {"embeddings": embeddings, "usageMetadata": {"promptTokenCount": total}}
