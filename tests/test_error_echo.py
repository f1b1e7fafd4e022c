"""privsdk's own errors quote a name the app passed only when it has the shape of one: an app may paste a prompt there.

A target, a vendor, a model, a tenant, a data class, a feature, a message's role and an image's media type are
names privsdk checks and, when it cannot use them, names in its error. A multi-word canary with a newline, a
patient's chart as an app would paste it in the wrong place, goes into each through privsdk.Client (plain and
streamed), AsyncClient, the openai drop-in under ``privsdk.scope`` and the Bedrock adapter's image conversion, over
the real SDKs and loopback servers. Each error is searched with everything chained to it (``clean`` of
tests/test_client_errors.py: text, repr, args, attributes, traceback, cause and context), the usage store (JSONL
and SQLite, WAL included) and every log record (the ``logs`` fixture of tests/test_canaries.py). A value of the
right shape is still quoted, as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import privsdk
from privsdk.errors import InvalidInput, PolicyViolation, PrivsdkError, Unsupported
from privsdk.types import Image, Message
from privsdk.usage.report import read_records
from privsdk.usage.spec import parse_spec
from tests import test_dropin_canaries
from tests.test_canaries import MARK, assert_clean, logs  # noqa: F401 - logs is a fixture
from tests.test_client_errors import Vendors, clean, everything, raised

pytestmark = pytest.mark.usefixtures("no_machine_aws", "logs")  # every log record of each test is searched

#: What an app pastes where a name belongs: words, a newline, a patient's chart.
CHART = f"{MARK} Patient Jane Roe, DOB 1980-01-02, diagnosed with HIV.\nSummarise the chart."
#: The image of a data URL whose header is the chart instead of a media type.
CHART_IMAGE = f"data:{CHART};base64,iVBORw0KGgo="

#: Tenants for the Client's calls, added to tests/test_client_errors.py's policy (a target on each vendor):
#: ``acme`` serves calls that name none; ``clinic`` reroutes any OpenAI model it cannot use to Bedrock.
TENANTS = """
[tenants.acme]
classes.default = ["no_training"]
classes.phi = ["no_training", "zdr", "hipaa_baa"]

[tenants.clinic]
on_violation = "reroute"
classes.default = ["no_training"]
reroute."openai/*" = ["br"]
"""


class Store:
    """A usage store of ``kind`` (jsonl or sqlite) in ``tmp_path``, searched whole: a SQLite store's WAL too."""

    def __init__(self, kind: str, tmp_path: Path):
        self.path = tmp_path / ("usage.jsonl" if kind == "jsonl" else "usage.sqlite3")
        self.spec = f"{kind}://{self.path}"

    def outcomes(self) -> list[str]:
        records, _ = read_records(parse_spec(self.spec), since=None, until=None, tenant=None)
        return [record.outcome for record in records]

    def assert_clean(self) -> None:
        for path in self.path.parent.iterdir():
            if path.name.startswith(self.path.name):
                assert_clean(path.read_bytes(), path.name)


