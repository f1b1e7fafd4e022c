"""Installable with plain pip: the README's install lines, as written, in bare venvs (pip, no uv).

The checkout is copied (its tracked and new files, as git sees them) into a scratch git repository named
``privsdk``, and the README's install block runs line by line next to it: from the checkout, from the git
URL, and from a wheel built with ``pip wheel``. After each line the venv holds exactly the vendor SDKs the
extras asked for, ``pip check`` is clean, and the installed ``privsdk`` answers ``--version``, ``explain``
and one call to a loopback OpenAI stand-in. The wheel and sdist that ``python -m build`` makes are checked
for what they hold: every package folder whole, the license, and no cache.

pip downloads the vendor SDKs and hatchling from PyPI the first time; its cache serves later runs.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from privsdk import __version__
from privsdk.docs_url import DOCS_URL
from tests.conftest import REPO, clean_env
from tests.docs_blocks import blocks
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

#: Import name of each vendor SDK the extras install.
SDKS = {"openai": "openai", "cohere": "cohere", "mistral": "mistralai", "bedrock": "boto3", "vertex": "google.genai"}
PACKAGES = ["privsdk", "privsdk_openai", "privsdk_cohere", "privsdk_mistral", "privsdk_bedrock", "privsdk_vertex"]
CACHES = ("__pycache__", ".pyc", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", ".venv", ".tools")

ONE_CALL = """
import privsdk
client = privsdk.Client()
answer = client.chat("openai/gpt-4o-mini", "Say hello.")
print("answer:", answer.text, answer.decision.outcome)
try:
    client.chat("cohere/command-r-plus", "Say hello.")
except privsdk.ConfigError as missing:
    print("cohere:", missing)
