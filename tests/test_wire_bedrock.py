"""The Bedrock wire reader over the documented paths and body features of bedrock-runtime, -agent-runtime and bedrock.

The requests are the ones the services' own API models describe (botocore's
service-2.json); the last table checks every operation of the installed
botocore models is classified without an Unreadable.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import botocore
import botocore.session
import pytest

from privsdk.outbound.outgoing import Asks, Outgoing, Unreadable
from privsdk.outbound.wire import reader
from privsdk.outbound.wire.bedrock import (
    READER,
    REGION_GEOGRAPHY,
    UNREAD_BODY,
    geography,
    model_of,
    signed_region,
)
from privsdk.vocabulary import GEOGRAPHIES
from tests.wire.bedrock import event, frame

HOST = "bedrock-runtime.eu-central-1.amazonaws.com"
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
EU_CLAUDE = "eu.anthropic.claude-3-7-sonnet-20250219-v1:0"
TITAN_V2 = "amazon.titan-embed-text-v2:0"
CACHE_POINT: dict[str, Any] = {"cachePoint": {}}
HELLO = {"messages": [{"role": "user", "content": [{"text": "secret"}]}]}


def request(path: str, body: Any = None, *, method: str = "POST", host: str = HOST) -> Outgoing:
    data = json.dumps(body).encode() if body is not None else b""
    return Outgoing("boto3", method, "https", host, None, path, "", {"content-type": "application/json"}, data)


def model_path(model: str, action: str) -> str:
    return f"/model/{quote(model, safe='-_.~')}/{action}"


def converse(**fields: Any) -> dict[str, Any]:
    return {**HELLO, **fields}


PROFILE_ARN = "arn:aws:bedrock:eu-central-1:123456789012:inference-profile/eu.anthropic.claude-3-7-sonnet-20250219-v1:0"
FOUNDATION_ARN = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
APP_PROFILE_ARN = "arn:aws:bedrock:eu-west-1:123456789012:application-inference-profile/abc123xyz"
PROVISIONED_ARN = "arn:aws:bedrock:eu-west-1:123456789012:provisioned-model/p0q1r2"
PROMPT_ARN = "arn:aws:bedrock:eu-west-1:123456789012:prompt/PROMPT12345:1"
RERANK_ARN = "arn:aws:bedrock:eu-central-1::foundation-model/amazon.rerank-v1:0"

CASES: list[tuple[str, Outgoing, Asks]] = [
    ("converse", request(model_path(CLAUDE, "converse"), HELLO), Asks("chat", CLAUDE)),
    ("converse stream", request(model_path(CLAUDE, "converse-stream"), HELLO), Asks("stream", CLAUDE)),
    ("eu profile keeps prefix", request(model_path(EU_CLAUDE, "converse"), HELLO), Asks("chat", EU_CLAUDE)),
    (
        "global profile",
        request(model_path("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "converse"), HELLO),
        Asks("chat", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ),
    (
        "us-gov profile",
        request(model_path("us-gov.anthropic.claude-3-haiku-20240307-v1:0", "converse"), HELLO),
        Asks("chat", "us-gov.anthropic.claude-3-haiku-20240307-v1:0"),
    ),
    (
        "inference-profile ARN: the id, the ARN's Region",
        request(model_path(PROFILE_ARN, "converse"), HELLO),
        Asks("chat", EU_CLAUDE, location="eu-central-1"),
    ),
    (
        "foundation-model ARN",
        request(model_path(FOUNDATION_ARN, "converse-stream"), HELLO),
        Asks("stream", CLAUDE, location="us-east-1"),
    ),
    (
        "application inference profile is opaque",
        request(model_path(APP_PROFILE_ARN, "converse"), HELLO),
        Asks("chat", APP_PROFILE_ARN, location="eu-west-1"),
    ),
    (
        "provisioned model is opaque",
        request(model_path(PROVISIONED_ARN, "invoke"), {"prompt": "x"}),
        Asks("chat", PROVISIONED_ARN, location="eu-west-1"),
    ),
    (
        "prompt-management ARN with variables",
        request(model_path(PROMPT_ARN, "converse"), {"promptVariables": {"topic": {"text": "x"}}}),
        Asks("chat", PROMPT_ARN, location="eu-west-1"),
    ),
    (
        "titan embed",
        request(model_path("amazon.titan-embed-text-v2:0", "invoke"), {"inputText": "x"}),
        Asks("embed", "amazon.titan-embed-text-v2:0"),
    ),
    (
        "titan multimodal embed with an image",
        request(model_path("amazon.titan-embed-image-v1", "invoke"), {"inputText": "x", "inputImage": "aGk="}),
        Asks("embed", "amazon.titan-embed-image-v1", frozenset({"file_inputs"})),
    ),
    (
        "cohere embed through a profile",
        request(model_path("us.cohere.embed-v4:0", "invoke"), {"texts": ["x"], "input_type": "search_query"}),
        Asks("embed", "us.cohere.embed-v4:0"),
    ),
    (
        "nova embeddings",
        request(model_path("amazon.nova-2-multimodal-embeddings-v1:0", "invoke"), {"taskType": "SINGLE_EMBEDDING"}),
        Asks("embed", "amazon.nova-2-multimodal-embeddings-v1:0"),
    ),
    (
        "nova embeddings of an image",
        request(
            model_path("amazon.nova-2-multimodal-embeddings-v1:0", "invoke"),
            {"taskType": "SINGLE_EMBEDDING", "singleEmbeddingParams": {"image": {"format": "png"}}},
        ),
        Asks("embed", "amazon.nova-2-multimodal-embeddings-v1:0", frozenset({"file_inputs"})),
    ),
    (
        "nova embeddings of a video, in segments",
        request(
            model_path("amazon.nova-2-multimodal-embeddings-v1:0", "invoke"),
            {"taskType": "SEGMENTED_EMBEDDING", "segmentedEmbeddingParams": {"video": {"format": "mp4"}}},
        ),
        Asks("embed", "amazon.nova-2-multimodal-embeddings-v1:0", frozenset({"file_inputs"})),
    ),
    # Image, video and speech families make no chat: InvokeModel on one is their own operation, refused for want of
    # facts (it was judged as a chat, and allowed under amazon.*).
    (
        "nova canvas makes images",
        request(model_path("amazon.nova-canvas-v1:0", "invoke"), {"taskType": "TEXT_IMAGE", "textToImageParams": {}}),
        Asks("images", "amazon.nova-canvas-v1:0"),
    ),
    (
        "titan image generator makes images",
        request(model_path("amazon.titan-image-generator-v2:0", "invoke"), {"taskType": "IMAGE_VARIATION"}),
        Asks("images", "amazon.titan-image-generator-v2:0"),
    ),
    (
        "stability makes images, streamed or not",
        request(model_path("us.stability.sd3-5-large-v1:0", "invoke-with-response-stream"), {"prompt": "x"}),
        Asks("images", "us.stability.sd3-5-large-v1:0"),
    ),
    (
        "nova reel makes video",
        request(model_path("amazon.nova-reel-v1:0", "invoke"), {"taskType": "TEXT_VIDEO"}),
        Asks("other", "amazon.nova-reel-v1:0"),
    ),
    (
        "cohere rerank",
        request(model_path("cohere.rerank-v3-5:0", "invoke"), {"query": "q", "documents": ["d"], "api_version": 2}),
        Asks("rerank", "cohere.rerank-v3-5:0"),
    ),
    (
        "amazon rerank",
        request(model_path("amazon.rerank-v1:0", "invoke"), {"query": "q", "documents": ["d"]}),
        Asks("rerank", "amazon.rerank-v1:0"),
    ),
    (
        "invoke chat (anthropic messages)",
        request(model_path(CLAUDE, "invoke"), {"anthropic_version": "bedrock-2023-05-31", "messages": []}),
        Asks("chat", CLAUDE),
    ),
    (
        "invoke stream",
        request(model_path(CLAUDE, "invoke-with-response-stream"), {"messages": []}),
        Asks("stream", CLAUDE),
    ),
    (
        "count tokens is judged as the chat it counts",
        request(model_path(CLAUDE, "count-tokens"), {"input": {"converse": HELLO}}),
        Asks("chat", CLAUDE),
    ),
    (
        "bidirectional stream",
        request(model_path("amazon.nova-sonic-v1:0", "invoke-with-bidirectional-stream"), {}),
        Asks("realtime", "amazon.nova-sonic-v1:0"),
    ),
    (
        "start async invoke",
        request("/async-invoke", {"modelId": "amazon.nova-reel-v1:0", "modelInput": {}, "outputDataConfig": {}}),
        Asks("batch", "amazon.nova-reel-v1:0"),
    ),
    ("list async invokes", request("/async-invoke", method="GET"), Asks("batch")),
    ("apply guardrail", request("/guardrail/gr1/version/1/apply", {"source": "INPUT", "content": []}), Asks("other")),
    # -- Converse features
    (
        "cachePoint in messages",
        request(model_path(CLAUDE, "converse"), {"messages": [{"role": "user", "content": [{"cachePoint": {}}]}]}),
        Asks("chat", CLAUDE, frozenset({"prompt_caching"})),
    ),
    (
        "cachePoint in system",
        request(model_path(CLAUDE, "converse"), converse(system=[{"text": "s"}, {"cachePoint": {"type": "default"}}])),
        Asks("chat", CLAUDE, frozenset({"prompt_caching"})),
    ),
    (
        "cachePoint among tools",
        request(
            model_path(CLAUDE, "converse"),
            converse(
                toolConfig={"tools": [{"toolSpec": {"name": "t", "inputSchema": {"json": {}}}}, {"cachePoint": {}}]}
            ),
        ),
        Asks("chat", CLAUDE, frozenset({"prompt_caching"})),
    ),
    (
        "image, document, video blocks",
        request(
            model_path(CLAUDE, "converse-stream"),
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"image": {"format": "png", "source": {"bytes": "aGk="}}},
                            {"document": {"format": "pdf", "name": "d", "source": {"s3Location": {"uri": "s3://b/k"}}}},
                        ],
                    }
                ]
            },
        ),
        Asks("stream", CLAUDE, frozenset({"file_inputs"})),
    ),
    (
        "image inside a tool result",
        request(
            model_path(CLAUDE, "converse"),
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"toolResult": {"toolUseId": "1", "content": [{"video": {"format": "mp4"}}]}}],
                    }
                ]
            },
        ),
        Asks("chat", CLAUDE, frozenset({"file_inputs"})),
    ),
    (
        "tool input schema naming an image is no file",
        request(
            model_path(CLAUDE, "converse"),
            converse(
                toolConfig={
                    "tools": [{"toolSpec": {"name": "t", "inputSchema": {"json": {"properties": {"image": {}}}}}}]
                }
            ),
        ),
        Asks("chat", CLAUDE),
    ),
    (
        "Nova web grounding system tool",
        request(
            model_path("us.amazon.nova-premier-v1:0", "converse"),
            converse(toolConfig={"tools": [{"systemTool": {"name": "nova_grounding"}}]}),
        ),
        Asks("chat", "us.amazon.nova-premier-v1:0", frozenset({"web_search"})),
    ),
    (
        "another system tool is a hosted tool",
        request(
            model_path("us.amazon.nova-premier-v1:0", "converse"),
            converse(toolConfig={"tools": [{"systemTool": {"name": "nova_code_interpreter"}}]}),
        ),
        Asks("chat", "us.amazon.nova-premier-v1:0", frozenset({"hosted_tools"})),
    ),
    (
        "anthropic server tool through additionalModelRequestFields",
        request(
            model_path(CLAUDE, "converse"),
            converse(additionalModelRequestFields={"tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
        ),
        Asks("chat", CLAUDE, frozenset({"web_search"})),
    ),
    (
        "plain fields in additionalModelRequestFields",
        request(model_path(CLAUDE, "converse"), converse(additionalModelRequestFields={"top_k": 5})),
        Asks("chat", CLAUDE),
    ),
    (
        "performanceConfig and serviceTier carry no data feature",
        request(
            model_path(CLAUDE, "converse"),
            converse(performanceConfig={"latency": "optimized"}, serviceTier={"type": "priority"}),
        ),
        Asks("chat", CLAUDE),
    ),
    # -- InvokeModel native bodies
    (
        "anthropic cache_control and image",
        request(
            model_path(CLAUDE, "invoke"),
            {
                "anthropic_version": "bedrock-2023-05-31",
                "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
                "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}],
            },
        ),
        Asks("chat", CLAUDE, frozenset({"prompt_caching", "file_inputs"})),
    ),
    (
        "anthropic code execution tool",
        request(
            model_path(CLAUDE, "invoke-with-response-stream"),
            {"messages": [], "tools": [{"type": "code_execution_20250522", "name": "code_execution"}]},
        ),
        Asks("stream", CLAUDE, frozenset({"hosted_tools"})),
    ),
    # Anthropic's server tools beyond web search and code execution (tool search, which AWS documents on
    # InvokeModel; an MCP toolset) and its MCP connector run at the vendor: once only the first two were read.
    (
        "anthropic tool search, mcp toolsets and the mcp connector",
        request(
            model_path(CLAUDE, "invoke"),
            {
                "messages": [],
                "tools": [
                    {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
                    {"type": "custom", "name": "f", "input_schema": {}},
                    {"type": "bash_20250124", "name": "bash"},
                ],
            },
        ),
        Asks("chat", CLAUDE, frozenset({"hosted_tools"})),
    ),
    (
        "the anthropic mcp connector",
        request(
            model_path(CLAUDE, "invoke"),
            {"messages": [], "mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "m"}]},
        ),
        Asks("chat", CLAUDE, frozenset({"hosted_tools"})),
    ),
    (
        "tools the app runs itself bring nothing",
        request(
            model_path(CLAUDE, "invoke"),
            {
                "messages": [],
                "tools": [
                    {"type": "custom", "name": "f", "input_schema": {}},
                    {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
                    {"type": "computer_20250124", "name": "computer", "display_width_px": 1, "display_height_px": 1},
                    {"type": "memory_20250818", "name": "memory"},
                    {"type": "function", "function": {"name": "f"}},
                ],
            },
        ),
        Asks("chat", CLAUDE),
    ),
    (
        "count tokens of an invoke body, base64 on the wire as botocore sends a blob",
        request(
            model_path(CLAUDE, "count-tokens"),
            {
                "input": {
                    "invokeModel": {
                        "body": base64.b64encode(
                            json.dumps({"messages": [], "cache_control": {"type": "ephemeral"}}).encode()
                        ).decode()
                    }
                }
            },
        ),
        Asks("chat", CLAUDE, frozenset({"prompt_caching"})),
    ),
    (
        "nova native cachePoint",
        request(
            model_path("eu.amazon.nova-pro-v1:0", "invoke"),
            {"messages": [{"role": "user", "content": [{"text": "x"}, {"cachePoint": {"type": "default"}}]}]},
        ),
        Asks("chat", "eu.amazon.nova-pro-v1:0", frozenset({"prompt_caching"})),
    ),
    (
        "llama vision images",
        request(model_path("us.meta.llama3-2-11b-instruct-v1:0", "invoke"), {"prompt": "x", "images": ["aGk="]}),
        Asks("chat", "us.meta.llama3-2-11b-instruct-v1:0", frozenset({"file_inputs"})),
    ),
    # -- bedrock-agent-runtime
    (
        "agent runtime rerank",
        request(
            "/rerank",
            {
                "queries": [{"type": "TEXT", "textQuery": {"text": "q"}}],
                "sources": [],
                "rerankingConfiguration": {
                    "type": "BEDROCK_RERANKING_MODEL",
                    "bedrockRerankingConfiguration": {"modelConfiguration": {"modelArn": RERANK_ARN}},
                },
            },
            host="bedrock-agent-runtime.eu-central-1.amazonaws.com",
        ),
        Asks("rerank", "amazon.rerank-v1:0", location="eu-central-1"),
    ),
    (
        "retrieve and generate over a knowledge base",
        request(
            "/retrieveAndGenerate",
            {
                "input": {"text": "q"},
                "retrieveAndGenerateConfiguration": {
                    "type": "KNOWLEDGE_BASE",
                    "knowledgeBaseConfiguration": {"knowledgeBaseId": "KB1", "modelArn": FOUNDATION_ARN},
                },
            },
        ),
        Asks("chat", CLAUDE, frozenset({"stored_responses", "file_search"}), location="us-east-1"),
    ),
    (
        "retrieve and generate stream over external sources",
        request(
            "/retrieveAndGenerateStream",
            {
                "input": {"text": "q"},
                "retrieveAndGenerateConfiguration": {
                    "type": "EXTERNAL_SOURCES",
                    "externalSourcesConfiguration": {"modelArn": FOUNDATION_ARN, "sources": []},
                },
            },
        ),
        Asks("stream", CLAUDE, frozenset({"stored_responses", "file_inputs"}), location="us-east-1"),
    ),
    ("retrieve from a knowledge base", request("/knowledgebases/KB1/retrieve", {}), Asks("vector_stores")),
    ("invoke agent", request("/agents/A/agentAliases/B/sessions/S/text", {}), Asks("assistants")),
    # -- bedrock control plane
    (
        "create batch job",
        request("/model-invocation-job", {"jobName": "j", "modelId": EU_CLAUDE, "inputDataConfig": {}}),
        Asks("batch", EU_CLAUDE),
    ),
    ("get batch job", request("/model-invocation-job/job1", method="GET"), Asks("batch")),
    ("list batch jobs", request("/model-invocation-jobs", method="GET"), Asks("batch")),
    (
        "create customization job",
        request("/model-customization-jobs", {"jobName": "j", "baseModelIdentifier": FOUNDATION_ARN}),
        Asks("fine_tune", CLAUDE, location="us-east-1"),
    ),
    ("list customization jobs", request("/model-customization-jobs", method="GET"), Asks("fine_tune")),
    ("list foundation models", request("/foundation-models", method="GET"), Asks("models")),
    ("get an inference profile", request("/inference-profiles/eu.x", method="GET"), Asks("models")),
    ("create an inference profile", request("/inference-profiles", {}), Asks("other")),
    ("set data retention", request("/data-retention", {}, method="PUT"), Asks("other")),
    ("guardrails", request("/guardrails", {}), Asks("other")),
]


def test_a_key_spelled_with_unicode_escapes_is_still_read() -> None:
    body = b'{"messages": [{"role": "user", "content": [{"\\u0063achePoint": {}}, {"text": "an \\"image\\""}]}]}'
    out = request(model_path(CLAUDE, "converse"))._replace(body=body)
    assert READER.read(out) == Asks("chat", CLAUDE, frozenset({"prompt_caching"}))


def test_an_empty_body_carries_nothing() -> None:
    """What ``privsdk explain --url`` sends without --body: the path alone decides."""
    assert READER.read(request(model_path(EU_CLAUDE, "converse"))) == Asks("chat", EU_CLAUDE)
    assert READER.read(request(model_path(TITAN_V2, "invoke"))) == Asks("embed", TITAN_V2)


def test_quoted_words_in_text_are_no_feature() -> None:
    out = request(model_path(CLAUDE, "converse"), converse(system=[{"text": 'say "image" and "cachePoint"'}]))
    assert READER.read(out) == Asks("chat", CLAUDE)


@pytest.mark.parametrize(("case", "out", "expected"), CASES, ids=[c[0] for c in CASES])
def test_reads(case: str, out: Outgoing, expected: Asks) -> None:
    assert READER.read(out) == expected
    assert reader("bedrock") is READER


UNREADABLE: list[tuple[str, Outgoing, str]] = [
    ("unknown first segment", request("/v2/chat", {}), "unknown path shape /v2/..."),
    ("unknown model action", request(model_path(CLAUDE, "predict"), {}), "/model/{modelId}/predict"),
    ("model path too long", request("/model/x/y/converse", HELLO), "unknown path shape /model/"),
    (
        "converse body not JSON",
        request(model_path(CLAUDE, "converse"))._replace(body=b"secret"),
        "Converse request is not a JSON",
    ),
    (
        "invoke body not an object",
        request(model_path(CLAUDE, "invoke"), ["secret"]),
        "InvokeModel request is not a JSON",
    ),
    ("rerank names no model", request("/rerank", {"queries": []}), "rerank request names no model"),
    ("batch job names no model", request("/model-invocation-job", {"jobName": "j"}), "batch request names no model"),
    ("count tokens of nothing", request(model_path(CLAUDE, "count-tokens"), {"input": {}}), "neither"),
    (
        "count tokens of an invoke body sent as plain JSON, not as botocore's base64",
        request(model_path(CLAUDE, "count-tokens"), {"input": {"invokeModel": {"body": '{"messages": []}'}}}),
        "not base64-encoded JSON",
    ),
    ("rerank without a body", request("/rerank"), "rerank request names no model"),
    ("retrieve without configuration", request("/retrieveAndGenerate", {"input": {}}), "no retrieveAndGenerate"),
]


@pytest.mark.parametrize(("case", "out", "message"), UNREADABLE, ids=[c[0] for c in UNREADABLE])
def test_unreadable_names_the_shape_never_the_body(case: str, out: Outgoing, message: str) -> None:
    with pytest.raises(Unreadable) as caught:
        READER.read(out)
    assert message in str(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("path", "method"),
    [
        (model_path(CLAUDE, "invoke"), "POST"),
        (model_path(CLAUDE, "invoke-with-response-stream"), "POST"),
        (model_path(CLAUDE, "converse"), "POST"),
        ("/guardrail/g1/version/1/apply", "POST"),
        ("/agents/A1/agentAliases/B1/sessions/s1/text", "POST"),
        ("/foundation-models", "GET"),
    ],
)
def test_a_body_the_seam_could_not_read_is_unreadable_whatever_the_operation(path: str, method: str) -> None:
    """A seam reports a stream it cannot read and put back as UNREAD_BODY: judged as empty, it went unseen."""
    with pytest.raises(Unreadable, match="pass the body as bytes"):
        READER.read(request(path, method=method)._replace(body=UNREAD_BODY))


def sigv4_header(region: str, service: str = "bedrock") -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential=AKIDFAKE/20261130/{region}/{service}/aws4_request, "
        f"SignedHeaders=content-type;host;x-amz-date, Signature={'0' * 64}"
    )


def signed(out: Outgoing, authorization: str) -> Outgoing:
    return out._replace(headers={**out.headers, "authorization": authorization})


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        (request(model_path(CLAUDE, "converse"), HELLO), Asks("chat", CLAUDE, location="us-east-1")),
        (request(model_path(TITAN_V2, "invoke"), {"inputText": "x"}), Asks("embed", TITAN_V2, location="us-east-1")),
        (request(model_path(FOUNDATION_ARN, "converse"), HELLO), Asks("chat", CLAUDE, location="us-east-1")),
        (request("/foundation-models", method="GET"), Asks("models", location="us-east-1")),
        (request("/agents/A1/agentAliases/B1/sessions/s1/text", {}), Asks("assistants", location="us-east-1")),
    ],
)
def test_a_sigv4_request_is_located_in_the_region_it_is_signed_for(out: Outgoing, expected: Asks) -> None:
    """A declared endpoint (a VPC endpoint, a proxy) does not show the Region; the signature's scope does."""
    assert READER.read(signed(out, sigv4_header("us-east-1"))) == expected


