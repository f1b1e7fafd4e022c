"""privsdk end to end, offline: no credentials, no network, nothing leaves this machine.

Three loopback servers stand in for OpenAI, Azure OpenAI and Cohere. They
speak each vendor's wire protocol, and the real vendor SDKs talk to them over
HTTP, exactly as they would talk to the vendors. The policy is the real
example (``privsdk example-policy`` prints it), with its targets pointed at the stand-ins.

Run: ``make demo`` (or ``python examples/offline_demo.py`` with privsdk installed). The usage
records go to a fresh temporary SQLite file, or where ``PRIVSDK_USAGE`` says
when it is set (``PRIVSDK_USAGE=jsonl:///tmp/demo.jsonl make demo``), so that
``privsdk usage`` can look at them afterwards.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the stand-in servers live with the tests

import privsdk  # noqa: E402
from privsdk.cli import main as privsdk_cli  # noqa: E402
from privsdk.config import load_policy  # noqa: E402
from privsdk.policy import Policy  # noqa: E402
from privsdk.types import StreamEnd, TextDelta  # noqa: E402
from privsdk.usage.spec import Store, parse_spec  # noqa: E402
from tests.wire.cohere import CohereApp  # noqa: E402
from tests.wire.openai import OpenAIWire, error_body  # noqa: E402
from tests.wire.server import LoopbackServer, Status  # noqa: E402

POLICY_FILE = Path(str(files("privsdk").joinpath("example_policy.toml")))  # privsdk example-policy
BOLD, DIM, RESET = (
    ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() and not os.environ.get("NO_COLOR") else ("",) * 3
)


def privsdk_command() -> str:
    """How to run this Python's privsdk CLI from here, as a user can type it: ``privsdk`` when that is the one
    on PATH (an active venv), else ``PYTHON -m privsdk`` with this very interpreter (``make demo`` runs the
    checkout's .venv without activating it; a plain-pip user's venv can be anywhere)."""
    script = Path(sys.executable).parent / ("privsdk.exe" if os.name == "nt" else "privsdk")
    found = shutil.which("privsdk")
    if found and script.exists() and os.path.samefile(found, script):
        return "privsdk"
    return f"{shlex.quote(shown_path(Path(sys.executable)))} -m privsdk"


def shown_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it (``.venv/bin/python``), else absolute."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path.absolute())


def heading(n: int, text: str) -> None:
    print(f"\n{BOLD}{n}. {text}{RESET}")


def show(label: str, text: str) -> None:
    print(f"   {label:<10} {text}")


def destination(where: Store) -> str:
    """Where this run's usage records go, in words."""
    if where.kind == "otlp":
        return "exported through OpenTelemetry (PRIVSDK_USAGE=otlp; the OTEL_* variables say where)"
    if where.kind == "none":
        return "not kept (PRIVSDK_USAGE=none)"
    chosen = os.environ.get("PRIVSDK_USAGE", "").strip()
    origin = "PRIVSDK_USAGE" if chosen else "a temporary file; PRIVSDK_USAGE chooses another"
    return f"{where.kind} file {where.path} ({origin})"


def stand_in_policy(openai_url: str, azure_url: str, cohere_url: str) -> Policy:
    """The example policy as it is, but for where its targets' requests go."""
    real = load_policy({"PRIVSDK_CONFIG": str(POLICY_FILE)})
    endpoints = {"openai-mini": f"{openai_url}/v1", "azure-eu-gpt4o": azure_url, "cohere-command": cohere_url}
    targets = {name: t._replace(endpoint=endpoints.get(name, t.endpoint)) for name, t in real.targets.items()}
    return Policy(real.tenants, real.default_tenant, targets, real.origin, real.usage)


