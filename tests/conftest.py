"""Shared test helpers: a clean environment, policy files, and the CLI as a user runs it."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from privsdk.catalogue import Catalogue, Offering, default_catalogue
from privsdk.policy import Policy, Target, Tenant
from privsdk.vocabulary import parse_requirements

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO / "privsdk" / "example_policy.toml"  # `privsdk example-policy` prints it
#: The targets the example policy defines, in file order.
EXAMPLE_TARGETS = [
    "openai-mini", "azure-eu-gpt4o", "bedrock-eu-claude", "mistral-large", "cohere-command", "vertex-gemini-eu",
    "local-llama",
]  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any PRIVSDK_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVSDK_")}
    env.update(extra)
    env["NO_COLOR"] = "1"
    return env


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m privsdk ARGS`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "privsdk", *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(autouse=True)
def _no_privsdk_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never see the developer's own PRIVSDK_* variables."""
    for key in list(os.environ):
        if key.startswith("PRIVSDK_"):
            monkeypatch.delenv(key)
    judge = sys.modules.get("privsdk.outbound.judge")
    if judge is not None:  # built with a module fixture's client, before this test's environment was set
        judge.Guard.reset_default()
    yield
    judge = sys.modules.get("privsdk.outbound.judge")
    if judge is not None:  # the process-wide guard read this test's environment: the next test reads its own
        judge.Guard.reset_default()


def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> contextlib.ExitStack:
    """Every logger that exists, and every vendor SDK's by name, at DEBUG until the stack closes.

    This is an app debugging itself with everything on; privsdk must still keep content out of its logs.
    """
    from privsdk.sdklogs import SDK_LOGGERS

    stack = contextlib.ExitStack()
    names = {None, *SDK_LOGGERS, *logging.Logger.manager.loggerDict}
    for name in sorted(names, key=lambda n: n or ""):
        stack.enter_context(caplog.at_level(logging.DEBUG, logger=name))
    return stack


@pytest.fixture
def debug_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """PRIVSDK_DEBUG_CHAIN=1: privsdk errors keep the SDK's exception as their cause (to check the mapping)."""
    monkeypatch.setenv("PRIVSDK_DEBUG_CHAIN", "1")


@pytest.fixture
def no_machine_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 sees neither the machine's AWS files nor its AWS_* variables, and never asks instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Records go to a JSONL file (this path; read it back with ``tests.guard_support.records``). A test module
    whose records need more set up defines a ``usage`` fixture of its own."""
    path = tmp_path / "usage.jsonl"
    monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{path}")
    return path


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write a policy file and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "privsdk.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return default_catalogue()


def all_offerings(cat: Catalogue) -> list[Offering]:
    return [o for v in cat.all_vendors() for o in v.offerings.values()]


def model_for(offering: Offering) -> str:
    """A model name the offering serves, made from its first glob that is a plain prefix pattern."""
    for glob in offering.models:
        if "[" not in glob and "?" not in glob:
            name = glob.replace("*", "x")
            if offering.serves_model(name):
                return name
    raise AssertionError(f"no simple model glob in {offering.id}")


def one_target_policy(
    offering: str,
    model: str,
    requirements: list[str],
    attest: frozenset[str] = frozenset(),
    *,
    target_attest: frozenset[str] = frozenset(),
    on_violation: str = "refuse",
    reroute: tuple[tuple[str, tuple[str, ...]], ...] = (),
    extra_targets: tuple[Target, ...] = (),
    max_age: int = 365,
    region: str | None = None,
) -> Policy:
    """A policy with one tenant ``t``, one class ``c`` and a target named ``tgt`` (in ``region``, when given)."""
    tenant = Tenant(
        name="t",
        classes={"c": parse_requirements(requirements)},
        default_class="c",
        on_violation=on_violation,  # type: ignore[arg-type]
        attest=attest,
        reroute=reroute,
        max_catalogue_age_days=max_age,
    )
    targets = {"tgt": Target("tgt", offering, model, target_attest, region=region)}
    targets.update({t.name: t for t in extra_targets})
    return Policy({"t": tenant}, "t", targets)