def test_a_request_with_an_api_key_shows_only_its_arns_region() -> None:
    bearer = "Bearer bedrock-api-key-1"
    assert READER.read(signed(request(model_path(CLAUDE, "converse"), HELLO), bearer)) == Asks("chat", CLAUDE)
    assert READER.read(signed(request(model_path(FOUNDATION_ARN, "converse"), HELLO), bearer)).location == "us-east-1"


def test_a_model_arn_of_another_region_than_the_signature_is_unreadable() -> None:
    out = signed(request(model_path(FOUNDATION_ARN, "converse"), HELLO), sigv4_header("eu-central-1"))
    with pytest.raises(Unreadable, match="region_name"):
        READER.read(out)
    rerank = {
        "rerankingConfiguration": {"bedrockRerankingConfiguration": {"modelConfiguration": {"modelArn": RERANK_ARN}}}
    }
    with pytest.raises(Unreadable, match="signed for"):
        READER.read(signed(request("/rerank", rerank), sigv4_header("us-west-2")))


def test_signed_region() -> None:
    assert signed_region({"authorization": sigv4_header("ap-northeast-1")}) == "ap-northeast-1"
    assert signed_region({}) is None
    assert signed_region({"authorization": "Bearer a/b/c/d/e"}) is None
    scope = "AWS4-HMAC-SHA256 Credential=AKID/20261130/"
    assert signed_region({"authorization": scope + "/bedrock/aws4_request, SignedHeaders=host"}) is None  # no Region
    assert signed_region({"authorization": scope + "eu-west-1/aws4_request"}) is None  # no service: not a scope


