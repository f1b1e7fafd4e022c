"""The Google wire reader: Vertex AI and Gemini API paths and bodies -> what the request asks for; the meter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privsdk.outbound.outgoing import Asks, Outgoing, Unreadable
from privsdk.outbound.wire import reader
from privsdk.outbound.wire.google import READER, UsageMeter
from privsdk.vocabulary import FEATURES, OPERATIONS

VERTEX = "europe-west4-aiplatform.googleapis.com"
GEMINI = "generativelanguage.googleapis.com"
PL = "/v1/projects/acme-prod/locations/europe-west4"
PUB = f"{PL}/publishers/google/models"
TEXT = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


def out(path: str, body: Any = None, *, method: str = "POST", host: str = VERTEX, query: str = "") -> Outgoing:
    raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    return Outgoing("genai", method, "https", host, None, path, query, {}, raw)


def with_(**fields: Any) -> dict[str, Any]:
    return {**TEXT, **fields}


def vertex(operation: str, model: str | None = "gemini-2.5-flash", features: frozenset[str] = frozenset()) -> Asks:
    return Asks(operation, model, features, None, "acme-prod", "europe-west4", "google")


def gemini(operation: str, model: str | None = "gemini-2.5-flash", features: frozenset[str] = frozenset()) -> Asks:
    return Asks(operation, model, features, publisher="google")


F = frozenset
ANT = "anthropic"
OPERATION_NAMES = set(OPERATIONS)
#: Words the property test builds paths and bodies from, so that it reaches the reader's branches.
_PATH_WORDS = [
    "publishers", "google", "anthropic", "models", "gemini-2.5-flash:generateContent", "m:streamRawPredict",
    "text-embedding-005:predict", "endpoints", "openapi", "chat", "completions", "e1:predict", "tunedModels",
    "t:generateContent", "interactions", "cachedContents", "files", "operations", "locations", "projects",
    "batches", "x:countTokens", "m:unknownMethod",
]  # fmt: skip
_BODY_KEYS = [
    "contents", "parts", "tools", "googleSearch", "cachedContent", "generationConfig", "responseModalities",
    "inlineData", "fileData", "stream", "store", "model", "type", "input", "requests", "request",
    "generateContentRequest", "systemInstruction", "messages", "content",
]  # fmt: skip
CASES: list[tuple[str, Outgoing, Asks]] = [
    # -- Vertex AI: operations from the path ------------------------------------------------------
    ("vertex generate", out(f"{PUB}/gemini-2.5-flash:generateContent", TEXT), vertex("chat")),
    (
        "vertex stream (alt=sse)",
        out(f"{PUB}/gemini-2.5-flash:streamGenerateContent", TEXT, query="alt=sse"),
        vertex("stream"),
    ),
    (
        "v1beta1, global host",
        out(
            "/v1beta1/projects/acme-prod/locations/global/publishers/google/models/gemini-2.5-pro:generateContent",
            TEXT,
            host="aiplatform.googleapis.com",
        ),
        Asks("chat", "gemini-2.5-pro", F(), None, "acme-prod", "global", "google"),
    ),
    ("countTokens sends the prompt", out(f"{PUB}/gemini-2.5-flash:countTokens", TEXT), vertex("chat")),
    ("computeTokens sends the prompt", out(f"{PUB}/gemini-2.5-flash:computeTokens", TEXT), vertex("chat")),
    (
        "embedContent",
        out(f"{PUB}/gemini-embedding-001:embedContent", {"content": {"parts": [{"text": "x"}]}}),
        vertex("embed", "gemini-embedding-001"),
    ),
    (
        "predict on an embedding model",
        out(f"{PUB}/text-embedding-005:predict", {"instances": [{"content": "x"}]}),
        vertex("embed", "text-embedding-005"),
    ),
    (
        "embedContent: every field google-genai sends (Vertex: the options in embedContentConfig)",
        out(
            f"{PUB}/gemini-embedding-2:embedContent",
            {
                "content": {"parts": [{"text": "x"}], "role": "user"},
                "embedContentConfig": {
                    "taskType": "RETRIEVAL_DOCUMENT",
                    "title": "t",
                    "outputDimensionality": 8,
                    "autoTruncate": True,
                    "documentOcr": True,
                    "audioTrackExtraction": True,
                },
            },
        ),
        vertex("embed", "gemini-embedding-2"),
    ),
    (
        "embedContent of a file part: file_inputs",
        out(
            f"{PUB}/gemini-embedding-2:embedContent",
            {"content": {"parts": [{"fileData": {"file_uri": "gs://b/x.jpg", "mime_type": "image/jpeg"}}]}},
        ),
        vertex("embed", "gemini-embedding-2", F({"file_inputs"})),
    ),
    (
        "Vertex batchEmbedContents",
        out(
            f"{PUB}/gemini-embedding-001:batchEmbedContents",
            {"requests": [{"content": {"parts": [{"text": "x"}]}, "embedContentConfig": {"taskType": "CLUSTERING"}}]},
        ),
        vertex("embed", "gemini-embedding-001"),
    ),
    (
        "predict on an embedding model: every field google-genai sends",
        out(
            f"{PUB}/text-embedding-005:predict",
            {
                "instances": [
                    {"content": "x", "task_type": "RETRIEVAL_DOCUMENT", "title": "t", "mimeType": "text/plain"}
                ],
                "parameters": {"outputDimensionality": 8, "autoTruncate": True},
            },
        ),
        vertex("embed", "text-embedding-005"),
    ),
    (
        "predict on an embedding model of content that is no text: file_inputs",
        out(f"{PUB}/text-embedding-005:predict", {"instances": [{"content": "iVBORw0", "mimeType": "image/png"}]}),
        vertex("embed", "text-embedding-005", F({"file_inputs"})),
    ),
    (
        "an endpoint's embedContent: read, its model unknown",
        out(f"{PL}/endpoints/e1:embedContent", {"content": {"parts": [{"text": "x"}]}}),
        Asks("embed", None, F(), "e1", "acme-prod", "europe-west4", None),
    ),
    (
        "predict on Imagen",
        out(f"{PUB}/imagen-4.0-generate-001:predict", {"instances": [{"prompt": "x"}]}),
        vertex("images", "imagen-4.0-generate-001"),
    ),
    (
        "Veo: predictLongRunning",
        out(f"{PUB}/veo-3.0-generate-001:predictLongRunning", {"instances": [{"prompt": "x"}]}),
        vertex("other", "veo-3.0-generate-001"),
    ),
    (
        "partner model, rawPredict",
        out(f"{PL}/publishers/anthropic/models/claude-sonnet-4%405:rawPredict", {"messages": []}),
        Asks("chat", "claude-sonnet-4@5", F(), None, "acme-prod", "europe-west4", "anthropic"),
    ),
    (
        "partner model, streamRawPredict",
        out(f"{PL}/publishers/anthropic/models/claude-sonnet-4:streamRawPredict", {"stream": True}),
        Asks("stream", "claude-sonnet-4", F(), None, "acme-prod", "europe-west4", "anthropic"),
    ),
    (
        "partner model, rawPredict with a cache breakpoint and web search",
        out(
            f"{PL}/publishers/anthropic/models/claude-sonnet-4:rawPredict",
            {
                "messages": [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": {}}]}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
        ),
        Asks("chat", "claude-sonnet-4", F({"prompt_caching", "web_search"}), None, "acme-prod", "europe-west4", ANT),
    ),
    (
        "partner model, rawPredict with stream: true",
        out(f"{PL}/publishers/anthropic/models/claude-sonnet-4:rawPredict", {"stream": True}),
        Asks("stream", "claude-sonnet-4", F(), None, "acme-prod", "europe-west4", "anthropic"),
    ),
    (
        "tuned model on an endpoint: the model is unknown",
        out(f"{PL}/endpoints/1234567:generateContent", TEXT),
        Asks("chat", None, F(), "1234567", "acme-prod", "europe-west4", None),
    ),
    (
        "OpenAI-compatible endpoint",
        out(f"{PL}/endpoints/openapi/chat/completions", {"model": "meta/llama-4", "messages": [], "stream": True}),
        Asks("stream", "llama-4", F(), None, "acme-prod", "europe-west4", "meta"),
    ),
    (
        "OpenAI-compatible endpoint, Gemini as Vertex names it there",
        out(f"{PL}/endpoints/openapi/chat/completions", {"model": "google/gemini-2.5-flash", "messages": []}),
        Asks("chat", "gemini-2.5-flash", F(), None, "acme-prod", "europe-west4", "google"),
    ),
    (
        "batch prediction job",
        out(f"{PL}/batchPredictionJobs", {"model": "publishers/google/models/gemini-2.5-flash"}),
        Asks("batch", project="acme-prod", location="europe-west4"),
    ),
    (
        "tuning job",
        out(f"{PL}/tuningJobs", {"baseModel": "gemini-2.5-flash"}),
        Asks("fine_tune", project="acme-prod", location="europe-west4"),
    ),
    (
        "context cache",
        out(f"{PL}/cachedContents", {"model": "x", **TEXT}),
        Asks("other", features=F({"prompt_caching"}), project="acme-prod", location="europe-west4"),
    ),
    (
        "RAG corpus",
        out(f"{PL}/ragCorpora", {}),
        Asks("vector_stores", project="acme-prod", location="europe-west4"),
    ),
    (
        "operation polling",
        out(f"{PL}/operations/123", method="GET"),
        Asks("other", project="acme-prod", location="europe-west4"),
    ),
    (
        "model listing (publisher models)",
        out(f"{PL}/publishers/google/models", method="GET"),
        Asks("models", None, F(), None, "acme-prod", "europe-west4", "google"),
    ),
    (
        "express mode (API key, no project)",
        out(
            "/v1beta1/publishers/google/models/gemini-2.5-flash:generateContent", TEXT, host="aiplatform.googleapis.com"
        ),
        gemini("chat"),
    ),
    # -- Vertex AI: features from the body ---------------------------------------------------------
    (
        "googleSearch",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(tools=[{"googleSearch": {}}])),
        vertex("chat", features=F({"grounding_search"})),
    ),
    (
        "googleSearch as a single tool, not a list (Google's JSON takes one value for a repeated field)",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(tools={"googleSearch": {}})),
        vertex("chat", features=F({"grounding_search"})),
    ),
    (
        "responseModalities as a single value",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(generationConfig={"responseModalities": "AUDIO"})),
        vertex("chat", features=F({"audio_output"})),
    ),
    (
        "a file in a single part, not a list",
        out(
            f"{PUB}/gemini-2.5-flash:generateContent",
            {"contents": {"role": "user", "parts": {"inlineData": {"mimeType": "image/png", "data": "AA=="}}}},
        ),
        vertex("chat", features=F({"file_inputs"})),
    ),
    (
        "googleSearchRetrieval",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(tools=[{"googleSearchRetrieval": {}}])),
        vertex("chat", features=F({"grounding_search"})),
    ),
    (
        "enterpriseWebSearch",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(tools=[{"enterpriseWebSearch": {}}])),
        vertex("chat", features=F({"grounding_search"})),
    ),
    (
        "googleMaps",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(tools=[{"googleMaps": {}}])),
        vertex("chat", features=F({"grounding_maps"})),
    ),
    (
        "snake_case google_search as the service also takes it",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(tools=[{"google_search": {}}])),
        vertex("chat", features=F({"grounding_search"})),
    ),
    (
        "retrieval (Vertex AI Search / RAG)",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(tools=[{"retrieval": {"vertexAiSearch": {}}}])),
        vertex("chat", features=F({"file_search"})),
    ),
    (
        "codeExecution and urlContext",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(tools=[{"codeExecution": {}}, {"urlContext": {}}])),
        vertex("chat", features=F({"hosted_tools"})),
    ),
    (
        "function declarations are no feature",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(tools=[{"functionDeclarations": [{"name": "f"}]}])),
        vertex("chat"),
    ),
    (
        "a key spelled with a JSON escape is still read",
        out(
            f"{PUB}/gemini-2.5-flash:generateContent",
            b'{"contents": [], "\\u0074ools": [{"googleSearch": {}}]}',
        ),
        vertex("chat", features=F({"grounding_search"})),
    ),
    (
        "cachedContent",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(cachedContent="projects/p/cachedContents/1")),
        vertex("chat", features=F({"prompt_caching"})),
    ),
    (
        "inlineData part",
        out(
            f"{PUB}/gemini-2.5-flash:generateContent",
            {"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "AA=="}}]}]},
        ),
        vertex("chat", features=F({"file_inputs"})),
    ),
    (
        "fileData part (snake_case)",
        out(
            f"{PUB}/gemini-2.5-flash:streamGenerateContent",
            {"contents": [{"role": "user", "parts": [{"file_data": {"file_uri": "gs://b/o"}}]}]},
        ),
        vertex("stream", features=F({"file_inputs"})),
    ),
    (
        "responseModalities AUDIO and IMAGE",
        out(
            f"{PUB}/gemini-2.5-flash:generateContent",
            with_(generationConfig={"responseModalities": ["TEXT", "AUDIO", "IMAGE"]}),
        ),
        vertex("chat", features=F({"audio_output", "image_output"})),
    ),
    (
        "speechConfig",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(generationConfig={"speechConfig": {"voiceConfig": {}}})),
        vertex("chat", features=F({"audio_output"})),
    ),
    (
        "countTokens with a generateContentRequest",
        out(
            f"{PUB}/gemini-2.5-flash:countTokens",
            {"generateContentRequest": with_(tools=[{"googleSearch": {}}])},
        ),
        vertex("chat", features=F({"grounding_search"})),
    ),
    # -- Gemini Developer API ----------------------------------------------------------------------
    (
        "gemini generate",
        out("/v1beta/models/gemini-2.5-flash:generateContent", TEXT, host=GEMINI),
        gemini("chat"),
    ),
    (
        "gemini stream",
        out("/v1beta/models/gemini-2.5-flash:streamGenerateContent", TEXT, host=GEMINI, query="alt=sse"),
        gemini("stream"),
    ),
    (
        "gemini batchEmbedContents",
        out("/v1beta/models/gemini-embedding-001:batchEmbedContents", {"requests": []}, host=GEMINI),
        gemini("embed", "gemini-embedding-001"),
    ),
    (
        "gemini batchEmbedContents: every field google-genai sends, the model named in each request",
        out(
            "/v1/models/gemini-embedding-001:batchEmbedContents",
            {
                "requests": [
                    {
                        "content": {"parts": [{"text": "x"}], "role": "user"},
                        "taskType": "RETRIEVAL_DOCUMENT",
                        "title": "t",
                        "outputDimensionality": 8,
                        "model": "models/gemini-embedding-001",
                    },
                    {"content": {"parts": [{"inline_data": {"data": "eA==", "mime_type": "image/png"}}]}},
                ]
            },
            host=GEMINI,
        ),
        gemini("embed", "gemini-embedding-001", F({"file_inputs"})),
    ),
    (
        "gemini embedContent",
        out("/v1beta/models/gemini-embedding-001:embedContent", {"content": {"parts": [{"text": "x"}]}}, host=GEMINI),
        gemini("embed", "gemini-embedding-001"),
    ),
    (
        "gemini batch of embeddings: inline requests read where google-genai puts them",
        out(
            "/v1beta/models/gemini-embedding-001:asyncBatchEmbedContent",
            {
                "batch": {
                    "displayName": "b",
                    "inputConfig": {
                        "requests": {
                            "requests": [
                                {"request": {"content": {"parts": [{"text": "x"}]}, "taskType": "CLUSTERING"}},
                                {"request": {"content": {"parts": [{"fileData": {"fileUri": "files/f"}}]}}},
                            ]
                        }
                    },
                }
            },
            host=GEMINI,
        ),
        gemini("batch", "gemini-embedding-001", F({"file_inputs"})),
    ),
    (
        "gemini batch mode: inline requests read where google-genai puts them",
        out(
            "/v1beta/models/gemini-2.5-flash:batchGenerateContent",
            {
                "batch": {
                    "displayName": "b",
                    "inputConfig": {
                        "requests": {
                            "requests": [
                                {"request": TEXT, "metadata": {"key": "a"}},
                                {"request": with_(tools=[{"googleSearch": {}}])},
                            ]
                        }
                    },
                }
            },
            host=GEMINI,
        ),
        gemini("batch", features=F({"grounding_search"})),
    ),
    ("gemini batches listing", out("/v1beta/batches", method="GET", host=GEMINI), Asks("batch")),
    (
        "gemini file upload",
        out("/upload/v1beta/files", b"\x89PNG...", host=GEMINI),
        Asks("files"),
    ),
    ("gemini files listing", out("/v1beta/files", method="GET", host=GEMINI), Asks("files")),
    (
        "gemini cachedContents",
        out("/v1beta/cachedContents", {"model": "models/x", **TEXT}, host=GEMINI),
        Asks("other", features=F({"prompt_caching"})),
    ),
    (
        "gemini tuned model generate",
        out("/v1beta/tunedModels/my-model-1:generateContent", TEXT, host=GEMINI),
        gemini("chat", "tunedModels/my-model-1"),
    ),
    ("gemini tuning", out("/v1beta/tunedModels", {"baseModel": "m"}, host=GEMINI), gemini("fine_tune", None)),
    ("gemini model listing", out("/v1beta/models", method="GET", host=GEMINI), gemini("models", None)),
    (
        "gemini model get",
        out("/v1beta/models/gemini-2.5-flash", method="GET", host=GEMINI),
        gemini("models"),
    ),
    (
        "gemini file search store",
        out("/upload/v1beta/fileSearchStores/s1:uploadToFileSearchStore", b"bytes", host=GEMINI),
        Asks("vector_stores"),
    ),
    ("ephemeral tokens for Live", out("/v1alpha/authTokens", {}, host=GEMINI), Asks("realtime")),
    (
        "Live API websocket",
        out(
            "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
            method="GET",
            host=GEMINI,
        ),
        Asks("realtime", publisher="google"),
    ),
    (
        "Interactions API stores by default",
        out("/v1beta/interactions", {"model": "gemini-2.5-flash", "input": "hi"}, host=GEMINI),
        gemini("chat", features=F({"stored_responses"})),
    ),
    (
        "Interactions API, store false, stream, tools",
        out(
            "/v1beta/interactions",
            {
                "model": "gemini-2.5-flash",
                "input": "hi",
                "store": False,
                "stream": True,
                "background": True,
                "tools": [{"type": "google_search"}, {"type": "code_execution"}, {"type": "function", "name": "f"}],
            },
            host=GEMINI,
        ),
        gemini("stream", features=F({"background", "grounding_search", "hosted_tools"})),
    ),
    (
        "Interactions API, background in another spelling than true (a service may read it as true)",
        out(
            "/v1beta/interactions",
            {"model": "gemini-2.5-flash", "input": "hi", "store": False, "background": "true"},
            host=GEMINI,
        ),
        gemini("chat", features=F({"background"})),
    ),
    (
        "reading a stored interaction",
        out("/v1beta/interactions/abc", method="GET", host=GEMINI),
        Asks("responses_state"),
    ),
    # -- fields that make Google keep, log or run something, and the ordinary ones that do not ----------------
    (
        "store: true on generateContent is request/response logging",
        out("/v1beta/models/gemini-2.5-flash:generateContent", with_(store=True), host=GEMINI),
        gemini("chat", features=F({"request_response_logging"})),
    ),
    (
        "store: false on generateContent adds nothing",
        out("/v1beta/models/gemini-2.5-flash:generateContent", with_(store=False, generationConfig={}), host=GEMINI),
        gemini("chat"),
    ),
    (
        "Model Armor may log what it screens: the stricter reading",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(modelArmorConfig={"promptTemplateName": "t"})),
        vertex("chat", features=F({"request_response_logging"})),
    ),
    (
        "every field google-genai sends for an ordinary request passes",
        out(
            f"{PUB}/gemini-2.5-flash:generateContent",
            with_(
                systemInstruction={"parts": [{"text": "be brief"}]},
                tools=[{"functionDeclarations": [{"name": "f"}]}],
                toolConfig={"functionCallingConfig": {"mode": "AUTO"}},
                safetySettings=[{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
                labels={"team": "a"},
                serviceTier="flex",
                continuationToken="t",
                generationConfig={
                    "temperature": 0.2,
                    "topP": 0.9,
                    "topK": 4,
                    "candidateCount": 1,
                    "maxOutputTokens": 9,
                    "stopSequences": ["x"],
                    "seed": 1,
                    "responseMimeType": "application/json",
                    "responseJsonSchema": {"type": "object"},
                    "thinkingConfig": {"thinkingBudget": 0},
                    "mediaResolution": "MEDIA_RESOLUTION_LOW",
                    "responseModalities": ["TEXT"],
                },
            ),
        ),
        vertex("chat"),
    ),
    (
        "what only shapes the answer (Vertex's countTokens forwards a GenerationConfig whole): no feature",
        out(
            f"{PUB}/gemini-2.5-flash:countTokens",
            with_(
                generationConfig={
                    "enableAffectiveDialog": True,
                    "translationConfig": {"targetLanguageCode": "fr", "echoTargetLanguage": False},
                    "responseFormat": [{"text": {"mimeType": "application/json"}}],
                }
            ),
        ),
        vertex("chat"),
    ),
    (
        "translation that echoes the target language generates audio; a response format of audio or image",
        out(
            f"{PUB}/gemini-2.5-flash:generateContent",
            with_(
                generationConfig={
                    "translationConfig": {"echoTargetLanguage": True},
                    "responseFormat": [{"audio": {"delivery": "INLINE"}}, {"image": {}}],
                }
            ),
        ),
        vertex("chat", features=F({"audio_output", "image_output"})),
    ),
    (
        "both spellings: a null camelCase generationConfig hides no snake_case one",
        out(
            f"{PUB}/gemini-2.5-flash:generateContent",
            with_(generationConfig=None, generation_config={"responseModalities": ["AUDIO"]}),
        ),
        vertex("chat", features=F({"audio_output"})),
    ),
    (
        "both spellings: an empty camelCase generationConfig hides no snake_case one",
        out(
            f"{PUB}/gemini-2.5-flash:generateContent",
            with_(generationConfig={}, generation_config={"speech_config": {"voice_config": {}}}),
        ),
        vertex("chat", features=F({"audio_output"})),
    ),
    (
        "both spellings inside generationConfig",
        out(
            f"{PUB}/gemini-2.5-flash:generateContent",
            with_(generationConfig={"responseModalities": [], "response_modalities": ["IMAGE"]}),
        ),
        vertex("chat", features=F({"image_output"})),
    ),
    (
        "both spellings: an empty cachedContent hides no cached_content",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(cachedContent="", cached_content="cachedContents/1")),
        vertex("chat", features=F({"prompt_caching"})),
    ),
    (
        "countTokens: the fields beside a generateContentRequest are read too",
        out(
            f"{PUB}/gemini-2.5-flash:countTokens",
            {"generateContentRequest": TEXT, "tools": [{"googleSearch": {}}]},
        ),
        vertex("chat", features=F({"grounding_search"})),
    ),
    (
        "OpenAI-compatible endpoint: store, web search, audio and tools read as the OpenAI chat reader reads them",
        out(
            f"{PL}/endpoints/openapi/chat/completions",
            {
                "model": "google/gemini-2.5-flash",
                "messages": [],
                "store": True,
                "web_search_options": {},
                "modalities": ["text", "audio"],
                "tools": [{"type": "function", "function": {"name": "f"}}],
            },
        ),
        Asks(
            "chat",
            "gemini-2.5-flash",
            F({"stored_responses", "web_search", "audio_output"}),
            None,
            "acme-prod",
            "europe-west4",
            "google",
        ),
    ),
    (
        "OpenAI-compatible endpoint: extra_body.google.cached_content is a context cache",
        out(
            f"{PL}/endpoints/openapi/chat/completions",
            {
                "model": "google/gemini-2.5-flash",
                "messages": [],
                "extra_body": {"google": {"cached_content": "c", "thought_tag_marker": "think"}},
            },
        ),
        Asks("chat", "gemini-2.5-flash", F({"prompt_caching"}), None, "acme-prod", "europe-west4", "google"),
    ),
    (
        "OpenAI-compatible endpoint: the google object merged at the top level (the openai SDK's extra_body)",
        out(
            f"{PL}/endpoints/openapi/chat/completions",
            {"model": "google/gemini-2.5-flash", "messages": [], "google": {"cached_content": "c"}},
        ),
        Asks("chat", "gemini-2.5-flash", F({"prompt_caching"}), None, "acme-prod", "europe-west4", "google"),
    ),
    (
        "Interactions API: response_format audio, and image in a list",
        out(
            "/v1beta/interactions",
            {"model": "m", "input": "hi", "store": False, "response_format": [{"type": "audio"}, {"type": "image"}]},
            host=GEMINI,
        ),
        gemini("chat", "m", F({"audio_output", "image_output"})),
    ),
    (
        "Interactions API: cached_content, a remote environment, speech_config",
        out(
            "/v1beta/interactions",
            {
                "model": "m",
                "store": False,
                "cached_content": "cachedContents/abc",
                "environment": {"type": "remote"},
                "generation_config": {"speech_config": {"voice": "Kore"}},
            },
            host=GEMINI,
        ),
        gemini("chat", "m", F({"prompt_caching", "hosted_tools", "audio_output"})),
    ),
    (
        "Interactions API: an environment named by id is a hosted sandbox too",
        out("/v1beta/interactions", {"model": "m", "store": False, "environment": "env-1"}, host=GEMINI),
        gemini("chat", "m", F({"hosted_tools"})),
    ),
    (
        "Interactions API: every field of an ordinary request passes",
        out(
            "/v1beta/interactions",
            {
                "model": "m",
                "input": [{"type": "text", "text": "hi"}],
                "store": False,
                "stream": False,
                "system_instruction": "be brief",
                "safety_settings": [],
                "labels": {"a": "b"},
                "service_tier": "standard",
                "continuation_token": "t",
                "response_mime_type": "application/json",
                "response_format": {"type": "text", "mime_type": "application/json", "schema": {"type": "object"}},
                "generation_config": {"temperature": 0.1, "max_output_tokens": 9, "thinking_level": "low"},
                "tools": [{"type": "function", "name": "f"}],
            },
            host=GEMINI,
        ),
        gemini("chat", "m"),
    ),
    (
        "Interactions API: a JSON schema as the response format",
        out(
            "/v1beta/interactions",
            {"model": "m", "store": False, "response_format": {"type": "object", "properties": {}}},
            host=GEMINI,
        ),
        gemini("chat", "m"),
    ),
]


@pytest.mark.parametrize(("request_", "expected"), [(o, a) for _, o, a in CASES], ids=[c[0] for c in CASES])
def test_reads(request_: Outgoing, expected: Asks) -> None:
    assert READER.read(request_) == expected


def test_registered_for_vertex_and_gemini() -> None:
    assert reader("google") is READER


KNOWN_FEATURES = set(FEATURES) | {"audio_output", "file_inputs", "file_search", "image_output"}


def test_features_are_vocabulary_names() -> None:
    """Every feature the reader can give is a vocabulary name (or one the lead adds: see the report)."""
    for _, request, _asks in CASES:
        assert READER.read(request).features <= KNOWN_FEATURES


UNREADABLE = [
    ("unknown collection", out(f"{PL}/secretThings", {})),
    ("unknown model method", out(f"{PUB}/gemini-2.5-flash:doSomething", TEXT)),
    ("unknown tool kind", out(f"{PUB}/gemini-2.5-flash:generateContent", with_(tools=[{"superSearch": {}}]))),
    ("non-JSON chat body", out(f"{PUB}/gemini-2.5-flash:generateContent", b"not json")),
    ("JSON list body", out(f"{PUB}/gemini-2.5-flash:generateContent", [1, 2])),
    ("projects without locations", out("/v1/projects/p/publishers/google/models/m:generateContent", TEXT)),
    ("no version", out("/models/m:generateContent", TEXT)),
    ("unknown interaction tool", out("/v1beta/interactions", {"model": "m", "tools": [{"type": "rocket"}]})),
    (
        "a generateContent field not read (outputConfig writes media to Cloud Storage)",
        out(f"{PUB}/gemini-2.5-flash:generateContent", with_(outputConfig={"outputUriPrefix": "gs://b/"})),
    ),
    ("a generationConfig field not read", out(f"{PUB}/m:generateContent", with_(generationConfig={"newThing": 1}))),
    # Routing has Google run another model than the path's (manual mode names it; auto mode and a model config let
    # the model optimizer pick one): the path's model was judged, the routed one sent.
    (
        "manual routing to another model",
        out(
            f"{PUB}/gemini-2.5-flash:generateContent",
            with_(generationConfig={"routingConfig": {"manualMode": {"modelName": "gemini-3-pro-preview"}}}),
        ),
    ),
    (
        "automatic routing",
        out(
            f"{PUB}/gemini-2.5-flash:streamGenerateContent",
            with_(generation_config={"routing_config": {"auto_mode": {"model_routing_preference": "BALANCED"}}}),
        ),
    ),
    (
        "a model config",
        out(f"{PUB}/m:generateContent", with_(generationConfig={"modelConfig": {"featureSelectionPreference": 1}})),
    ),
    (
        "a video output modality has no feature",
        out(f"{PUB}/m:generateContent", with_(generationConfig={"responseModalities": ["TEXT", "VIDEO"]})),
    ),
    ("an unknown output modality", out(f"{PUB}/m:generateContent", with_(generation_config={"responseModalities": 7}))),
    (
        "video output (written to Cloud Storage) has no feature",
        out(f"{PUB}/m:generateContent", with_(generationConfig={"responseFormat": {"video": {"gcsUri": "gs://b"}}})),
    ),
    (
        "media delivered by URI is kept at Google",
        out(f"{PUB}/m:generateContent", with_(generationConfig={"responseFormat": {"image": {"delivery": "URI"}}})),
    ),
    ("a generationConfig that is no object", out(f"{PUB}/m:generateContent", with_(generation_config=[1]))),
    ("a service tier not read", out(f"{PUB}/m:generateContent", with_(serviceTier="deferred"))),
    (
        "a generateContentRequest that is no object",
        out(f"{PUB}/m:countTokens", {"generateContentRequest": "x"}),
    ),
    (
        "gemini batch from a file: its requests cannot be read",
        out("/v1beta/models/m:batchGenerateContent", {"batch": {"inputConfig": {"fileName": "files/x"}}}, host=GEMINI),
    ),
    ("gemini batch with no requests found", out("/v1beta/models/m:batchGenerateContent", {"batch": {}}, host=GEMINI)),
    (
        "gemini batch with a request field not read",
        out(
            "/v1beta/models/m:batchGenerateContent",
            {"batch": {"inputConfig": {"requests": {"requests": [{"request": with_(outputConfig={})}]}}}},
            host=GEMINI,
        ),
    ),
    ("an interaction field not read", out("/v1beta/interactions", {"model": "m", "webhook_config": {"uris": []}})),
    (
        "an interaction generation_config field not read",
        out("/v1beta/interactions", {"model": "m", "generation_config": {"video_config": {}}}),
    ),
    (
        "an interaction's video output",
        out("/v1beta/interactions", {"model": "m", "response_format": {"type": "video"}}),
    ),
    (
        "an interaction's image delivered by URI (kept at Google)",
        out("/v1beta/interactions", {"model": "m", "response_format": {"type": "image", "delivery": "uri"}}),
    ),
    (
        "an interaction's media format with no type",
        out("/v1beta/interactions", {"model": "m", "response_format": {"mime_type": "audio/wav"}}),
    ),
    ("an interaction's deferred service tier", out("/v1beta/interactions", {"model": "m", "service_tier": "deferred"})),
    (
        "OpenAI-compatible endpoint: a google extension field not read",
        out(f"{PL}/endpoints/openapi/chat/completions", {"model": "m", "extra_body": {"google": {"labels": {}}}}),
    ),
    (
        "OpenAI-compatible endpoint: an extra_body key not read",
        out(f"{PL}/endpoints/openapi/chat/completions", {"model": "m", "extra_body": {"other": {}}}),
    ),
    (
        "OpenAI-compatible endpoint: a hosted tool the OpenAI reader does not know",
        out(f"{PL}/endpoints/openapi/chat/completions", {"model": "m", "tools": [{"type": "google_search"}]}),
    ),
    (
        "OpenAI-compatible endpoint: a top-level field the OpenAI reader does not read",
        out(f"{PL}/endpoints/openapi/chat/completions", {"model": "m", "messages": [], "some_new_field": 1}),
    ),
    (
        "OpenAI-compatible endpoint: a Responses field in a chat request",
        out(f"{PL}/endpoints/openapi/chat/completions", {"model": "m", "messages": [], "previous_response_id": "r"}),
    ),
    (
        "OpenAI-compatible endpoint: an embeddings field not read",
        out(f"{PL}/endpoints/openapi/embeddings", {"model": "google/text-embedding-005", "input": "x", "google": {}}),
    ),
    (
        "embedContent naming a context cache",
        out(f"{PUB}/gemini-embedding-001:embedContent", {"content": {}, "cachedContent": "cachedContents/c"}),
    ),
    ("embedContent asking to be logged", out(f"{PUB}/gemini-embedding-001:embedContent", {"content": {}, "store": 1})),
    (
        "an embedContentConfig field not read",
        out(f"{PUB}/gemini-embedding-001:embedContent", {"content": {}, "embedContentConfig": {"newThing": 1}}),
    ),
    (
        "an embedContentConfig that is no object",
        out(f"{PUB}/gemini-embedding-001:embedContent", {"content": {}, "embedContentConfig": [1]}),
    ),
    ("a batchEmbedContents field not read", out(f"{PUB}/gemini-embedding-001:batchEmbedContents", {"newThing": 1})),
    (
        "a batchEmbedContents request field not read",
        out("/v1/models/gemini-embedding-001:batchEmbedContents", {"requests": [{"store": True}]}, host=GEMINI),
    ),
    (
        "a batchEmbedContents request that is no object",
        out("/v1/models/gemini-embedding-001:batchEmbedContents", {"requests": ["x"]}, host=GEMINI),
    ),
    (
        "a batchEmbedContents request naming another model than the path",
        out(
            "/v1/models/gemini-embedding-001:batchEmbedContents",
            {"requests": [{"content": {}, "model": "models/other-embedding"}]},
            host=GEMINI,
        ),
    ),
    ("an embedding predict field not read", out(f"{PUB}/text-embedding-005:predict", {"instances": [], "labels": {}})),
    (
        "an embedding predict instance field not read",
        out(f"{PUB}/text-embedding-005:predict", {"instances": [{"content": "x", "cachedContent": "c"}]}),
    ),
    (
        "an embedding predict parameter not read",
        out(f"{PUB}/text-embedding-005:predict", {"instances": [], "parameters": {"newThing": 1}}),
    ),
    ("an embedding predict instance that is no object", out(f"{PUB}/text-embedding-005:predict", {"instances": [1]})),
    ("a legacy embedText field not read", out("/v1beta/models/embedding-gecko-001:embedText", {"x": 1}, host=GEMINI)),
    (
        "a gemini batch of embeddings with a request field not read",
        out(
            "/v1beta/models/gemini-embedding-001:asyncBatchEmbedContent",
            {"batch": {"inputConfig": {"requests": {"requests": [{"request": {"content": {}, "store": True}}]}}}},
            host=GEMINI,
        ),
    ),
]


@pytest.mark.parametrize("request_", [o for _, o in UNREADABLE], ids=[c[0] for c in UNREADABLE])
def test_unreadable_fails_closed(request_: Outgoing) -> None:
    with pytest.raises(Unreadable):
        READER.read(request_)


def test_unreadable_message_never_echoes_body_or_odd_path_values() -> None:
    secret = "patient-ssn-123-45-6789"
    requests = [
        out(f"{PUB}/m:generateContent", with_(tools=[{secret.replace("-", " "): {}}])),
        out(f"/v1/{secret} x/y", {}),
        out(f"{PUB}/m:{secret}x y", TEXT),
        out(f"{PUB}/m:generateContent", with_(**{secret: 1})),
        out(f"{PUB}/m:generateContent", with_(outputConfig={"outputUriPrefix": secret})),
        out("/v1beta/interactions", {"model": "m", secret: 1}, host=GEMINI),
        out("/v1beta/interactions", {"model": "m", "webhook_config": {"uris": [secret]}}, host=GEMINI),
        out(f"{PL}/endpoints/openapi/chat/completions", {"model": "m", "messages": [], "new_field": secret}),
        out(f"{PL}/endpoints/openapi/chat/completions", {"model": "m", "messages": [], secret: 1}),
        out(f"{PUB}/gemini-embedding-001:embedContent", {"content": {}, secret: 1}),
        out(f"{PUB}/gemini-embedding-001:embedContent", {"content": {}, "embedContentConfig": {secret: 1}}),
        out(f"{PUB}/text-embedding-005:predict", {"instances": [{"content": "x", secret: 1}]}),
        out(f"{PUB}/text-embedding-005:predict", {"instances": [], "parameters": {"labels": secret}}),
        out("/v1/models/m:batchEmbedContents", {"requests": [{"content": {}, "model": secret}]}, host=GEMINI),
    ]
    for request in requests:
        with pytest.raises(Unreadable) as caught:
            READER.read(request)
        assert "patient" not in str(caught.value) and "6789" not in str(caught.value)


# -- meter -------------------------------------------------------------------------------------------


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)


def feed_in(meter: UsageMeter, body: bytes, size: int) -> tuple[int | None, int | None]:
    for i in range(0, len(body), size):
        meter.feed(body[i : i + size])
    return meter.tokens()


JSON_BODY = json.dumps(
    {
        "candidates": [{"content": {"parts": [{"text": 'a "usage": {"promptTokenCount": 999} trap'}]}}],
        "usageMetadata": {
            "promptTokenCount": 11,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 3,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 11}],
        },
    }
).encode()
SSE_BODY = sse(
    {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}], "usageMetadata": {"promptTokenCount": 4}},
    {"candidates": [{"content": {"parts": [{"text": "lo"}]}}], "usageMetadata": {"promptTokenCount": 4}},
    {"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}},
)
ARRAY_BODY = (
    b'[{"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]},\r\n'
    b'{"usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 1}}]'
)
PREDICT_BODY = json.dumps(
    {
        "predictions": [
            {"embeddings": {"values": [0.1], "statistics": {"token_count": 3, "truncated": False}}},
            {"embeddings": {"values": [0.2], "statistics": {"token_count": 4.0, "truncated": False}}},
        ]
    }
).encode()
INTERACTION_BODY = json.dumps(
    {
        "id": "x",
        "outputs": [{"type": "text", "text": "hi"}],
        "usage": {"total_input_tokens": 9, "total_output_tokens": 2},
    }
).encode()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (JSON_BODY, (11, 8)),
        (SSE_BODY, (4, 2)),
        (ARRAY_BODY, (7, 1)),
        (PREDICT_BODY, (7, None)),
        (INTERACTION_BODY, (9, 2)),
    ],
    ids=["json", "sse", "json-array", "predict", "interactions"],
)
@pytest.mark.parametrize("size", [1, 3, 16, 10_000])
def test_meter_counts_whatever_the_chunking(body: bytes, expected: tuple[int, int | None], size: int) -> None:
    assert feed_in(UsageMeter(), body, size) == expected


def test_meter_keeps_no_content() -> None:
    meter = UsageMeter()
    feed_in(meter, JSON_BODY, 7)
    kept = [getattr(meter, slot) for slot in UsageMeter.__slots__]
    assert not any(isinstance(value, (bytes, bytearray)) and b"trap" in value for value in kept)
    assert all(value is None or isinstance(value, (int, bytes)) for value in kept)
    assert len(meter._tail) < 16


def test_meter_abandons_an_endless_object() -> None:
    meter = UsageMeter()
    meter.feed(b'{"usage": {' + b'"a": {' * 5000)
    assert meter._capture is None
    assert meter.tokens() == (None, None)


def test_meter_only_for_success_and_content_operations() -> None:
    chat = READER.read(out(f"{PUB}/gemini-2.5-flash:generateContent", TEXT))
    assert READER.meter(out("/"), chat, 200, {}) is not None
    assert READER.meter(out("/"), chat, 429, {}) is None
    assert READER.meter(out("/"), Asks("models"), 200, {}) is None


# -- any request: an answer or Unreadable, never another exception --------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(_BODY_KEYS) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(["", PL, "/v1beta", "/v1beta1", "/upload/v1beta", "/ws", "/v1/projects/p"]),
    tail=st.lists(st.sampled_from(_PATH_WORDS) | st.text(max_size=6), max_size=4),
    method=st.sampled_from(["GET", "POST", "DELETE", "PATCH"]),
    body=_JSON | st.binary(max_size=16),
)
def test_any_request_is_read_or_unreadable(prefix: str, tail: list[str], method: str, body: Any) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = out(prefix + "/" + "/".join(tail), raw, method=method)
    try:
        asks = READER.read(request)
    except Unreadable:
        return
    assert asks.operation in OPERATION_NAMES
    assert asks.features <= KNOWN_FEATURES


# -- counts a vendor (or a proxy) got wrong: never an exception, never an absurd count --------------------------


@pytest.mark.parametrize(
    "raw",
    [b"1e999", b"-1e999", b"Infinity", b"NaN", b"100000000000000000000", b"1000000000001", b"-3", b"true", b'"12"'],
)
@pytest.mark.parametrize("size", [1, 5, 10_000])
def test_a_count_that_is_no_count_is_none_and_never_raises(raw: bytes, size: int) -> None:
    """1e999 and Infinity parse as inf (int(inf) raises), a count past MAX_COUNT is absurd, true is no count."""
    gemini = b'{"usageMetadata": {"promptTokenCount": %s, "candidatesTokenCount": %s, "thoughtsTokenCount": %s}}'
    assert feed_in(UsageMeter(), gemini % (raw, raw, raw), size) == (None, None)
    interactions = b'{"usage": {"total_input_tokens": %s, "total_output_tokens": 2}}'
    assert feed_in(UsageMeter(), interactions % raw, size) == (None, 2)
    predict = b'{"predictions": [{"embeddings": {"values": [0.1], "statistics": {"token_count": %s}}}]}'
    assert feed_in(UsageMeter(), predict % raw, size) == (None, None)


def test_counts_up_to_the_ceiling_are_kept_and_a_sum_past_it_is_none() -> None:
    from privsdk.usage.record import MAX_COUNT

    body = b'{"usageMetadata": {"promptTokenCount": %d, "candidatesTokenCount": %d}}' % (MAX_COUNT, MAX_COUNT)
    assert feed_in(UsageMeter(), body, 7) == (MAX_COUNT, MAX_COUNT)
    thoughts = b'{"usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": %d, "thoughtsTokenCount": 1}}'
    assert feed_in(UsageMeter(), thoughts % MAX_COUNT, 7) == (1, None)
    predict = b'{"predictions": [{"embeddings": {"statistics": {"token_count": %d}}}, ' % MAX_COUNT
    predict += b'{"embeddings": {"statistics": {"token_count": 1}}}]}'
    assert feed_in(UsageMeter(), predict, 7) == (None, None)


def test_json_nested_past_the_parsers_depth_is_no_count() -> None:
    meter = UsageMeter()
    meter.feed(b'{"usageMetadata": {"promptTokenCount": 1, "x": ' + b"[" * 3000 + b"]" * 3000 + b"}}")
    assert meter.tokens() == (None, None)


# -- where an answer ends: a candidate's finishReason, not its counts ---------------------------------------------

GEMINI_STREAM = sse(
    {
        "candidates": [{"content": {"parts": [{"text": "finishReason"}]}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 4},
    },
    {
        "candidates": [{"content": {"parts": [{"text": '"finishReason": "STOP"'}]}}],
        "usageMetadata": {"promptTokenCount": 4},
    },
    {
        "candidates": [{"content": {"parts": [{"text": "!"}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7},
    },
)


@pytest.mark.parametrize("size", [1, 2, 7, 13, 14, 15, 64, 10_000])
def test_the_meter_has_ended_only_once_the_last_chunk_has_passed(size: int) -> None:
    """Gemini sends usageMetadata on every chunk; the last chunk alone holds a candidate's finishReason key (the
    word as text, even quoted, is no key)."""
    last = GEMINI_STREAM.rindex(b"data: ")
    meter = UsageMeter()
    feed_in(meter, GEMINI_STREAM[:last], size)
    assert meter.tokens() == (4, None) and not meter.ended  # counts, but not the end
    feed_in(meter, GEMINI_STREAM[last:], size)
    assert meter.ended and meter.tokens() == (4, 3)


@pytest.mark.parametrize(
    "body",
    [
        sse({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}),
        JSON_BODY.replace(b'"usageMetadata"', b'"finishReason": "STOP", "usageMetadata"'),
        b'data: {"id": "x", "choices": [{"delta": {"content": "hi"}}]}\n\ndata: [DONE]\n\n',  # OpenAI-compatible
        b'event: interaction.complete\ndata: {"usage": {"total_input_tokens": 9}}\n\ndata: [DONE]\n\n',
    ],
    ids=["blocked", "json", "openai-compatible", "interactions"],
)
def test_other_last_chunks_end_the_answer_too(body: bytes) -> None:
    meter = UsageMeter()
    for size in (1, 10_000):
        meter = UsageMeter()
        feed_in(meter, body, size)
        assert meter.ended


@pytest.mark.parametrize("body", [SSE_BODY, PREDICT_BODY, INTERACTION_BODY, b'data: {"finishReason"}\n\n'])
def test_counts_alone_never_end_the_answer(body: bytes) -> None:
    meter = UsageMeter()
    feed_in(meter, body, 3)
    assert not meter.ended


def _sse(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\r\n\r\n"


@pytest.mark.parametrize("after", [0, 3])
def test_a_function_calls_arguments_are_no_error_event(after: int) -> None:
    """Gemini sends a function call's arguments as JSON: a call whose arguments hold ``[{"type": "error"}]`` or
    ``{"error": {...}}`` (an alerting tool), in the last event or a few before it, is no in-band error."""
    args = {"alerts": [{"type": "error", "message": "disk full"}], "last": {"error": {"code": 503}}}
    call = {"candidates": [{"content": {"parts": [{"functionCall": {"name": "raise", "args": args}}]}}]}
    done = {"candidates": [{"content": {"parts": [{"text": "Done."}]}, "finishReason": "STOP"}]}
    usage = {"usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 9}}
    meter = UsageMeter(stream=True)
    events = [_sse(call)] + [_sse({"candidates": [{"content": {"parts": [{"text": "x"}]}}]})] * after
    events += [_sse({**(done if after else {**call, **done}), **usage})]
    for event in events:
        meter.feed(event)
    assert meter.tokens() == (5, 9)
    assert meter.failed is None
    meter = UsageMeter(stream=True)
    for event in [*events[:-1], _sse({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}})]:
        meter.feed(event)
    meter.tokens()
    assert meter.failed == "rate_limited"


@pytest.mark.parametrize(("request_", "expected"), [(o, a) for _, o, a in CASES], ids=[c[0] for c in CASES])
def test_a_gateways_path_prefix_is_read_past(request_: Outgoing, expected: Asks) -> None:
    """Every other reader reads past a gateway's prefix (PRIVSDK_ENDPOINTS=https://gw/gemini=gemini.api); this one
    refused every such request ("unknown path shape /gemini/..."). The route starts at the API version (or upload,
    or ws); a path with none is still refused."""
    for prefix in ("/gemini", "/proxy/google"):
        assert READER.read(request_._replace(path=prefix + request_.path)) == expected
    with pytest.raises(Unreadable):
        READER.read(request_._replace(path="/gemini/models/m:generateContent"))


def test_a_body_refused_behind_an_endpoint_declared_with_its_api_version_is_refused_for_its_body() -> None:
    """Behind an endpoint declared with a path (``https://europe-west4-aiplatform.googleapis.com/v1=vertex.gemini``),
    a route read whole whose body was refused was read again after that path, and the refusal said "unknown path
    shape" of a route the reader knows. Only a path that is no route is read after the declared one; a body it
    cannot read is said as such."""
    from privsdk.outbound.outgoing import UnknownRoute
    from privsdk.outbound.wire.routes import AfterDeclaredPrefix

    behind = AfterDeclaredPrefix(READER, "/v1")
    request_ = out(f"{PUB}/gemini-2.5-flash:generateContent", with_(outputConfig={"outputUriPrefix": "gs://b/"}))
    with pytest.raises(Unreadable, match="a field privsdk does not read in a Google generateContent request") as caught:
        behind.read(request_)
    assert not isinstance(caught.value, UnknownRoute)
    ordinary = out(f"{PUB}/gemini-2.5-flash:generateContent", TEXT)
    assert behind.read(ordinary) == READER.read(ordinary)
    with pytest.raises(UnknownRoute):  # neither whole nor after the declared path a route
        behind.read(ordinary._replace(path="/v1/nothing/here"))


# -- what google-genai itself sends ------------------------------------------------------------------


def _bodies_google_genai_sends_for_embeddings() -> list[tuple[str, Outgoing]]:
    """Every embedding request google-genai's ``models.embed_content`` builds (Vertex's predict, embedContent and
    batchEmbedContents, the Gemini API's batchEmbedContents), with every option it takes, caught before a byte
    leaves."""
    httpx = pytest.importorskip("httpx")
    genai = pytest.importorskip("google.genai")
    from google.genai import types
    from google.oauth2.credentials import Credentials

    sent: list[tuple[str, Outgoing]] = []

    def answer(request: Any) -> Any:
        host = GEMINI if "generativelanguage" in request.url.host else VERTEX
        sent.append((request.url.path, out(request.url.path, request.content, host=host)))
        return httpx.Response(200, json={})

    http = types.HttpOptions(httpx_client=httpx.Client(transport=httpx.MockTransport(answer)))
    token = Credentials(token="t")  # type: ignore[no-untyped-call]
    vertex_client = genai.Client(
        vertexai=True, project="acme-prod", location="europe-west4", credentials=token, http_options=http
    )
    gemini_client = genai.Client(api_key="k", http_options=http)
    options: dict[str, Any] = {"task_type": "RETRIEVAL_DOCUMENT", "title": "t", "output_dimensionality": 8}
    vertex_options = {**options, "auto_truncate": True}
    image = types.Part.from_uri(file_uri="gs://b/x.jpg", mime_type="image/jpeg")
    calls = [
        (vertex_client, "text-embedding-005", ["a", "b"], {**vertex_options, "mime_type": "text/plain"}),
        (vertex_client, "gemini-embedding-001", "a", vertex_options),
        (vertex_client, "gemini-embedding-2", [image], {**vertex_options, "document_ocr": True}),
        (vertex_client, "gemini-embedding-001", ["a", "b"], {**vertex_options, "audio_track_extraction": True}),
        (gemini_client, "gemini-embedding-001", ["a", "b"], options),
        (gemini_client, "gemini-embedding-2", ["a", types.Part.from_bytes(data=b"x", mime_type="image/png")], options),
    ]
    for client, model, contents, config in calls:
        client.models.embed_content(model=model, contents=contents, config=config)
    return sent


def test_every_embedding_body_google_genai_sends_is_read() -> None:
    """The embedding allow-lists start from google-genai's own request shapes: a field a new release adds fails here
    until it is judged."""
    sent = _bodies_google_genai_sends_for_embeddings()
    assert {path.rsplit(":", 1)[1] for path, _ in sent} == {"predict", "embedContent", "batchEmbedContents"}
    for _, request_ in sent:
        asks = READER.read(request_)
        assert asks.operation == "embed" and asks.features <= {"file_inputs"}


# -- a Vertex AI endpoint ----------------------------------------------------------------------------


def test_a_vertex_endpoints_id_is_no_model_name() -> None:
    """An endpoint's ID is chosen by its owner (``gemini-support-llama-vllm`` may run Llama): the reader says that
    it names no model, so that the judge takes it for what a configured target says it runs, and for nothing else
    (an Azure deployment's name is read as a model's: the reader of OpenAI's protocol says nothing of the kind)."""
    from privsdk.outbound.judge import Guard

    endpoint = READER.read(out(f"{PL}/endpoints/gemini-support-llama-vllm:generateContent", TEXT))
    assert endpoint.deployment == "gemini-support-llama-vllm" and endpoint.model is None
    assert getattr(endpoint, "deployment_names_model", True) is False
    assert getattr(READER.read(out(f"{PUB}/gemini-2.5-flash:generateContent", TEXT)), "deployment_names_model", True)

    eu = {"PRIVSDK_REQUIRE": "region=eu", "PRIVSDK_ATTEST": "vertex:region=eu", "PRIVSDK_USAGE": "none"}
    guard = Guard(environ=eu)
    for name in ("gemini-support-llama-vllm", "gemini-2.5-flash", "1234567890"):
        decision = guard.judge(out(f"{PL}/endpoints/{name}:generateContent", TEXT)).decision
        assert decision.outcome == "refuse" and f"deployment = '{name}'" in (decision.reason or ""), name
    assert guard.judge(out(f"{PUB}/gemini-2.5-flash:generateContent", TEXT)).decision.outcome == "allow"


def test_a_vertex_endpoint_is_judged_only_through_a_target_that_names_it(tmp_path: Path) -> None:
    """A target naming only a model stood for an endpoint whose ID was that model's name: "gemini-flash-latest" was
    judged on Google's facts and the target's attestations, and may be the project's own container running anything."""
    from privsdk.config import load_policy
    from privsdk.outbound.judge import Guard

    def target(named: str) -> str:
        return (
            f'[targets.flash-eu]\noffering = "vertex.gemini"\n{named}\nproject = "acme-prod"\n'
            'region = "europe-west4"\nattest = ["region=eu"]\n[tenants.acme]\nclasses.default = ["region=eu"]\n'
        )

    for named, outcome in (
        ('model = "gemini-flash-latest"', "refuse"),
        ('model = "gemini-flash-latest"\ndeployment = "gemini-flash-latest"', "allow"),
    ):
        (tmp_path / "privsdk.toml").write_text(target(named), encoding="utf-8")
        policy = load_policy({"PRIVSDK_CONFIG": str(tmp_path / "privsdk.toml"), "PRIVSDK_USAGE": "none"})
        decision = Guard(policy).judge(out(f"{PL}/endpoints/gemini-flash-latest:generateContent", TEXT)).decision
        assert decision.outcome == outcome, (named, decision.reason)
