"""OpenTelemetry export (``PRIVSDK_USAGE=otlp``): a span and metric points per record, named by the GenAI conventions.

Each record becomes one CLIENT span ``"{gen_ai.operation.name} {gen_ai.request.model}"``
from the attempt's start to its end, with the GenAI attributes and privsdk's
decision attributes (``privsdk.*``), and adds to the histograms
``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage`` and, for
streams, ``gen_ai.client.operation.time_to_first_chunk``. No content attribute
(``gen_ai.input.messages``, ``gen_ai.output.messages``,
``gen_ai.system_instructions``, ``gen_ai.tool.*``) is ever set: a record has no
content to set them from.

The sink exports each batch's spans itself, in the recorder's writer thread,
before ``write()`` returns: an export that fails is a failed write of the batch's
records, counted in ``Recorder.failures``, and a burst of records slows the
writer (and, past the recorder's queue, the app) rather than overflow a queue of
OpenTelemetry's and lose spans unseen. Metric points are aggregated and exported
by OpenTelemetry's periodic reader, and pushed out by ``flush()`` and ``close()``.

The exporters are OTLP/HTTP (``opentelemetry-exporter-otlp-proto-http``) and read
the standard variables: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the ``_TRACES_`` and
``_METRICS_`` ones), ``OTEL_EXPORTER_OTLP_HEADERS``, ``..._TIMEOUT``,
``..._COMPRESSION``, ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_METRIC_EXPORT_INTERVAL``; ``OTEL_SDK_DISABLED=true`` turns export off.
The sink has its own tracer and meter providers, so it neither needs nor
changes the app's global OpenTelemetry setup.

This module imports OpenTelemetry; nothing imports it unless the otlp sink is used.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from privsdk import __version__
from privsdk.usage.record import SCHEMA_VERSION, UsageRecord
from privsdk.usage.writer import PartialWrite

if TYPE_CHECKING:
    from opentelemetry.util.types import AttributeValue

#: privsdk operation -> gen_ai.operation.name. ``rerank`` and the file-keeping operations have no
#: well-known value yet; the conventions allow a custom one, and privsdk's own name is used.
OPERATION_NAMES = {"chat": "chat", "stream": "chat", "embed": "embeddings"}
#: privsdk vendor -> gen_ai.provider.name (the conventions' well-known values). A vendor not listed
#: (``selfhosted``) is reported under its own name, as the conventions allow.
PROVIDER_NAMES = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "cohere": "cohere",
    "mistral": "mistral_ai",
    "bedrock": "aws.bedrock",
    "vertex": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
}
#: The conventions' advised histogram buckets.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
#: The latest time OTLP can carry: fixed64 nanoseconds since 1970 (the year 2554).
_MAX_NANOS = 2**64 - 1
SECONDS_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)


def error_type(rec: UsageRecord) -> str | None:
    """``error.type``: the error class of a failed attempt, ``refused`` or ``cancelled``; None when it went well."""
    if rec.outcome == "ok":
        return None
    if rec.error_class:
        return rec.error_class
    return "_OTHER" if rec.outcome == "error" else rec.outcome


def metric_attributes(rec: UsageRecord) -> dict[str, AttributeValue]:
    """The attributes of a record's metric points: few values each, so that series stay few."""
    attrs: dict[str, AttributeValue] = {
        "gen_ai.operation.name": OPERATION_NAMES.get(rec.operation, rec.operation),
        "privsdk.tenant": rec.tenant,
        "privsdk.data_class": rec.data_class,
        "privsdk.decision": rec.decision,
        "privsdk.outcome": rec.outcome,
    }
    if rec.vendor:
        attrs["gen_ai.provider.name"] = PROVIDER_NAMES.get(rec.vendor, rec.vendor)
    if rec.model:
        attrs["gen_ai.request.model"] = rec.model
    err = error_type(rec)
    if err:
        attrs["error.type"] = err
    return attrs