def _service_requests() -> list[tuple[str, str, str]]:
    """(service, method, path) of every operation in the installed botocore models of the three services."""
    found = []
    data = Path(botocore.__file__).parent / "data"
    for service in ("bedrock-runtime", "bedrock-agent-runtime", "bedrock"):
        model_file = sorted((data / service).glob("*/service-2.json.gz"))[-1]
        operations = json.loads(gzip.decompress(model_file.read_bytes()))["operations"]
        for name, operation in operations.items():
            path = re.sub(r"\{[^}]+\}", "x", operation["http"]["requestUri"].split("?")[0]).rstrip("/") or "/"
            found.append((f"{service}.{name}", operation["http"]["method"], path))
    return found


def test_every_botocore_operation_is_classified() -> None:
    """No operation of the three services' API models is Unreadable by its path (bodies that name a model aside)."""
    unread = []
    for name, method, path in _service_requests():
        try:
            asks = READER.read(request(path, {}, method=method))
        except Unreadable as exc:
            if str(exc).startswith("unknown path shape"):  # an empty body is the test's, not the reader's fault
                unread.append((name, str(exc)))
            continue
        assert asks.operation in {
            "chat", "stream", "embed", "rerank", "batch", "fine_tune", "models", "other", "realtime",
            "assistants", "vector_stores",
        }, name  # fmt: skip
    assert unread == []


