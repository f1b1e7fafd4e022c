"""A property of the openai drop-in: a request reaches the server exactly when the guard's decision allows it.

For random calls (endpoint family, body features, project header) and random
policies (requirements, attestations, some scoped to a project), the drop-in
sends the call to a loopback server declared as OpenAI's API. Whatever the
mix, a refused call raises the drop-in's PolicyViolation and the server's
request log stays empty; an allowed call arrives once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privsdk import openai as dropin
from privsdk.outbound.judge import Guard
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

KEY = "sk-property"
MESSAGES: Any = [{"role": "user", "content": "patient Jane Roe"}]

#: Calls the loopback server serves, each with the keyword arguments that add request features.
CALLS: dict[str, Callable[[Any, dict[str, Any]], object]] = {
    "chat": lambda c, extra: c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **extra),
    "stream": lambda c, extra: list(
        c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra)
    ),
    "responses": lambda c, extra: c.responses.create(
        model="gpt-5", input="hi", **{k: v for k, v in extra.items() if k in ("store", "background")}
    ),
    "embed": lambda c, extra: c.embeddings.create(model="text-embedding-3-small", input="x"),
    "models": lambda c, extra: c.models.list(),
}
FEATURES = st.fixed_dictionaries(
    {},
    optional={
        "store": st.booleans(),
        "web_search_options": st.just({}),
        "prompt_cache_retention": st.sampled_from(["in_memory", "24h"]),
        "extra_body": st.sampled_from([{"background": True}, {"modalities": ["text", "audio"]}]),
    },
)
REQUIREMENTS = st.lists(st.sampled_from(["zdr", "no_training", "hipaa_baa", "region=eu", "no_human_review"]))
ATTESTATIONS = st.lists(
    st.sampled_from(["openai:zdr", "openai:baa", "openai:zdr@proj_a", "openai:baa@proj_b", "openai:region=eu"])
)


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(OpenAIWire(key=KEY)) as running:
        yield running
    Guard.reset_default()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    call=st.sampled_from(sorted(CALLS)),
    extra=FEATURES,
    project=st.sampled_from([None, "proj_a", "proj_b"]),
    required=REQUIREMENTS,
    attested=ATTESTATIONS,
)
def test_a_request_reaches_the_server_exactly_when_it_is_allowed(
    server: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
    call: str,
    extra: dict[str, Any],
    project: str | None,
    required: list[str],
    attested: list[str],
) -> None:
    if "openai:region=eu" in attested and "openai:zdr" not in attested:
        attested = [*attested, "openai:zdr"]  # the catalogue ties EU residency to a ZDR amendment
    env = {
        "PRIVSDK_ENDPOINTS": f"{server.url}=openai.api",
        "PRIVSDK_USAGE": "none",
        "PRIVSDK_REQUIRE": ",".join(dict.fromkeys(required)),
        "PRIVSDK_ATTEST": ",".join(dict.fromkeys(attested)),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    Guard.reset_default()
    server.requests.clear()
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", project=project, max_retries=0)
    try:
        CALLS[call](client, extra)
    except dropin.PolicyViolation as refusal:
        assert server.requests == [], f"refused ({refusal}) yet sent"
        assert "Jane" not in str(refusal)
    except openai.APIStatusError:  # allowed and sent: the stand-in rejects a field it does not model
        assert len(server.requests) == 1
    else:
        assert len(server.requests) == 1
    finally:
        client.close()
        server.errors.clear()