def main() -> None:
    openai_app = OpenAIWire(key="sk-stand-in", model="gpt-4o-mini-2024-07-18")
    openai_app.text = "Refunds are accepted within 30 days of purchase."
    azure_app = OpenAIWire(key="azure-stand-in", model="gpt-4o-2024-08-06")
    azure_app.text = "Le client demande un remboursement sous 30 jours."
    store = os.environ.get("PRIVSDK_USAGE", "").strip()
    if not store:
        store = f"sqlite://{Path(tempfile.mkdtemp(prefix='privsdk-demo-')) / 'usage.sqlite3'}"
    where = parse_spec(store)

    with (
        LoopbackServer(openai_app) as openai_server,
        LoopbackServer(azure_app) as azure_server,
        LoopbackServer(CohereApp("(a Cohere answer)")) as cohere_server,
    ):
        print(f"{BOLD}privsdk offline demo{RESET}")
        print("Stand-ins on loopback (not the vendors): ", end="")
        print(f"OpenAI {openai_server.url}, Azure OpenAI {azure_server.url}, Cohere {cohere_server.url}")
        print(f"Policy: {POLICY_FILE.relative_to(REPO)} (tenants acme and globex); usage records: {destination(where)}")
        client = privsdk.Client(
            policy=stand_in_policy(openai_server.url, azure_server.url, cohere_server.url),
            usage=store,
            credentials={"openai": {"api_key": "sk-stand-in"}, "azure": {"api_key": "azure-stand-in"}},
            timeout=5.0,
        )

        heading(1, "An allowed call: tenant acme, data class default (requires no_training), target openai-mini")
        answer = client.chat("openai-mini", "Summarise our refund policy in one line.", tenant="acme")
        assert answer.decision is not None
        show("decision", f"{answer.decision.outcome}: openai-mini meets {', '.join(answer.decision.requirements)}")
        show("answer", repr(answer.text))
        show("usage", f"{answer.usage.input_tokens} tokens in, {answer.usage.output_tokens} out")

        heading(2, "A refused call: acme asks for cohere-command (no Cohere attestation: a trial key, which trains)")
        try:
            client.chat("cohere-command", "Customer 4411 wants a refund for order 9921.", tenant="acme")
        except privsdk.PolicyViolation as refusal:
            for unmet in refusal.decision.unmet:
                show("refused", f"{unmet.requirement}: offered {unmet.offered!r}")
                show("source", f"{unmet.source} (as of {unmet.as_of})")
        show("proof", f"the Cohere stand-in received {len(cohere_server.requests)} requests")

        heading(3, "A rerouted call: acme, data class pii (no_training, zdr, region=eu), target openai-mini")
        seen_openai, seen_azure = len(openai_server.requests), len(azure_server.requests)
        answer = client.chat("openai-mini", "Client 4411 demande un remboursement.", tenant="acme", data_class="pii")
        assert answer.decision is not None
        missing = ", ".join(u.requirement for u in answer.decision.unmet)
        show("decision", f"{answer.decision.outcome} to {answer.decision.chosen}: openai-mini does not meet {missing}")
        show("answer", repr(answer.text))
        sent = len(openai_server.requests) - seen_openai, len(azure_server.requests) - seen_azure
        show("proof", f"requests received for it: OpenAI stand-in {sent[0]}, Azure stand-in {sent[1]}")

        heading(4, "A rate-limited call: the OpenAI stand-in answers 429 with retry-after-ms: 400, once")
        openai_server.fail(
            Status(429, {"retry-after-ms": "400"}, error_body("Rate limit reached", code="rate_limit_exceeded"))
        )
        before = len(openai_server.requests)
        started = time.perf_counter()
        answer = client.chat("openai-mini", "Summarise our refund policy in one line.", tenant="acme")
        show("attempts", f"{len(openai_server.requests) - before} (a 429, then a success after the vendor's wait)")
        show("took", f"{time.perf_counter() - started:.2f} s; answer {answer.text!r}")

        heading(5, "A streamed answer: acme, target openai-mini")
        print("   stream     ", end="")
        for event in client.chat("openai-mini", "Summarise our refund policy.", tenant="acme", stream=True):
            if isinstance(event, TextDelta):
                print(event.text + DIM + "|" + RESET, end="", flush=True)
            elif isinstance(event, StreamEnd):
                print(f"\n   {'end':<10} finish {event.finish_reason}, {event.usage.output_tokens} tokens out")

        client.close()

    heading(6, "The usage records these calls left (no prompt or answer is in them): privsdk usage")
    cli = privsdk_command()
    if where.kind in ("sqlite", "jsonl"):
        privsdk_cli(["usage", "--store", store, "--group-by", "tenant,target,decision"])
        print(f"\nThe records are in {where.path}; look again with: {cli} usage --store {shlex.quote(store)}")
    else:
        print(f"   records    {destination(where)}: no local store to summarise")
    policy = shlex.quote(shown_path(POLICY_FILE))
    print(f"\n{DIM}Try: PRIVSDK_CONFIG={policy} {cli} check  (every target, every tenant){RESET}")


if __name__ == "__main__":
    main()