def test_model_of() -> None:
    assert model_of("eu.amazon.nova-pro-v1:0") == ("eu.amazon.nova-pro-v1:0", None)
    assert model_of(FOUNDATION_ARN) == (CLAUDE, "us-east-1")
    assert model_of("arn:aws:sagemaker:eu-west-1:1:endpoint/foundation-model/x") == (
        "arn:aws:sagemaker:eu-west-1:1:endpoint/foundation-model/x",
        "eu-west-1",
    )
    assert model_of("arn:broken") == ("arn:broken", None)


def test_region_geographies_are_vocabulary() -> None:
    assert set(REGION_GEOGRAPHY.values()) <= set(GEOGRAPHIES)
    assert geography("eu-central-1") == "eu"
    assert geography("eu-west-2") == "uk"  # London is not in the EEA
    assert geography("eu-central-2") == "ch"
    assert geography("me-south-1") is None


# -- meters -------------------------------------------------------------------------------------------------------


def test_converse_meter_reads_usage_and_keeps_no_body() -> None:
    out = request(model_path(CLAUDE, "converse"), HELLO)
    meter = READER.meter(out, READER.read(out), 200, {})
    assert meter is not None
    body = json.dumps({"output": {"message": {"content": [{"text": "secret"}]}}, "usage": {"inputTokens": 3}})
    meter.feed(body.encode()[:10])
    meter.feed(body.encode()[10:])
    assert meter.tokens() == (3, None)
    assert "secret" not in repr([getattr(meter, s) for s in meter.__slots__])


