"""Docs that run: every Python and shell block of README.md and docs/*.md, against loopback stand-ins.

Each page runs as one session (see tests/docs_blocks.py) in a scratch folder that links the checkout's
sources under a scratch HOME, with the test's Python environment on PATH as a plain-pip user's active venv
is: ``privsdk`` and ``python -m privsdk`` work, and a command that names the checkout's ``.venv/`` does not.
The environment is what the README sets up, pointed at loopback servers instead of the vendors:
``PRIVSDK_CONFIG`` names privsdk.toml there, the example policy (``privsdk example-policy``) with Azure's
endpoint at a stand-in, written again before each page (the README's own ``privsdk example-policy >
privsdk.toml`` writes the real endpoint), and OPENAI_BASE_URL names the OpenAI stand-in (declared as
OpenAI's API in PRIVSDK_ENDPOINTS). The default usage store already holds one call, so a block that
reports on usage has something to show. A block that cannot run here carries
``<!-- docs-run: skip (REASON) -->`` right before it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_CONFIG, REPO, clean_env
from tests.docs_blocks import PYTHON, SHELL, Block, blocks, console_commands
from tests.wire.bedrock import BedrockWire
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
#: The pages with at least one block to run (the others hold only prose and data blocks).
RUN_PAGES = [page for page in PAGES if any(b.runs for b in blocks(page, REPO))]
AZURE_KEY, OPENAI_KEY = "azure-stand-in", "sk-stand-in"


def page_blocks(page: Path) -> list[Block]:
    return blocks(page, REPO)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str], str]]:
    """The scratch folder and environment every page runs in, with the stand-ins listening."""
    openai_app, azure_app = OpenAIWire(key=OPENAI_KEY), OpenAIWire(key=AZURE_KEY, model="gpt-4o-2024-08-06")
    with (
        LoopbackServer(openai_app) as openai_server,
        LoopbackServer(azure_app) as azure_server,
        LoopbackServer(BedrockWire()) as bedrock_server,
    ):
        root = tmp_path_factory.mktemp("docs-run")
        work, home = root / "work", root / "home"
        work.mkdir()
        home.mkdir()
        # The sources a page names, linked; never the Makefile or the project files, so a block that ran
        # `make` or `uv sync` here could not rebuild the checkout's .venv with this folder's paths.
        for name in ("README.md", "docs", "examples", "privsdk", "adapters", "tests", "bench"):
            (work / name).symlink_to(REPO / name)
        policy = EXAMPLE_CONFIG.read_text(encoding="utf-8")
        policy, n = re.subn(r'endpoint = "https://[^"]*azure[^"]*"', f'endpoint = "{azure_server.url}"', policy)
        assert n == 1, "the example policy: the azure target's endpoint moved; update this fixture"
        (work / "privsdk.toml").write_text(policy, encoding="utf-8")
        env = clean_env(
            HOME=str(home),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            PRIVSDK_CONFIG=str(work / "privsdk.toml"),  # what the README's `export PRIVSDK_CONFIG=privsdk.toml` means
            OPENAI_BASE_URL=f"{openai_server.url}/v1",
            OPENAI_API_KEY=OPENAI_KEY,
            AZURE_OPENAI_API_KEY=AZURE_KEY,
            # boto3 reaches the Bedrock stand-in through its own endpoint variable; the guard places requests by
            # host, so it is told which stand-in is OpenAI's API and which is Bedrock.
            AWS_ENDPOINT_URL_BEDROCK_RUNTIME=bedrock_server.url,
            PRIVSDK_ENDPOINTS=f"{openai_server.url}=openai.api,{bedrock_server.url}=bedrock.runtime",
            AWS_ACCESS_KEY_ID="AKIDDOCS",
            AWS_SECRET_ACCESS_KEY="docs-secret",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
        )
        for name in ("XDG_DATA_HOME", "VIRTUAL_ENV", "PYTHONPATH"):
            env.pop(name, None)
        seed = "import privsdk; c = privsdk.Client(); c.chat('openai-mini', 'hello', tenant='acme'); c.close()"
        done = subprocess.run([sys.executable, "-c", seed], cwd=work, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        yield work, env, policy


def test_the_parser_finds_fences_marks_and_transcripts(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```python\nx = 1\n```\n\n<!-- docs-run: skip (needs real AWS credentials) -->\n\n"
        "```sh\naws s3 ls\n```\n"
        "```toml\na = 1\n```\n````console\n$ privsdk explain x \\\n    --json\n{}\n...\n$ true\n````\n",
        encoding="utf-8",
    )
    found = blocks(page, tmp_path)
    assert [(b.where, b.lang, b.runs, b.skip_reason) for b in found] == [
        ("page.md:3", "python", True, None),
        ("page.md:9", "sh", False, "needs real AWS credentials"),
        ("page.md:12", "toml", False, None),
        ("page.md:15", "console", True, None),
    ]
    assert console_commands(found[3].code) == [("privsdk explain x  --json", ["{}", "..."]), ("true", [])]


def test_every_mark_is_a_skip_with_a_reason() -> None:
    """A mark that is not ``skip (REASON)`` would silently keep a block from running."""
    for page in PAGES:
        for block in page_blocks(page):
            if block.mark is not None:
                assert block.skip_reason, f"{block.where}: write <!-- docs-run: skip (REASON) -->"


def test_no_block_to_run_names_the_checkouts_venv() -> None:
    """A plain-pip user's environment is wherever they made it: commands say ``privsdk`` or ``python -m privsdk``.

    ``.venv/`` is the checkout's own (``make demo`` makes it); ``.venv/bin/privsdk`` fails with status 127 for
    everyone else.
    """
    named = [b.where for page in PAGES for b in page_blocks(page) if b.runs and ".venv/" in b.code]
    assert named == []


def test_the_readme_and_the_client_pages_have_blocks_to_run() -> None:
    assert {REPO / "README.md", REPO / "docs" / "client.md", REPO / "docs" / "usage-records.md"} <= set(RUN_PAGES)


@pytest.mark.parametrize("page", RUN_PAGES, ids=[str(p.relative_to(REPO)) for p in RUN_PAGES])
def test_the_page_runs(page: Path, session: tuple[Path, dict[str, str], str], tmp_path: Path) -> None:
    runnable = [b for b in page_blocks(page) if b.runs]
    work, env, policy = session
    (work / "privsdk.toml").write_text(policy, encoding="utf-8")
    plan = tmp_path / "blocks.json"
    plan.write_text(json.dumps([b._asdict() for b in runnable]), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tests.docs_blocks", str(plan)],
        cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    ran = re.findall(r"^--- (\S+) \(", done.stdout, re.M)
    assert ran == [b.where for b in runnable]
    assert all(b.lang in PYTHON | SHELL for b in runnable)
    assert shown_but_not_printed(runnable, done.stdout, done.stderr) == []


def shown_but_not_printed(runnable: list[Block], stdout: str, stderr: str) -> list[str]:
    """Each line a console transcript shows under a command (``...`` aside) that the command did not print, as
    ``file:line: `command`: line``, whatever its exit status: a transcript that passes only because its command
    succeeded would show a reader output it never prints.

    A block's commands printed to stdout between its ``--- file:line`` mark and the next (tests/docs_blocks.py
    writes them so); stderr has no marks, and is searched whole.
    """
    parts = re.split(r"^--- (\S+) \(\w+\)\n", stdout, flags=re.M)
    printed = dict(zip(parts[1::2], parts[2::2], strict=True))
    missing = []
    for block in runnable:
        if block.lang not in SHELL or not any(line.startswith("$ ") for line in block.code.splitlines()):
            continue
        for command, shown in console_commands(block.code):
            for line in (line.strip() for line in shown):
                if line and line != "..." and line not in printed.get(block.where, "") and line not in stderr:
                    missing.append(f"{block.where}: `{command}`: {line}")
    return missing


def test_a_transcript_whose_command_succeeds_is_compared_too() -> None:
    """The README once showed REFUSE for a command that, as the README runs it, printed ALLOW and exited 0."""
    code = "$ privsdk explain openai/gpt-4o-mini\nopenai/gpt-4o-mini: REFUSE\n  ...\n$ true\n"
    block = Block("page.md:3", "console", code, None)
    stdout = "--- page.md:3 (console)\nopenai/gpt-4o-mini: ALLOW\n  tenant acme\n"
    assert shown_but_not_printed([block], stdout, "") == [
        "page.md:3: `privsdk explain openai/gpt-4o-mini`: openai/gpt-4o-mini: REFUSE"
    ]
    assert shown_but_not_printed([block], stdout.replace("ALLOW", "REFUSE"), "") == []


def test_the_site_builds_with_no_warning(tmp_path: Path) -> None:
    """`make docs` in short: mkdocs.yml sets strict, so a broken link or an unreadable docstring fails here."""
    mkdocs = Path(sys.executable).parent / "mkdocs"
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, env=clean_env(NO_MKDOCS_2_WARNING="1"), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "WARNING" not in done.stderr, done.stderr
    for page in PAGES[1:]:  # every page of docs/ is on the site
        name = page.relative_to(REPO / "docs").with_suffix("")
        assert (tmp_path / "site" / ("" if name.name == "index" else name) / "index.html").is_file(), page
    assert (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8").count("privsdk.client.Client") > 0