client.close()
"""

#: How pip says where the installed privsdk came from (PEP 610); empty for a wheel found through --find-links.
DIRECT_URL = "from importlib.metadata import distribution; print(distribution('privsdk').read_text('direct_url.json'))"


def readme_install_lines() -> list[str]:
    """The commands of the README's install block (the one whose mark names this test)."""
    (block,) = [b for b in blocks(REPO / "README.md", REPO) if "test_packaging.py" in (b.skip_reason or "")]
    return [line for line in block.code.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def checkout_copy(dest: Path) -> Path:
    """The working tree as git sees it (tracked and untracked, ignored files left out), as a fresh git repo."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run([*git, *args], cwd=dest, check=True, capture_output=True)
    return dest


def bare_venv(path: Path) -> Path:
    """A venv with pip and nothing else; its bin folder."""
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin"


def pip_env(bin_dir: Path, **extra: str) -> dict[str, str]:
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(bin_dir.parent))
    # No .pyc compiling of the vendor SDKs (botocore is large): the same install, in a fraction of the time.
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_NO_COMPILE="1", **extra)
    for name in ("PYTHONPATH", "UV_PYTHON", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        env.pop(name, None)
    return env


def run(args: list[str] | str, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, shell=isinstance(args, str), capture_output=True, text=True, timeout=timeout,
        check=False, executable="/bin/bash" if isinstance(args, str) else None,
    )  # fmt: skip
    assert done.returncode == 0, f"{args}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def installed_sdks(bin_dir: Path, env: dict[str, str], cwd: Path) -> set[str]:
    code = (
        "import importlib.util, json; "
        f"print(json.dumps([k for k, m in {SDKS!r}.items() if importlib.util.find_spec(m.split('.')[0]) "
        "and (m != 'google.genai' or importlib.util.find_spec(m))]))"
    )
    return set(json.loads(run([str(bin_dir / "python"), "-c", code], cwd, env)))


def check_installed(bin_dir: Path, env: dict[str, str], cwd: Path, server: LoopbackServer) -> None:
    """pip check, --version, explain and one call through the installed privsdk, outside the checkout."""
    run([str(bin_dir / "pip"), "check"], cwd, env)
    assert run([str(bin_dir / "privsdk"), "--version"], cwd, env).strip() == f"privsdk {__version__}"
    explained = run([str(bin_dir / "privsdk"), "explain", "openai/gpt-4o-mini"], cwd, env)
    assert explained.startswith("openai/gpt-4o-mini: ALLOW"), explained
    # The README's "Use it" lines, as a pip user runs them: the example policy comes from the installed package.
    policy = run([str(bin_dir / "privsdk"), "example-policy"], cwd, env)
    (cwd / "privsdk.toml").write_text(policy, encoding="utf-8")
    refused = subprocess.run(
        [str(bin_dir / "privsdk"), "explain", "openai/gpt-4o-mini", "--tenant", "globex"],
        cwd=cwd, env={**env, "PRIVSDK_CONFIG": "privsdk.toml", "PRIVSDK_REQUIRE": "zdr"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (refused.returncode, refused.stdout.splitlines()[0]) == (3, "openai/gpt-4o-mini: REFUSE"), refused
    where = run(
        [str(bin_dir / "python"), "-c", "import privsdk, privsdk_openai; print(privsdk_openai.__file__)"], cwd, env
    )
    assert "site-packages" in where and str(REPO) not in where  # the installed copy, not the checkout
    call_env = {
        **env,
        "OPENAI_BASE_URL": f"{server.url}/v1",
        "PRIVSDK_ENDPOINTS": f"{server.url}=openai.api",  # the guard places requests by host: declare the stand-in
        "OPENAI_API_KEY": "sk-packaging",
        "PRIVSDK_USAGE": "none",
    }
    out = run([str(bin_dir / "python"), "-c", ONE_CALL], cwd, call_env)
    assert "answer: Hello from the packaged privsdk allow" in out, out
    if "cohere" not in installed_sdks(bin_dir, env, cwd):
        assert "pip install 'privsdk[cohere]'" in out, out


def squatting_index(root: Path) -> Path:
    """A package index (PEP 503, on disk) whose only project is another ``privsdk``, of a higher version.

    The README's line that installed from wheels (``pip install --find-links dist 'privsdk[all]'``) took it:
    pip picks the highest version from links and indexes alike.
    """
    project = root / "privsdk"
    project.mkdir(parents=True)
    name = "privsdk-99.0-py3-none-any.whl"
    meta = "Metadata-Version: 2.1\nName: privsdk\nVersion: 99.0\n" + "".join(
        f"Provides-Extra: {extra}\n" for extra in ("openai", "cohere", "mistral", "bedrock", "vertex", "all", "otlp")
    )
    with zipfile.ZipFile(project / name, "w") as whl:
        whl.writestr("privsdk/__init__.py", "raise SystemExit('the squatted privsdk')\n")
        whl.writestr("privsdk-99.0.dist-info/METADATA", meta)
        whl.writestr(
            "privsdk-99.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        whl.writestr("privsdk-99.0.dist-info/RECORD", "")
    (project / "index.html").write_text(f'<html><body><a href="{name}">{name}</a></body></html>', encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    app = OpenAIWire(key="sk-packaging")
    app.text = "Hello from the packaged privsdk"
    with LoopbackServer(app) as running:
        yield running


def test_the_readme_install_lines_work_with_plain_pip(tmp_path: Path, server: LoopbackServer) -> None:
    lines = readme_install_lines()
    assert len(lines) == 5, lines  # checkout, git URL, build wheels, privsdk from wheels, then what it needs
    checkout_copy(tmp_path / "privsdk")
    # 1. From the checkout, one extra: the core and the openai SDK, no other vendor's.
    first = bare_venv(tmp_path / "venv")
    env = pip_env(first)
    run(lines[0], tmp_path, env)
    assert installed_sdks(first, env, tmp_path) == {"openai"}
    check_installed(first, env, tmp_path, server)
    # 2. From the git URL, two extras: bedrock's boto3 joins, still no other vendor's SDK.
    run(lines[1], tmp_path, env)
    assert installed_sdks(first, env, tmp_path) == {"openai", "bedrock"}
    check_installed(first, env, tmp_path, server)
    # 3. A wheel built once, installed with every extra. The same venv, less privsdk itself, so that pip
    #    must take privsdk from dist/ and only the missing SDKs are downloaded. An index that offers a
    #    higher privsdk (anyone may publish that name) is searched too: privsdk still comes from dist/.
    run(lines[2], tmp_path, env)
    (wheel,) = (tmp_path / "dist").glob("privsdk-*.whl")
    assert wheel.name == f"privsdk-{__version__}-py3-none-any.whl"
    run([str(first / "pip"), "uninstall", "--yes", "privsdk"], tmp_path, env)
    squatted = {**env, "PIP_EXTRA_INDEX_URL": squatting_index(tmp_path / "index").as_uri()}
    run(lines[3], tmp_path, squatted)
    run(lines[4], tmp_path, squatted)
    assert installed_sdks(first, env, tmp_path) == set(SDKS)
    source = run([str(first / "python"), "-c", DIRECT_URL], tmp_path, env)
    assert "vcs_info" not in source  # the wheel from dist/, not the git install left behind
    check_installed(first, env, tmp_path, server)


def test_the_wheel_and_sdist_hold_what_they_should(tmp_path: Path) -> None:
    """`python -m build` (the sdist, then the wheel from it): every package folder whole, one version, no cache."""
    source = checkout_copy(tmp_path / "privsdk")
    (source / "privsdk" / "__pycache__").mkdir(exist_ok=True)  # a cache that must stay out
    (source / "privsdk" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")
    run([sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"), str(source)], tmp_path, clean_env())
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    names = zipfile.ZipFile(wheel).namelist()
    for package in PACKAGES:
        folder = REPO / package if package == "privsdk" else REPO / "adapters" / package.split("_")[1] / package
        for module in folder.rglob("*"):
            if module.name == "privsdk-run.pth":  # at the wheel's root instead, where site.py runs it
                continue
            if module.is_file() and not any(c in str(module) for c in CACHES):
                assert f"{package}/{module.relative_to(folder).as_posix()}" in names, module
    assert not [n for n in names if any(c in n for c in CACHES)]
    assert "privsdk-run.pth" in names  # at the wheel's root, so in site-packages, where site.py runs it
    meta = zipfile.ZipFile(wheel).read(f"privsdk-{__version__}.dist-info/METADATA").decode()
    assert f"Version: {__version__}" in meta and "Requires-Python: >=3.11" in meta
    assert "License-Expression: Apache-2.0" in meta and f"Project-URL: Documentation, {DOCS_URL}" in meta
    for extra in ("openai", "cohere", "mistral", "bedrock", "vertex", "all", "otlp"):
        assert f"Provides-Extra: {extra}" in meta
    entry_points = zipfile.ZipFile(wheel).read(f"privsdk-{__version__}.dist-info/entry_points.txt").decode()
    for vendor in ("openai", "azure", "selfhosted", "cohere", "mistral", "bedrock", "vertex", "gemini"):
        assert f"{vendor} = privsdk_" in entry_points
    assert any(n.endswith("licenses/LICENSE") for n in names)
    with tarfile.open(sdist) as tar:
        members = [m.split("/", 1)[1] for m in tar.getnames() if "/" in m]
    for needed in ("pyproject.toml", "LICENSE", "README.md", "CHANGELOG.md", "mkdocs.yml", "uv.lock", "Makefile"):
        assert needed in members, needed
    assert "privsdk/catalogue/openai.toml" in members and "adapters/vertex/privsdk_vertex/__init__.py" in members
    assert not [m for m in members if any(c in m for c in CACHES)]
    # `python -m build` made the wheel from the sdist it had just made: the sdist holds what a rebuild needs.
    assert "privsdk_openai/__init__.py" in names


def test_one_version_and_one_docs_address() -> None:
    """pyproject reads the version from privsdk/__init__.py; mkdocs.yml and the messages share DOCS_URL."""
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject and 'path = "privsdk/__init__.py"' in pyproject
    assert f'Documentation = "{DOCS_URL}"' in pyproject
    assert f"site_url: {DOCS_URL}\n" in (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    assert f"## [{__version__}]" in (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "Apache License" in (REPO / "LICENSE").read_text(encoding="utf-8")


def test_what_help_and_the_catalogue_show_names_no_file_or_distribution_a_pip_user_lacks() -> None:
    """help() of a drop-in face and the catalogue's text (its notes end up in refusals) link the site, never a
    docs/ path, and name the extra to install, never a privsdk-<vendor> distribution (there is one wheel)."""
    import importlib

    from privsdk import tomlcompat

    page_path = re.compile(r"\bdocs/[\w.-]+\.md\b")
    distribution = re.compile(r"\bprivsdk-(?:openai|cohere|mistral|bedrock|vertex)\b")
    for face in ("openai", "cohere", "mistralai", "boto3", "genai"):
        doc = importlib.import_module(f"privsdk.{face}").__doc__ or ""
        assert not page_path.search(doc) and not distribution.search(doc), face
        assert "pip install 'privsdk[" in doc, face

    def strings(value: object) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)

    for path in sorted((REPO / "privsdk" / "catalogue").glob("*.toml")):
        data = tomlcompat.loads(path.read_text(encoding="utf-8"))
        shown = [text for text in strings(data) if page_path.search(text) or text.startswith("docs/")]
        assert shown == [], path.name


def test_every_link_to_the_site_names_a_page_it_has() -> None:
    """Messages, docstrings and the catalogue link pages as DOCS_URL + NAME/, each built from docs/NAME.md."""
    link = re.compile(re.escape(DOCS_URL) + r"([\w-]*)/?")
    found = set()
    for root in (REPO / "privsdk", REPO / "adapters"):
        for path in [*root.rglob("*.py"), *root.rglob("*.toml")]:
            for name in link.findall(path.read_text(encoding="utf-8")):
                found.add(name)
                assert name == "" or (REPO / "docs" / f"{name}.md").is_file(), (path, name)
    assert {"guarantees", "dropin-cohere"} <= found


def test_no_message_points_at_a_repository_path() -> None:
    """An installed privsdk has no docs/ folder: messages and --help link the site or name a command.

    Every string in privsdk/ and adapters/ other than a docstring is checked (docstrings are for readers of
    the source); privsdk/docs_sync.py and the Markdown renderer write the docs/ files themselves.
    """
    page_path = re.compile(r"\bdocs/[\w.-]+\.md\b")
    offenders = []
    for root in (REPO / "privsdk", REPO / "adapters"):
        for path in root.rglob("*.py"):
            if path.name == "docs_sync.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and node.body
                and isinstance(node.body[0], ast.Expr)
            }
            for node in ast.walk(tree):
                if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in docstrings:
                    continue
                if page_path.search(node.value):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
    for command in ([], ["explain"], ["check"], ["targets"], ["example-policy"], ["usage"], ["usage", "prune"]):
        shown = subprocess.run(
            [sys.executable, "-m", "privsdk", *command, "--help"], capture_output=True, text=True, check=True
        ).stdout
        assert not page_path.search(shown) and ".md" not in shown, command
    assert DOCS_URL in subprocess.run(
        [sys.executable, "-m", "privsdk", "--help"], capture_output=True, text=True, check=True
    ).stdout.replace("\n", "")
