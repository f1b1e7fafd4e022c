"""The project promises: light import, docs generated from the data, the README's two commands, CI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from privsdk import tomlcompat
from privsdk.catalogue import default_catalogue
from privsdk.docs_sync import render
from tests.conftest import EXAMPLE_CONFIG, REPO, clean_env

VENDOR_SDKS = [
    "openai",
    "cohere",
    "mistralai",
    "boto3",
    "botocore",
    "vertexai",
    "google.genai",
    "google.cloud.aiplatform",
]


def test_import_privsdk_loads_no_vendor_sdk_and_no_catalogue() -> None:
    code = (
        "import json, sys, privsdk;"
        "import privsdk.catalogue as c;"
        f"print(json.dumps([[m for m in {VENDOR_SDKS!r} if m in sys.modules], sorted(c.default_catalogue()._vendors)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=clean_env())
    sdks, loaded = json.loads(out.stdout)
    assert sdks == []
    assert loaded == []


def test_public_names_resolve_lazily() -> None:
    code = "import sys, privsdk; assert 'privsdk.decision' not in sys.modules; privsdk.decide; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), check=False)
    assert out.returncode == 0, out.stderr
    import privsdk

    for name in privsdk.__all__:
        assert getattr(privsdk, name) is not None


def test_every_name_the_api_page_documents_is_importable_from_privsdk() -> None:
    """docs/api.md says each entry is importable from privsdk itself; the call options, the chat argument types
    and every error class but five were not (``privsdk.RateLimited`` was an AttributeError)."""
    import inspect

    import privsdk
    import privsdk.errors

    page = (REPO / "docs" / "api.md").read_text()
    documented = re.findall(r"^::: privsdk\.[\w.]+\.(\w+)$", page, re.MULTILINE)
    errors = [name for name, value in vars(privsdk.errors).items() if inspect.isclass(value) and name[0] != "_"]
    errors = [name for name in errors if issubclass(getattr(privsdk.errors, name), Exception)]
    assert "::: privsdk.errors" in page and len(documented) > 20 and "RateLimited" in errors
    for name in documented + errors:
        assert name in privsdk.__all__, name
        assert getattr(privsdk, name) is not None, name


def test_generated_docs_match_the_catalogue() -> None:
    """docs/guarantees.md and docs/configuration.md hold the tables the catalogue generates (run `make docs`)."""
    cat = default_catalogue()
    for name in ("guarantees.md", "configuration.md"):
        text = (REPO / "docs" / name).read_text(encoding="utf-8")
        assert "<!-- BEGIN generated:" in text, name
        assert render(text, cat) == text, f"docs/{name} is stale: run `make docs`"


#: The privsdk extra -> the vendor SDK it installs.
ADAPTERS = {
    "openai": "openai",
    "cohere": "cohere",
    "mistral": "mistralai",
    "bedrock": "boto3",
    "vertex": "google-genai",
}


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first_screen = "\n".join(readme.splitlines()[:40])
    assert "make demo" in first_screen and "make test" in first_screen
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert [line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))] == ["make test"]
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "demo: setup\n\t$(VENV)/bin/python examples/offline_demo.py" in makefile


def test_the_makefile_keeps_uv_and_pip_caches_inside_the_checkout(tmp_path: Path) -> None:
    """README: "Nothing is installed or cached outside the checkout", while uv filled ~/.cache/uv (663 MB)."""
    database = subprocess.run(
        ["make", "-p", "-n", "-f", str(REPO / "Makefile"), "clean"],
        cwd=REPO, env=clean_env(HOME=str(tmp_path)), capture_output=True, text=True, timeout=60, check=False,
    ).stdout  # fmt: skip
    variables = dict(re.findall(r"^(UV_CACHE_DIR|PIP_CACHE_DIR) := (.*)$", database, re.MULTILINE))
    assert set(variables) == {"UV_CACHE_DIR", "PIP_CACHE_DIR"}
    for value in variables.values():
        assert Path(value).is_relative_to(REPO / ".tools"), value  # ignored by git, removed by make clean
    assert ".tools/" in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert re.search(r"^clean:\n\trm -rf .*\.tools\b", (REPO / "Makefile").read_text(encoding="utf-8"), re.M)
    assert not (tmp_path / ".cache").exists()
    assert "Nothing is installed or cached outside the checkout" in (REPO / "README.md").read_text(encoding="utf-8")


def test_no_file_holds_an_unresolved_merge_conflict() -> None:
    """A merge left docs/client.md with both sides and their markers once; git's own markers must never ship."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    markers = ("<<<<<<< ", "=======", ">>>>>>> ")
    conflicted = []
    for name in tracked:
        path = REPO / name
        if path.suffix not in {".py", ".md", ".toml", ".txt", ".yml", ".yaml", ".cfg", ""} or not path.is_file():
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        if any(line.startswith(markers[0]) or line == markers[1] or line.startswith(markers[2]) for line in lines):
            conflicted.append(name)
    assert conflicted == []