@pytest.fixture(params=["jsonl", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return Store(request.param, tmp_path)


@pytest.fixture
def vendors(tmp_path: Path) -> Iterator[Vendors]:
    with Vendors(tmp_path) as found:
        found.config.write_text('default_tenant = "acme"\n' + found.config.read_text() + TENANTS)
        yield found


def _image(media_type: str) -> list[Message]:
    return [Message("user", (Image(data=b"\x89PNG\r\n\x1a\n", media_type=media_type),))]


#: Each way the chart reaches a name: (the call's model, messages and options; the error; what its text says).
CALLS: dict[str, tuple[str, Any, dict[str, Any], type[PrivsdkError], str]] = {
    "target": (CHART, "hi", {}, PolicyViolation, "unknown target (not shown: not a target name): not a target in"),
    "model": ("openai/" + CHART, "hi", {}, PolicyViolation, "unknown model family <model> for openai.api"),
    "fine-tuned model": ("openai/ft:" + CHART, "hi", {}, PolicyViolation, "unknown model family <model> for"),
    "vendor": (CHART + "/gpt-4o", "hi", {}, PolicyViolation, "unknown vendor (not shown: not a vendor name) (vendors:"),
    "tenant": ("oa", "hi", {"tenant": CHART}, PolicyViolation, "unknown tenant (not shown: not a tenant name) (ten"),
    "data class": ("oa", "hi", {"data_class": CHART}, PolicyViolation,
        "tenant 'acme' has no data class (not shown: not a data class name) (classes: default, phi)"),
    "feature": ("oa", "hi", {"features": [CHART]}, PolicyViolation,
        "unknown features (not shown: not a feature name) (features:"),
    # Rerouted to an alternative that cannot carry it (Bedrock has no plain JSON mode): said of the target named.
    "rerouted": ("openai/" + CHART, "hi", {"tenant": "clinic", "response_format": {"type": "json_object"}},
        Unsupported, "(not shown: not a target name): "),
    "role": ("oa", [Message(CHART, (Image(url="https://img.test/a.png"),))], {}, InvalidInput,  # type: ignore[arg-type]
        "messages[0] role must be one of system, user, assistant, tool"),
    "data URL": ("br", [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": CHART_IMAGE}}]}],
        {}, InvalidInput, "an image data URL whose media type is (not shown: not a media type)"),
    "bedrock image": ("br", _image(CHART), {}, Unsupported, "this image's media type is (not shown: not a media type)"),
    "mistral extra key": ("mi", "hi", {"extra": {CHART: 1}}, Unsupported,
        "extra body field(s) (a key not shown: is a secret pasted there?): the mistralai SDK has no parameter"),
}  # fmt: skip


def _checked(exc: BaseException, kind: type[PrivsdkError], says: str) -> None:
    assert isinstance(exc, kind), repr(exc)
    clean(exc)  # no canary in its text, repr, args, attributes, traceback or chain; nothing chained
    assert says in str(exc), str(exc)


@pytest.mark.parametrize("case", list(CALLS))
@pytest.mark.parametrize("stream", [False, True])
def test_a_name_the_client_cannot_use_is_never_quoted(vendors: Vendors, store: Store, case: str, stream: bool) -> None:
    model, messages, options, kind, says = CALLS[case]
    with vendors.client(usage=store.spec) as client:
        exc = raised(lambda: client.chat(model, messages, stream=stream, **options))
    _checked(exc, kind, says)
    if kind is not InvalidInput:  # refused or found unsupported once planned: recorded
        assert store.outcomes(), "the call left no record"
    store.assert_clean()


@pytest.mark.parametrize("case", ["tenant", "data class"])
def test_a_scope_naming_what_is_no_name_is_never_quoted_by_the_client(
    vendors: Vendors, store: Store, case: str
) -> None:
    """The tenant and class from privsdk.scope, as an app serving a request sets them from the request."""
    model, messages, options, kind, says = CALLS[case]
    with vendors.client(usage=store.spec) as client, privsdk.scope(**options):
        exc = raised(lambda: client.chat(model, messages))
    _checked(exc, kind, says)
    assert store.outcomes() == ["refused"]
    store.assert_clean()


@pytest.mark.parametrize("case", list(CALLS))
@pytest.mark.parametrize("stream", [False, True])
def test_a_name_the_async_client_cannot_use_is_never_quoted(
    vendors: Vendors, store: Store, case: str, stream: bool
) -> None:
    model, messages, options, kind, says = CALLS[case]

    async def call() -> BaseException:
        async with vendors.aclient(usage=store.spec) as client:
            try:
                answer = await client.chat(model, messages, stream=stream, **options)
                if stream:
                    async for _ in answer:  # type: ignore[union-attr]
                        pass
            except BaseException as exc:  # the error is what the test checks
                return exc
        raise AssertionError("no error")

    _checked(asyncio.run(call()), kind, says)
    if kind is not InvalidInput:
        assert store.outcomes(), "the call left no record"
    store.assert_clean()


@pytest.mark.parametrize("scope", [{"tenant": CHART}, {"data_class": CHART}], ids=["tenant", "data class"])
def test_a_scope_naming_what_is_no_name_is_never_quoted_by_the_dropins_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Store, scope: dict[str, Any]
) -> None:
    """The guard of a drop-in refuses a request whose scope names an unknown tenant or class: its refusal, the
    openai SDK's kind of error, must not quote what the scope held."""
    from privsdk import openai as dropin

    with test_dropin_canaries.Vendors(tmp_path, store.spec, monkeypatch) as stand_ins:
        client = dropin.OpenAI(api_key="sk-canary", base_url=stand_ins.url("openai") + "/v1", max_retries=0)
        with privsdk.scope(**scope):
            exc = raised(
                lambda: client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
            )
    assert isinstance(exc, dropin.PolicyViolation) and isinstance(exc, PolicyViolation), repr(exc)
    # Raised from the seam's handler of privsdk's own refusal, which it chains: searched with it.
    assert MARK not in everything(exc)
    assert ("(not shown: not a tenant name)" if "tenant" in scope else "has no data class (not shown") in str(exc)
    assert store.outcomes() == ["refused"]
    store.assert_clean()


def test_the_bedrock_adapter_never_quotes_a_media_type_that_is_no_media_type() -> None:
    """Its conversion alone, as every caller of the adapter reaches it (a rerouted drop-in request among them)."""
    from privsdk_bedrock.convert import converse_kwargs

    from privsdk.types import ChatRequest

    model = "anthropic.claude-3-haiku-20240307-v1:0"
    for media_type, shown in ((CHART, "(not shown: not a media type)"), ("image/tiff", "'image/tiff'")):
        exc = raised(lambda: converse_kwargs(model, ChatRequest(tuple(_image(media_type)))))  # noqa: B023
        assert isinstance(exc, Unsupported), repr(exc)
        clean(exc)
        assert shown in str(exc), str(exc)


@pytest.mark.parametrize("tenant", [CHART, f"{MARK}-{'x' * 200}"], ids=["chart", "a name too long to show"])
def test_a_tenant_store_never_quotes_what_is_no_tenant_name(tmp_path: Path, store: Store, tenant: str) -> None:
    """Tenants from a store (the policy file then defines none): a name of no tenant's shape is refused before the
    provider is asked; a long one in that shape is asked for, and not shown either."""
    asked: list[str] = []
    with Vendors(tmp_path) as vendors, vendors.client(usage=store.spec, tenants=asked.append) as client:
        exc = raised(lambda: client.chat("oa", "hi", tenant=tenant))  # the provider knows no tenant: None
    _checked(exc, PolicyViolation, "unknown tenant (not shown: not a tenant name)")
    assert len(asked) == (tenant != CHART)
    assert store.outcomes() == ["refused"]
    store.assert_clean()


#: A name of the right shape that privsdk cannot use: quoted as before. (model, messages, options; the quote).
NAMES: dict[str, tuple[str, Any, dict[str, Any], str]] = {
    "target": ("no-such-target", "hi", {}, "unknown target 'no-such-target': not a target in"),
    "target with a slash": ("openai/claude-x", "hi", {}, "unknown model family 'claude-x' for openai.api"),
    "fine-tuned model": ("openai/ft:nope:acme::x", "hi", {}, "'ft:nope:acme::x' is fine-tuned from 'nope', a model"),
    "vendor": ("nosuch/model-1", "hi", {}, "unknown vendor 'nosuch' (vendors: "),
    "tenant": ("oa", "hi", {"tenant": "nobody"}, "unknown tenant 'nobody' (tenants of "),
    "data class": ("oa", "hi", {"data_class": "secret"}, "tenant 'acme' has no data class 'secret' (classes: "),
    "feature": ("oa", "hi", {"features": ["telepathy"]}, "unknown features telepathy (features: "),
    "media type": ("br", _image("image/tiff"), {}, "webp images; this image's media type is 'image/tiff'"),
}


@pytest.mark.parametrize("case", list(NAMES))
def test_a_name_of_the_right_shape_is_still_quoted(vendors: Vendors, store: Store, case: str) -> None:
    model, messages, options, quoted = NAMES[case]
    with vendors.client(usage=store.spec) as client:
        exc = raised(lambda: client.chat(model, messages, **options))
    assert isinstance(exc, PrivsdkError) and quoted in str(exc), str(exc)
    assert "not shown" not in str(exc)


def test_a_refusal_the_sdk_error_of_which_has_a_text_status_is_recorded_without_one(
    vendors: Vendors, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """A google-genai refusal is also google-genai's ClientError, whose ``status`` is a text
    (``PERMISSION_DENIED``): the record's HTTP status is a vendor answer's, so a refusal's is none, where the text
    went in, was replaced, and had the recorder warn on stderr of a record it counted as invalid."""
    with vendors.client(usage=store.spec) as client:
        exc = raised(lambda: client.chat("ge", "hi", extra={"zz_unknown_field": 1}))
    assert isinstance(exc, PolicyViolation) and "zz_unknown_field" in str(exc)
    records, damaged = read_records(parse_spec(store.spec), since=None, until=None, tenant=None)
    assert [(r.outcome, r.http_status) for r in records] == [("refused", None)] and damaged() == 0
    assert "usage record field" not in capsys.readouterr().err
    assert vendors.sent("gemini") == 0