def span_attributes(rec: UsageRecord) -> dict[str, AttributeValue]:
    """A record's span attributes: the metric attributes plus the per-call ones."""
    attrs = metric_attributes(rec)
    attrs.update(
        {
            "privsdk.schema_version": SCHEMA_VERSION,
            "privsdk.request_id": rec.request_id,
            "privsdk.attempt": rec.attempt,
            "privsdk.operation": rec.operation,
            "privsdk.requested_target": rec.requested_target,
            "privsdk.unmet": list(rec.unmet),
        }
    )
    optional: dict[str, Any] = {
        "privsdk.chosen_target": rec.chosen_target,
        "privsdk.vendor": rec.vendor,
        "gen_ai.usage.input_tokens": rec.input_tokens,
        "gen_ai.usage.output_tokens": rec.output_tokens,
        "http.response.status_code": rec.http_status,
        "gen_ai.response.time_to_first_chunk": None if rec.first_chunk_ms is None else rec.first_chunk_ms / 1000,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    if rec.operation == "stream":
        attrs["gen_ai.request.stream"] = True
    attrs.update({f"privsdk.tag.{k}": v for k, v in rec.tags})
    return attrs


def _resource() -> Resource:
    """The resource OpenTelemetry builds from the environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).

    Its detectors run in a thread pool, which cannot start once the interpreter is exiting: a script that exits
    right after its first call opens the sink then, in the recorder's exit hook. Its records are then sent with
    what the environment's own detector reads, run here.
    """
    try:
        return Resource.create()
    except RuntimeError:  # "can't register atexit after shutdown", "cannot schedule new futures after shutdown"
        unnamed = Resource({"service.name": f"unknown_service:{os.path.basename(sys.executable)}"})
        return unnamed.merge(OTELResourceDetector().detect())


class ExportFailed(Exception):
    """The span exporter did not export a batch's spans (OpenTelemetry's own loggers say why)."""


class _Ended(SpanProcessor):
    """Keeps the spans a batch ends, for :meth:`OtlpSink.write` to export them itself.

    Instead of OpenTelemetry's BatchSpanProcessor, whose queue (2,048 spans) drops spans in a burst, unseen,
    while the recorder counts their records written; and whose exports, in a thread of its own, no failure
    count of the recorder's would see. The writer thread already gathers records into batches, off the call path.
    """

    def __init__(self, exporter: SpanExporter):
        self.exporter = exporter
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)  # only the writer thread ends spans of this provider's

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing waits here: write() exports every span it ends


class OtlpSink:
    """Turns batches of records into spans, which it exports, and metric points, which OpenTelemetry exports.

    ``span_exporter`` and ``metric_reader`` default to OTLP/HTTP configured by
    the ``OTEL_*`` variables; tests pass in-memory ones.
    """

    def __init__(self, *, span_exporter: SpanExporter | None = None, metric_reader: MetricReader | None = None):
        if span_exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            span_exporter = OTLPSpanExporter()
        if metric_reader is None:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            metric_reader = PeriodicExportingMetricReader(OTLPMetricExporter())
        resource = _resource()
        # No shutdown hooks of their own: theirs would run before the recorder's, which still has records to export.
        self._tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self._ended = _Ended(span_exporter)
        self._tracer_provider.add_span_processor(self._ended)
        self._meter_provider = MeterProvider(resource=resource, metric_readers=[metric_reader], shutdown_on_exit=False)
        self._tracer = self._tracer_provider.get_tracer("privsdk", __version__)
        meter = self._meter_provider.get_meter("privsdk", __version__)
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk in a response stream.",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )

    def write(self, batch: Sequence[UsageRecord]) -> None:
        first: Exception | None = None
        spanned = []
        for rec in batch:
            try:
                self._span(rec)
            except Exception as exc:  # one record's failure never costs the others theirs
                first = first or exc
            else:
                spanned.append(rec)
        spans, self._ended.spans = self._ended.spans, []
        # No spans with OTEL_SDK_DISABLED=true (the tracer makes none): then there is nothing to export.
        if spans and self._ended.exporter.export(spans) is not SpanExportResult.SUCCESS:
            # No span of the batch reached the backend: each record is a failure the recorder counts (and logs by
            # this exception's type, once). Its metric points are left out too, so that they count what was sent.
            raise PartialWrite(0) from ExportFailed("the span exporter did not export the batch")
        written = 0
        for rec in spanned:
            try:
                self._metrics(rec)
            except Exception as exc:
                first = first or exc
            else:
                written += 1
        if first is not None:
            raise PartialWrite(written) from first

    def _span(self, rec: UsageRecord) -> None:
        start = int(rec.time * 1e9)
        end = start + int(rec.latency_ms * 1e6)
        if end > _MAX_NANOS:
            # OTLP's times are unsigned 64-bit nanoseconds: a span past them would fail the export of every span
            # of its batch. The record alone is counted as failed instead.
            raise ValueError("a span time past OTLP's range")
        operation = OPERATION_NAMES.get(rec.operation, rec.operation)
        span = self._tracer.start_span(
            f"{operation} {rec.model}" if rec.model else operation,
            # An empty context: the span never takes a parent from whatever the writer thread's context holds.
            context=Context(),
            kind=SpanKind.CLIENT,
            attributes=span_attributes(rec),
            start_time=start,
        )
        if rec.outcome != "ok":
            span.set_status(Status(StatusCode.ERROR))  # no description: error.type says what, in a fixed word
        span.end(end_time=end)

    def _metrics(self, rec: UsageRecord) -> None:
        attrs = metric_attributes(rec)
        self._duration.record(rec.latency_ms / 1000, attrs)
        for kind, count in (("input", rec.input_tokens), ("output", rec.output_tokens)):
            if count is not None:
                self._tokens.record(count, {**attrs, "gen_ai.token.type": kind})
        if rec.first_chunk_ms is not None:
            self._first_chunk.record(rec.first_chunk_ms / 1000, attrs)

    def flush(self) -> None:
        self._tracer_provider.force_flush()
        self._meter_provider.force_flush()

    def close(self) -> None:
        self._tracer_provider.shutdown()
        self._meter_provider.shutdown()
