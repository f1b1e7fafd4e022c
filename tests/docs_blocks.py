"""The code blocks of README.md and docs/*.md, and the driver that runs one page's blocks in order.

A page is one session, as a reader would type it: its Python blocks share one namespace (a later block may
use the ``client`` an earlier one made), and its shell blocks run in bash in between, in page order.

A block preceded (blank lines aside) by ``<!-- docs-run: skip (REASON) -->`` is not run; the reason is
required. Blocks in any other language (toml, json, yaml, plain text) are data, not run.

Shell blocks whose lines start with ``$ `` are console transcripts: each ``$`` line runs on its own, and the
lines under it are the output shown; a command passes when it exits 0, or when it exits non-zero (a refusal
exits 3) with every shown output line, ``...`` aside, in what it printed. Other shell blocks run whole under
``bash -e -o pipefail``.

Run as ``python -m tests.docs_blocks BLOCKS.json``: the file holds one page's blocks; the exit status is 0
when all ran, else 1 after naming the first block that failed (file:line).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any, NamedTuple

PYTHON = frozenset({"python", "py", "python3"})
SHELL = frozenset({"sh", "shell", "bash", "console"})
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
_MARK = re.compile(r"^\s*<!--\s*docs-run:\s*(?P<what>.*?)\s*-->\s*$")
_SKIP = re.compile(r"^skip\s*\((?P<reason>[^)]+)\)$")


class Block(NamedTuple):
    """One fenced block: where it is, its language, its text, and the docs-run mark before it, if any."""

    where: str  # "docs/client.md:10", the line of the opening fence
    lang: str
    code: str
    mark: str | None

    @property
    def runs(self) -> bool:
        return self.lang in PYTHON | SHELL and self.mark is None

    @property
    def skip_reason(self) -> str | None:
        m = _SKIP.match(self.mark or "")
        return m.group("reason").strip() if m else None


def blocks(path: Path, root: Path) -> list[Block]:
    """Every fenced block of the Markdown file ``path``, named relative to ``root``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, start = m.group("fence"), i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(m.group("indent")) :])
            i += 1
        i += 1  # the closing fence
        before = next((line for line in reversed(lines[:start]) if line.strip()), "")
        mark = _MARK.match(before)
        where = f"{path.relative_to(root)}:{start + 1}"
        found.append(Block(where, m.group("lang").lower(), "\n".join(body) + "\n", mark and mark.group("what")))
    return found


def console_commands(code: str) -> list[tuple[str, list[str]]]:
    """A ``$``-transcript as (command, shown output lines); commands continue over lines ending in ``\\``."""
    commands: list[tuple[str, list[str]]] = []
    lines = code.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.startswith("$ "):
            if commands:
                commands[-1][1].append(line)
            continue
        command = line[2:]
        while command.endswith("\\") and i < len(lines):
            command = command[:-1] + " " + lines[i].strip()
            i += 1
        commands.append((command, []))
    return commands


def _shown_lines_match(shown: list[str], printed: str) -> bool:
    wanted = [line.strip() for line in shown if line.strip() and line.strip() != "..."]
    return bool(wanted) and all(line in printed for line in wanted)


def _bash(args: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["bash", *args], capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", "timed out after 120 s\n")


def _run_shell(block: dict[str, str]) -> str | None:
    """Run one shell block; the failure, in words, or None."""
    code = block["code"]
    if any(line.startswith("$ ") for line in code.splitlines()):
        for command, shown in console_commands(code):
            done = _bash(["-o", "pipefail", "-c", command])
            sys.stdout.write(done.stdout)
            sys.stderr.write(done.stderr)
            if done.returncode != 0 and not _shown_lines_match(shown, done.stdout + done.stderr):
                return f"`{command}` exited {done.returncode}"
        return None
    done = _bash(["-e", "-o", "pipefail", "-c", code])
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return None if done.returncode == 0 else f"the block exited {done.returncode}"


def main(argv: list[str]) -> int:
    page: list[dict[str, str]] = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for block in page:
        print(f"--- {block['where']} ({block['lang']})", flush=True)
        failure: str | None = None
        if block["lang"] in PYTHON:
            try:
                exec(compile(block["code"], block["where"], "exec"), namespace)
            except BaseException:
                failure = traceback.format_exc(limit=-3)
        else:
            failure = _run_shell(block)
        sys.stdout.flush()
        if failure is not None:
            print(f"DOCS-RUN FAILED {block['where']}: {failure}", file=sys.stderr, flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