def test_invoke_meter_reads_headers() -> None:
    out = request(model_path("amazon.titan-embed-text-v2:0", "invoke"), {"inputText": "x"})
    headers = {"x-amzn-bedrock-input-token-count": "7", "x-amzn-bedrock-output-token-count": "0"}
    meter = READER.meter(out, READER.read(out), 200, headers)
    assert meter is not None
    assert meter.tokens() == (7, 0)


def test_error_answers_and_listings_have_no_meter() -> None:
    out = request(model_path(CLAUDE, "converse"), HELLO)
    assert READER.meter(out, READER.read(out), 429, {}) is None
    listing = request("/foundation-models", method="GET")
    assert READER.meter(listing, READER.read(listing), 200, {}) is None


def test_converse_stream_meter_reads_the_metadata_event_across_splits() -> None:
    out = request(model_path(CLAUDE, "converse-stream"), HELLO)
    meter = READER.meter(out, READER.read(out), 200, {})
    assert meter is not None
    stream = (
        event("messageStart", {"role": "assistant"})
        + event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "secret"}})
        + event("metadata", {"usage": {"inputTokens": 11, "outputTokens": 5, "totalTokens": 16}})
    )
    for i in range(0, len(stream), 7):  # frames split anywhere
        meter.feed(stream[i : i + 7])
    assert meter.tokens() == (11, 5)
    assert meter._buffer == b""


