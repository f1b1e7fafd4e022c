"""A vendor SDK that is not installed: every way in says so, with the command that installs it.

A venv from ``pip install 'privsdk[openai]'`` holds every adapter (one wheel) but only openai's SDK. These
tests run privsdk in a subprocess whose import system hides one SDK (a finder that raises
ModuleNotFoundError for it, as Python does when a package is not installed); nothing is uninstalled.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from privsdk.adapter import vendor_sdk_needed
from privsdk.errors import AdapterMissing
from tests.conftest import EXAMPLE_CONFIG, clean_env

#: The face, the modules its SDK provides (hidden), and the extra that installs it.
FACES = [
    ("openai", ("openai",), "openai"),
    ("cohere", ("cohere",), "cohere"),
    ("mistralai", ("mistralai",), "mistral"),
    ("boto3", ("boto3", "botocore"), "bedrock"),
    ("genai", ("google.genai",), "vertex"),
]

_HIDE = """
import sys

class _Hide:
    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if any(name == n or name.startswith(n + ".") for n in self.names):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Hide(HIDDEN))
"""


def run_hiding(hidden: tuple[str, ...], code: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = _HIDE.replace("HIDDEN", repr(hidden)) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script],
        env=clean_env(PRIVSDK_USAGE="none", **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(("face", "hidden", "extra"), FACES, ids=[f[0] for f in FACES])
def test_a_face_without_its_sdk_raises_adapter_missing_with_the_install_command(
    face: str, hidden: tuple[str, ...], extra: str
) -> None:
    done = run_hiding(
        hidden,
        f"""
        import privsdk
        from privsdk.errors import AdapterMissing
        try:
            from privsdk import {face}
        except AdapterMissing as exc:
            print("AdapterMissing:", exc)
        try:  # as an app guards an optional SDK's import
            from privsdk import {face}
        except ImportError as exc:
            print(type(exc).__mro__.index(ModuleNotFoundError) > 0, exc.name)
        """,
    )
    assert done.returncode == 0, done.stderr
    missing, caught = done.stdout.splitlines()
    assert missing.startswith(f"AdapterMissing: privsdk.{face} needs "), done.stdout
    assert f"pip install 'privsdk[{extra}]'" in missing
    assert caught == f"True {hidden[0]}"


def test_a_client_call_without_boto3_raises_adapter_missing_before_anything_is_sent() -> None:
    done = run_hiding(
        ("boto3", "botocore"),
        """
        import privsdk
        from privsdk.errors import AdapterMissing
        try:
            privsdk.Client().chat("bedrock/anthropic.claude-3-haiku-20240307-v1:0", "hi")
        except AdapterMissing as exc:
            print("AdapterMissing:", exc)
        """,
        AWS_REGION="eu-central-1",
    )
    assert done.returncode == 0, done.stderr
    assert "AdapterMissing: privsdk's 'bedrock' adapter needs boto3, which is not installed" in done.stdout
    assert "pip install 'privsdk[bedrock]'" in done.stdout


def test_a_rerouted_call_passes_over_an_alternative_whose_sdk_is_missing(tmp_path: Path) -> None:
    """docs/client.md: an alternative that cannot carry the call is passed over, and named on the call's error; one
    without its SDK ended the call with AdapterMissing, before the next alternative was tried."""
    config = tmp_path / "privsdk.toml"
    config.write_text(
        """
[targets.mini]
offering = "openai.api"
model = "gpt-4o-mini"

[targets.claude]
offering = "bedrock.runtime"
model = "eu.anthropic.claude-3-7-sonnet-20250219-v1:0"
region = "eu-central-1"
attest = ["region=eu"]

[targets.local]
offering = "selfhosted.vllm"
model = "llama-3.1-8b-instruct"
endpoint = "URL/v1"
attest = ["no_request_logging", "region=eu"]

[tenants.acme]
on_violation = "reroute"
classes.default = ["no_training", "region=eu"]
reroute.mini = ["claude", "local"]
""",
        encoding="utf-8",
    )
    done = run_hiding(
        ("boto3", "botocore"),
        f"""
        import privsdk
        from tests.wire.openai import OpenAIWire
        from tests.wire.server import LoopbackServer

        with LoopbackServer(OpenAIWire(key="unused")) as server:
            path = {str(config)!r}
            with open(path) as f:
                text = f.read().replace("URL", server.url)
            with open(path, "w") as f:
                f.write(text)
            client = privsdk.Client(environ={{"PRIVSDK_CONFIG": path}})
            answer = client.chat("mini", "hi", tenant="acme")
            print(answer.text != "", [r.json()["model"] for r in server.requests])
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True ['llama-3.1-8b-instruct']"


