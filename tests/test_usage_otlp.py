"""OpenTelemetry export: GenAI semantic-convention spans and metrics, in memory and over OTLP/HTTP to a loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from privsdk.usage import Recorder, UsageRecord, open_recorder
from privsdk.usage.otlp import OtlpSink
from tests.usage_collector import Collector, serve_collector
from tests.usage_support import T0, rec

#: A call rerouted to Azure that failed once (429) and then streamed; and a refusal.
RETRIED = rec(
    attempt=1, operation="stream", outcome="error", error_class="rate_limited", http_status=429, input_tokens=None
)
STREAMED = rec(
    attempt=2, operation="stream", time=T0 + 1, first_chunk_ms=150.0, latency_ms=800.0, tags=(("team", "search"),)
)
REFUSED = rec(
    attempt=0,
    requested_target="cohere/command-r-plus",
    chosen_target=None,
    decision="refuse",
    unmet=("zdr", "region=eu"),
    vendor=None,
    model=None,
    outcome="refused",
    error_class="policy",
    http_status=None,
    input_tokens=None,
    output_tokens=None,
    latency_ms=0.0,
    tags=(),
)
EMBEDDED = rec(operation="embed", vendor="cohere", model="embed-v4.0", output_tokens=None, decision="allow", unmet=())


def in_memory() -> tuple[Recorder, InMemorySpanExporter, InMemoryMetricReader]:
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    recorder = Recorder(lambda: OtlpSink(span_exporter=spans, metric_reader=metrics), linger=0)
    return recorder, spans, metrics


def send(recorder: Recorder, *records: UsageRecord) -> None:
    for r in records:
        recorder.record(r)
    assert recorder.flush(10)


def test_each_record_is_a_genai_client_span() -> None:
    """One CLIENT span per record, named '{operation} {model}', timed from the attempt, with GenAI attributes."""
    recorder, spans, _ = in_memory()
    send(recorder, RETRIED, STREAMED, REFUSED, EMBEDDED)
    retried, streamed, refused, embedded = spans.get_finished_spans()
    assert [s.name for s in (retried, streamed, refused, embedded)] == [
        "chat gpt-4o",
        "chat gpt-4o",
        "chat",
        "embeddings embed-v4.0",
    ]
    assert {s.kind for s in (retried, streamed, refused, embedded)} == {SpanKind.CLIENT}
    assert streamed.start_time == int((T0 + 1) * 1e9)
    assert streamed.end_time is not None and streamed.start_time is not None
    assert streamed.end_time - streamed.start_time == 800_000_000
    assert dict(streamed.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "azure.ai.openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.stream": True,
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 34,
        "gen_ai.response.time_to_first_chunk": 0.15,
        "http.response.status_code": 200,
        "privsdk.schema_version": 1,
        "privsdk.request_id": STREAMED.request_id,
        "privsdk.attempt": 2,
        "privsdk.operation": "stream",
        "privsdk.tenant": "acme",
        "privsdk.data_class": "pii",
        "privsdk.decision": "reroute",
        "privsdk.outcome": "ok",
        "privsdk.requested_target": "openai-mini",
        "privsdk.chosen_target": "azure-eu-gpt4o",
        "privsdk.vendor": "azure",
        "privsdk.unmet": ("zdr", "region=eu"),
        "privsdk.tag.team": "search",
    }
    assert streamed.status.status_code is StatusCode.UNSET
    assert retried.status.status_code is StatusCode.ERROR and retried.status.description is None
    assert (retried.attributes or {})["error.type"] == "rate_limited"
    refused_attrs = dict(refused.attributes or {})
    assert refused_attrs["error.type"] == "policy" and refused_attrs["privsdk.decision"] == "refuse"
    assert "gen_ai.provider.name" not in refused_attrs and "gen_ai.request.model" not in refused_attrs
    assert (embedded.attributes or {})["gen_ai.provider.name"] == "cohere"
    assert len({s.context.trace_id for s in (retried, streamed)}) == 2  # never parented to each other
    recorder.close()


def _points(metrics: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = metrics.get_metrics_data()
    assert data is not None
    out: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


def test_metrics_follow_the_genai_conventions() -> None:
    """Duration in seconds per record; token usage split by gen_ai.token.type; time to first chunk for streams."""
    recorder, _, metrics = in_memory()
    send(recorder, RETRIED, STREAMED, REFUSED, EMBEDDED)
    points = _points(metrics)
    assert set(points) == {
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.time_to_first_chunk",
    }
    assert sum(p.count for p in points["gen_ai.client.operation.duration"]) == 4
    tokens: dict[tuple[str, str], int] = {}
    for p in points["gen_ai.client.token.usage"]:
        key = (p.attributes["gen_ai.token.type"], p.attributes["gen_ai.operation.name"])
        tokens[key] = tokens.get(key, 0) + p.sum
        assert p.explicit_bounds[:3] == (1, 4, 16)  # the conventions' advised buckets
    assert tokens == {("input", "chat"): 12, ("output", "chat"): 34 + 34, ("input", "embeddings"): 12}
    (first,) = points["gen_ai.client.operation.time_to_first_chunk"]
    assert first.sum == pytest.approx(0.15)
    for point in (p for ps in points.values() for p in ps):
        assert "privsdk.request_id" not in point.attributes  # one value per call: never a metric dimension
    errors = [p for p in points["gen_ai.client.operation.duration"] if "error.type" in p.attributes]
    assert sorted(p.attributes["error.type"] for p in errors) == ["policy", "rate_limited"]
    recorder.close()


# -- over OTLP/HTTP -----------------------------------------------------------------------------------


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    with serve_collector(monkeypatch) as server:
        yield server


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(x) for x in v.array_value.values)
    return getattr(v, kind or "string_value")


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


def test_otlp_http_export_reaches_a_collector_with_the_same_attributes(collector: Collector) -> None:
    """PRIVSDK_USAGE=otlp sends spans to /v1/traces and metrics to /v1/metrics of OTEL_EXPORTER_OTLP_ENDPOINT."""
    recorder = open_recorder("otlp", linger=0)
    send(recorder, STREAMED, REFUSED)
    recorder.close(10)
    paths = {path for path, _ in collector.posts}
    assert paths == {"/v1/traces", "/v1/metrics"}
    spans = []
    for path, body in collector.posts:
        if path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                assert _attrs(resource_spans.resource.attributes)["service.name"] == "privsdk-test-app"
                for scope in resource_spans.scope_spans:
                    assert scope.scope.name == "privsdk"
                    spans.extend(scope.spans)
    refused, streamed = sorted(spans, key=lambda s: s.start_time_unix_nano)
    assert streamed.name == "chat gpt-4o" and refused.name == "chat"
    attrs = _attrs(streamed.attributes)
    assert attrs["gen_ai.provider.name"] == "azure.ai.openai"
    assert attrs["gen_ai.usage.output_tokens"] == 34 and attrs["privsdk.unmet"] == ("zdr", "region=eu")
    assert _attrs(refused.attributes)["privsdk.decision"] == "refuse"
    names: set[str] = set()
    for path, body in collector.posts:
        if path == "/v1/metrics":
            for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics:
                for scope in rm.scope_metrics:
                    names.update(m.name for m in scope.metrics)
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= names


def test_otel_sdk_disabled_exports_nothing(collector: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SDK_DISABLED=true, the standard switch, turns the export off."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    recorder = open_recorder("otlp", linger=0)
    send(recorder, STREAMED)
    recorder.close(10)
    assert collector.posts == [] and recorder.failures == 0


def test_a_record_past_otlps_range_costs_only_itself(collector: Collector) -> None:
    """OTLP carries times as unsigned 64-bit nanoseconds and integers as int64: one span past them failed the export
    of every span sent with it, in OpenTelemetry's thread, unseen. A count past MAX_COUNT is none before any sink
    sees it; a time past the year 2554 costs its record alone (counted in failures), never the others' spans."""
    recorder = open_recorder("otlp", linger=0)
    far = rec(time=1e12)  # a valid timestamp to the record's checks (finite, not negative): the year 33658
    send(recorder, STREAMED, far, rec(input_tokens=10**20, output_tokens=2**63), REFUSED)
    recorder.close(10)
    spans = []
    for path, body in collector.posts:
        if path == "/v1/traces":
            for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
                for scope in resource_spans.scope_spans:
                    spans.extend(scope.spans)
    assert len(spans) == 3 and (recorder.written, recorder.failures) == (3, 1)
    counts = [
        (_attrs(s.attributes).get("gen_ai.usage.input_tokens"), _attrs(s.attributes).get("gen_ai.usage.output_tokens"))
        for s in spans
    ]
    assert (None, None) in counts  # the absurd counts are none


EXITS_AT_ONCE = """
import privsdk
from privsdk import openai

try:
    client = openai.OpenAI(api_key="sk-x")
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
except privsdk.PolicyViolation:
    print("refused")
"""


def test_a_script_that_exits_right_after_its_call_still_exports_its_record(collector: Collector) -> None:
    """The recorder's exit hook opens the sink of a script that ends within its first call's record, as the
    interpreter exits: OpenTelemetry's resource detection runs in a thread pool, which cannot start then, and the
    record was lost ("the otlp usage sink failed to write (RuntimeError)")."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVSDK_")}
    env |= {"PRIVSDK_USAGE": "otlp", "PRIVSDK_REQUIRE": "zdr"}
    done = subprocess.run([sys.executable, "-c", EXITS_AT_ONCE], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "refused", "")
    spans = [
        (_attrs(resource_spans.resource.attributes), _attrs(span.attributes))
        for path, body in collector.posts
        if path == "/v1/traces"
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans
        for scope in resource_spans.scope_spans
        for span in scope.spans
    ]
    assert [(r["service.name"], a["privsdk.decision"]) for r, a in spans] == [("privsdk-test-app", "refuse")]
    assert "/v1/metrics" in {path for path, _ in collector.posts}