def test_invoke_stream_meter_reads_the_last_chunk() -> None:
    out = request(model_path(CLAUDE, "invoke-with-response-stream"), {"messages": []})
    meter = READER.meter(out, READER.read(out), 200, {})
    assert meter is not None

    def chunk(payload: dict[str, Any]) -> bytes:
        encoded = base64.b64encode(json.dumps(payload).encode()).decode()
        headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
        return frame(headers, json.dumps({"bytes": encoded}).encode())

    metrics = {"amazon-bedrock-invocationMetrics": {"inputTokenCount": 4, "outputTokenCount": 9}}
    meter.feed(chunk({"type": "content_block_delta", "delta": {"text": "secret"}}))
    meter.feed(chunk({"type": "message_stop", **metrics}))
    assert meter.tokens() == (4, 9)


def test_stream_meter_ignores_exception_frames_and_garbage() -> None:
    out = request(model_path(CLAUDE, "converse-stream"), HELLO)
    meter = READER.meter(out, READER.read(out), 200, {})
    assert meter is not None
    headers = {":exception-type": "throttlingException", ":message-type": "exception"}
    meter.feed(frame(headers, b'{"message": "secret"}'))
    assert meter.tokens() == (None, None)
    meter.feed(b"\xff" * 40)
    assert meter.tokens() == (None, None)


# -- counts a vendor (or a proxy) got wrong: never an exception, never an absurd count --------------------------


@pytest.mark.parametrize("header", ["²", "٣", "9" * 5000, "1000000000001", "-1", "1e3", "7.0", "", " 7"])
def test_a_header_that_is_no_count_is_none_and_never_raises(header: str) -> None:
    """str.isdigit() is true of '²' and '٣', which int() refuses or reads as digits of another script; int() of
    5,000 digits raises (Python's limit on digit strings); a count past MAX_COUNT is absurd."""
    out = request(model_path("amazon.titan-embed-text-v2:0", "invoke"), {"inputText": "x"})
    headers = {"x-amzn-bedrock-input-token-count": header, "x-amzn-bedrock-output-token-count": "3"}
    meter = READER.meter(out, READER.read(out), 200, headers)
    assert meter is not None
    assert meter.tokens() == (None, 3)


@pytest.mark.parametrize("raw", ["1e999", "Infinity", "NaN", "100000000000000000000", "-1", "true", "7.5"])
def test_a_count_in_an_answer_that_is_no_count_is_none(raw: str) -> None:
    converse = request(model_path(CLAUDE, "converse"), HELLO)
    meter = READER.meter(converse, READER.read(converse), 200, {})
    assert meter is not None
    meter.feed(b'{"output": {}, "usage": {"inputTokens": %s, "outputTokens": 2}}' % raw.encode())
    assert meter.tokens() == (None, 2)
    stream = request(model_path(CLAUDE, "converse-stream"), HELLO)
    meter = READER.meter(stream, READER.read(stream), 200, {})
    assert meter is not None
    headers = {":event-type": "metadata", ":content-type": "application/json", ":message-type": "event"}
    meter.feed(frame(headers, b'{"usage": {"inputTokens": %s, "outputTokens": 2}}' % raw.encode()))
    assert meter.tokens() == (None, 2)