_EXPLAIN = """
from privsdk.cli import main
sys.exit(main(ARGS))
"""


@pytest.mark.parametrize(
    ("target", "hidden", "vendor", "extra"),
    [
        ("bedrock/anthropic.claude-3-haiku-20240307-v1:0", ("boto3", "botocore"), "bedrock", "bedrock"),
        ("cohere/command-r-plus", ("cohere",), "cohere", "cohere"),
        ("vertex/gemini-2.5-flash", ("google.genai",), "vertex", "vertex"),
        ("azure/gpt-4o", ("openai",), "azure", "openai"),
    ],
)
def test_explain_says_the_sdk_is_not_installed(target: str, hidden: tuple[str, ...], vendor: str, extra: str) -> None:
    command = f"pip install 'privsdk[{extra}]'"
    as_json = run_hiding(hidden, _EXPLAIN.replace("ARGS", repr(["explain", target, "--json"])))
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["adapter"] == {"vendor": vendor, "installed": False, "install": command}
    text = run_hiding(hidden, _EXPLAIN.replace("ARGS", repr(["explain", target])))
    assert text.returncode == 0, text.stderr
    assert f"(install it: {command})" in text.stdout


def test_explain_with_another_sdk_missing_says_this_one_is_installed() -> None:
    done = run_hiding(("cohere",), _EXPLAIN.replace("ARGS", repr(["explain", "openai/gpt-4o-mini", "--json"])))
    assert json.loads(done.stdout)["adapter"] == {"vendor": "openai", "installed": True, "install": None}


def test_check_warns_of_each_vendor_whose_sdk_is_missing() -> None:
    """`privsdk check` showed "allow" for targets whose SDK a `pip install 'privsdk[openai]'` venv lacks, with no
    word of it (explain says so per target): it warns once per missing SDK, and its JSON has each adapter."""
    hidden = ("boto3", "botocore", "mistralai", "google.genai")
    config = str(EXAMPLE_CONFIG)
    text = run_hiding(hidden, _EXPLAIN.replace("ARGS", repr(["check"])), PRIVSDK_CONFIG=config)
    assert text.returncode == 0, text.stderr
    warned = sorted(line for line in text.stderr.splitlines() if line.startswith("warning: calls allowed to"))
    assert [line.rsplit("(", 1)[1] for line in warned] == [
        "pip install 'privsdk[bedrock]')",
        "pip install 'privsdk[mistral]')",
        "pip install 'privsdk[vertex]')",
    ], text.stderr
    assert "openai" not in " ".join(warned) and "cohere" not in " ".join(warned)
    as_json = run_hiding(hidden, _EXPLAIN.replace("ARGS", repr(["check", "--json"])), PRIVSDK_CONFIG=config)
    decisions = json.loads(as_json.stdout)
    shown = {(d["target"], d["adapter"]["installed"]) for d in decisions if d["adapter"] is not None}
    assert ("bedrock-eu-claude", False) in shown and ("openai-mini", True) in shown
    assert all(d["adapter"] is None for d in decisions if d["decision"] == "refuse")


def test_only_a_vendor_sdk_that_is_missing_becomes_adapter_missing() -> None:
    with (
        pytest.raises(AdapterMissing, match=r"needs boto3, .*pip install 'privsdk\[bedrock\]'"),
        vendor_sdk_needed("bedrock", "privsdk.boto3"),
    ):
        raise ModuleNotFoundError("No module named 'botocore.session'", name="botocore.session")
    # Anything else (a bug, a module of privsdk's own) passes as it is.
    with pytest.raises(ModuleNotFoundError), vendor_sdk_needed("bedrock", "privsdk.boto3"):
        raise ModuleNotFoundError("No module named 'privsdk_nothing'", name="privsdk_nothing")
    with pytest.raises(ImportError), vendor_sdk_needed("openai", "privsdk.openai"):
        raise ImportError("cannot import name 'BaseClient' from 'openai._base_client'", name="openai._base_client")


def test_instrument_stops_an_sdk_it_cannot_guard_where_the_app_imports_it() -> None:
    """An SDK whose privsdk support cannot be imported (a dependency of another version) went on unguarded under
    instrument() and ``privsdk run``: the app's import of the SDK now fails, saying what to install."""
    done = run_hiding(
        ("privsdk_openai",),
        """
        import privsdk
        from privsdk.errors import AdapterMissing
        privsdk.instrument()
        try:
            import openai
        except AdapterMissing as exc:
            print("AdapterMissing:", exc)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("AdapterMissing: openai is imported, and privsdk cannot guard it"), done.stdout
    assert "pip install 'privsdk[openai]'" in done.stdout