def test_privsdk_never_comes_from_a_registry() -> None:
    """uv.lock resolves privsdk from the checkout only, and holds no other privsdk distribution."""
    lock = tomlcompat.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
    ours = {p["name"]: p["source"] for p in lock["package"] if p["name"].startswith("privsdk")}
    assert ours == {"privsdk": {"editable": "."}}


def test_a_vendor_extra_brings_only_its_own_vendor_sdk() -> None:
    """`pip install privsdk[openai]` must not pull cohere, mistralai, boto3 or google-genai."""
    lock = tomlcompat.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
    packages = {p["name"]: p for p in lock["package"]}
    extras = packages["privsdk"]["optional-dependencies"]

    def closure(names: list[str], seen: set[str]) -> set[str]:
        for name in names:
            if name not in seen and name in packages:
                seen.add(name)
                closure([dep["name"] for dep in packages[name].get("dependencies", [])], seen)
        return seen

    for extra, sdk in ADAPTERS.items():
        pulled = closure([dep["name"] for dep in extras[extra]], set())
        assert sdk in pulled, extra
        assert not pulled & (set(ADAPTERS.values()) - {sdk}), (extra, pulled & set(ADAPTERS.values()))
    assert set(ADAPTERS.values()) <= closure([dep["name"] for dep in extras["all"]], set())


def test_the_demo_runs_end_to_end_offline(tmp_path: Path) -> None:
    """The README's first command: allowed, refused with nothing sent, rerouted, retried, streamed, summarised."""
    env = clean_env(HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "offline_demo.py")],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    # The commands it suggests run as written, from where it ran (not a checkout: no .venv/ here).
    again = out.stdout.split("look again with: ", 1)[1].split("\n", 1)[0]
    tried = out.stdout.split("Try: ", 1)[1].split("  (every target", 1)[0]
    for command, expected in ((again, "usage records in"), (tried, "tenant acme")):
        ran = subprocess.run(command, shell=True, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0 and expected in ran.stdout, (command, ran.stderr)
    for line in [
        "decision   allow: openai-mini meets no_training",
        "proof      the Cohere stand-in received 0 requests",
        "decision   reroute to azure-eu-gpt4o: openai-mini does not meet region=eu",
        "proof      requests received for it: OpenAI stand-in 0, Azure stand-in 1",
        "attempts   2 (a 429",
        "end        finish stop",
        "acme    cohere-command  refuse",
    ]:
        assert line in out.stdout, line
    assert "Refund" not in out.stdout.split("privsdk usage")[-1]  # the summary holds no content
    # The title counts records and calls; the table's total row counts the same calls, and the 429
    # that was retried to success is a retry, not an error.
    title = next(line for line in out.stdout.splitlines() if line.startswith("usage records in"))
    total = next(line for line in out.stdout.splitlines() if line.startswith("total")).split()
    header = next(line for line in out.stdout.splitlines() if line.startswith("tenant  target")).split()
    figures = dict(zip(header[3:], total[1:], strict=False))
    assert title.endswith(f"6 records, {figures['calls']} calls") and figures["calls"] == "5"
    assert (figures["retries"], figures["errors"]) == ("1", "0")
    assert "The records are in " in out.stdout


def test_the_demo_writes_where_privsdk_usage_says(tmp_path: Path) -> None:
    """`PRIVSDK_USAGE=jsonl:///... make demo` keeps the records there, and the demo says so."""
    path = tmp_path / "demo.jsonl"
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "offline_demo.py")],
        env=clean_env(HOME=str(tmp_path), PRIVSDK_USAGE=f"jsonl://{path}"),
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"usage records: jsonl file {path} (PRIVSDK_USAGE)" in out.stdout
    assert f"The records are in {path}" in out.stdout
    assert len(path.read_text(encoding="utf-8").splitlines()) == 6


def test_the_check_command_prints_the_table() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "privsdk", "check"],
        env=clean_env(PRIVSDK_CONFIG=str(EXAMPLE_CONFIG)), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "tenant acme" in out.stdout and "data class pii" in out.stdout
    assert "reroute  openai-mini" in out.stdout


def test_the_python_example_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "decide.py")],
        env=clean_env(PRIVSDK_CONFIG=str(EXAMPLE_CONFIG)), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "acme/pii -> openai-mini: reroute to azure-eu-gpt4o" in out.stdout
    assert "globex/default -> cohere/command-r-plus: refuse" in out.stdout