def test_json_nested_past_the_parsers_depth_is_no_count() -> None:
    converse = request(model_path(CLAUDE, "converse"), HELLO)
    meter = READER.meter(converse, READER.read(converse), 200, {})
    assert meter is not None
    meter.feed(b'{"usage": {"inputTokens": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}}")
    assert meter.tokens() == (None, None)


# -- the fields a body of AWS's own schema may hold -----------------------------------------------------------------

CANARY = "canary-value-7f3e"
_BOTOCORE = botocore.session.get_session()


def _members(service: str, operation: str, shape: str | None = None) -> frozenset[str]:
    """The fields botocore puts in the JSON body of ``operation`` (those its input shape, or ``shape``, serialises
    in the body: none in the URI, a header or the query), under their JSON names."""
    model = _BOTOCORE.get_service_model(service)
    found = model.shape_for(shape) if shape else model.operation_model(operation).input_shape
    return frozenset(
        member.serialization.get("name", name)
        for name, member in found.members.items()
        if "location" not in member.serialization
    )


def _top(base: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda fields: {**fields, **base}


KB_CONFIG = {"type": "KNOWLEDGE_BASE", "knowledgeBaseConfiguration": {"knowledgeBaseId": "KB1", "modelArn": RERANK_ARN}}
RERANK_CONFIG = {"bedrockRerankingConfiguration": {"modelConfiguration": {"modelArn": RERANK_ARN}}}
#: Fields of the services' API models privsdk refuses, with why, by body.
REFUSED_BY_DESIGN: dict[str, dict[str, str]] = {
    action: {"guardrailConfig": "a guardrail configured out of sight, which may move content to other Regions"}
    for action in ("Converse", "ConverseStream")
}
#: Each body of AWS's own schema the reader reads: (path, how a body holding some fields is built, the fields of
#: the installed botocore's API model).
BODIES: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]], frozenset[str]]] = {
    "Converse": (model_path(CLAUDE, "converse"), _top(HELLO), _members("bedrock-runtime", "Converse")),
    "ConverseStream": (
        model_path(CLAUDE, "converse-stream"),
        _top(HELLO),
        _members("bedrock-runtime", "ConverseStream"),
    ),
    "CountTokens": (
        model_path(CLAUDE, "count-tokens"),
        _top({"input": {"converse": HELLO}}),
        _members("bedrock-runtime", "CountTokens"),
    ),
    "CountTokens converse input": (
        model_path(CLAUDE, "count-tokens"),
        lambda fields: {"input": {"converse": {**fields, **HELLO}}},
        _members("bedrock-runtime", "CountTokens", "ConverseTokensRequest"),
    ),
    "StartAsyncInvoke": (
        "/async-invoke",
        _top({"modelId": "amazon.nova-reel-v1:0"}),
        _members("bedrock-runtime", "StartAsyncInvoke"),
    ),
    "Rerank": (
        "/rerank",
        _top({"queries": [], "sources": [], "rerankingConfiguration": RERANK_CONFIG}),
        _members("bedrock-agent-runtime", "Rerank"),
    ),
    **{
        operation: (
            f"/{operation[0].lower()}{operation[1:]}",
            _top({"input": {"text": "q"}, "retrieveAndGenerateConfiguration": KB_CONFIG}),
            _members("bedrock-agent-runtime", operation),
        )
        for operation in ("RetrieveAndGenerate", "RetrieveAndGenerateStream")
    },
    "CreateModelInvocationJob": (
        "/model-invocation-job",
        _top({"modelId": CLAUDE}),
        _members("bedrock", "CreateModelInvocationJob"),
    ),
    "CreateModelCustomizationJob": (
        "/model-customization-jobs",
        _top({"baseModelIdentifier": "amazon.titan-text-express-v1"}),
        _members("bedrock", "CreateModelCustomizationJob"),
    ),
}
FIELD_CASES = [(name, field) for name, (_, _, fields) in BODIES.items() for field in sorted(fields)]


def test_the_table_holds_the_api_models_fields() -> None:
    """The API models' bodies are found (``modelId`` of Converse is in its URI, not its body), and each field refused
    by design is one they hold."""
    assert {"messages", "toolConfig", "serviceTier"} <= BODIES["Converse"][2] and "modelId" not in BODIES["Converse"][2]
    assert BODIES["CountTokens"][2] == {"input"}
    for body, refused in REFUSED_BY_DESIGN.items():
        assert refused.keys() <= BODIES[body][2], body


@pytest.mark.parametrize(("body", "field"), FIELD_CASES, ids=[f"{b}.{f}" for b, f in FIELD_CASES])
def test_every_field_of_the_api_model_is_read_or_refused_by_design(body: str, field: str) -> None:
    """A member of a new botocore release fails here until it is judged: put on its body's allow-list in
    privsdk/outbound/wire/bedrock.py, or refused with why in REFUSED_BY_DESIGN."""
    path, build, _ = BODIES[body]
    out = request(path, build({field: None}))
    if field in REFUSED_BY_DESIGN.get(body, {}):
        with pytest.raises(Unreadable, match=f"does not read in .*: {field} "):
            READER.read(out)
    else:
        READER.read(out)


@pytest.mark.parametrize("body", BODIES)
def test_a_field_no_api_model_holds_is_refused_by_name_never_by_value(body: str) -> None:
    path, build, _ = BODIES[body]
    with pytest.raises(Unreadable) as caught:
        READER.read(request(path, build({"zzNewField": CANARY})))
    assert "zzNewField" in str(caught.value) and CANARY not in str(caught.value)


def test_the_fields_of_a_models_own_body_are_the_model_makers() -> None:
    """InvokeModel bodies, and Converse's additionalModelRequestFields, hold a model maker's fields: their features
    are read, their fields are not listed."""
    native = {"anthropic_version": "bedrock-2023-05-31", "messages": [], "top_k": 5, "anthropic_beta": ["x"]}
    assert READER.read(request(model_path(CLAUDE, "invoke"), native)) == Asks("chat", CLAUDE)
    extra = converse(additionalModelRequestFields={"top_k": 5, "reasoning_config": {}})
    assert READER.read(request(model_path(CLAUDE, "converse"), extra)) == Asks("chat", CLAUDE)


# -- guardrails and model fields wherever a request carries them ----------------------------------------------


def _rag(where: str, settings: dict[str, Any]) -> Outgoing:
    config: dict[str, Any] = {"modelArn": FOUNDATION_ARN}
    if where == "knowledgeBaseConfiguration":
        config["knowledgeBaseId"] = "KB1"
    else:
        config["sources"] = []
    stage = "orchestrationConfiguration" if "orchestration" in settings else "generationConfiguration"
    config[stage] = settings.get("orchestration", settings)
    body = {"input": {"text": "q"}, "retrieveAndGenerateConfiguration": {where: config}}
    return request("/retrieveAndGenerate", body, host="bedrock-agent-runtime.eu-central-1.amazonaws.com")


def test_an_invoke_model_guardrail_header_is_refused_as_converses_guardrail_config_is() -> None:
    """botocore puts InvokeModel's ``guardrailIdentifier`` in a header; the guardrail is the one Converse's
    ``guardrailConfig`` names, refused there."""
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    for action in ("invoke", "invoke-with-response-stream"):
        headers = {"content-type": "application/json", "x-amzn-bedrock-guardrailidentifier": "gr-1"}
        out = Outgoing("boto3", "POST", "https", HOST, None, model_path(EU_CLAUDE, action), "", headers, body)
        with pytest.raises(Unreadable, match="X-Amzn-Bedrock-GuardrailIdentifier"):
            READER.read(out)
    with pytest.raises(Unreadable, match="guardrailConfig"):
        READER.read(request(model_path(EU_CLAUDE, "converse"), converse(guardrailConfig={"guardrailIdentifier": "g"})))


@pytest.mark.parametrize("where", ["knowledgeBaseConfiguration", "externalSourcesConfiguration"])
def test_retrieve_and_generate_reads_its_model_fields_and_refuses_its_guardrail(where: str) -> None:
    guarded = {"guardrailConfiguration": {"guardrailId": "g", "guardrailVersion": "1"}}
    with pytest.raises(Unreadable, match="guardrail in RetrieveAndGenerate's generationConfiguration"):
        READER.read(_rag(where, guarded))
    grounding = {"toolConfig": {"tools": [{"systemTool": {"name": "nova_grounding"}}]}}
    each: list[dict[str, Any]] = [
        {"additionalModelRequestFields": grounding},
        {"orchestration": {"additionalModelRequestFields": {"cache_control": {}}}},
    ]
    for settings in each:
        features = READER.read(_rag(where, settings)).features
        assert features - {"stored_responses", "file_search", "file_inputs"}, settings


def test_anthropics_top_level_cache_control_is_prompt_caching() -> None:
    """Anthropic's automatic caching: one ``cache_control`` for the whole request, in an InvokeModel body or in
    Converse's ``additionalModelRequestFields``."""
    native = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "cache_control": {"type": "ephemeral"}}
    native["messages"] = [{"role": "user", "content": "hi"}]
    assert "prompt_caching" in READER.read(request(model_path(EU_CLAUDE, "invoke"), native)).features
    extra = converse(additionalModelRequestFields={"cache_control": {"type": "ephemeral", "ttl": "1h"}})
    assert "prompt_caching" in READER.read(request(model_path(EU_CLAUDE, "converse"), extra)).features


@pytest.mark.parametrize(
    "block",
    [
        {
            "type": "search_result",
            "source": "kb://1",
            "title": "t",
            "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        },
        {
            "type": "document",
            "source": {
                "type": "content",
                "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
            },
        },
        {
            "type": "tool_result",
            "tool_use_id": "1",
            "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
        },
    ],
    ids=["search result", "document of content blocks", "tool result"],
)
def test_a_cache_breakpoint_on_a_block_inside_another_is_prompt_caching(block: dict[str, Any]) -> None:
    """A block may hold others: a breakpoint one level down (a search result's text) was sent unread."""
    native = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10}
    native["messages"] = [{"role": "user", "content": [block]}]
    assert "prompt_caching" in READER.read(request(model_path(CLAUDE, "invoke"), native)).features


def test_a_tool_calls_arguments_are_never_read_as_blocks() -> None:
    """What a tool call's input holds is the app's own data: a key named image or cache_control there is no file
    and no cache."""
    call = {"type": "tool_use", "id": "1", "name": "f", "input": {"image": "x", "cache_control": {"type": "ephemeral"}}}
    native = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10}
    native["messages"] = [{"role": "assistant", "content": [call]}]
    assert READER.read(request(model_path(CLAUDE, "invoke"), native)).features == frozenset()
    use = {"toolUse": {"toolUseId": "1", "name": "f", "input": {"document": {"x": 1}}}}
    body = converse(messages=[{"role": "assistant", "content": [use]}])
    assert READER.read(request(model_path(CLAUDE, "converse"), body)).features == frozenset()
