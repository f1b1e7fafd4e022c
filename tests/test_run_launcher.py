"""``privsdk run``: the program it starts never sends a prompt unguarded, whatever Python runs it.

Every test starts real processes (``python -m privsdk run -- ...``) against a loopback OpenAI stand-in that
no policy declares: a guarded client is refused before it connects, an unguarded one would be answered. When
privsdk run refuses, the stand-in must never have seen a connection, so not one byte of the prompt.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from privsdk.cli import _options_that_skip_the_guard
from tests.conftest import clean_env
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

KEY = "sk-loopback"
#: A program built on the plain openai SDK: exit status 3 when the guard refuses its call, 0 when it was sent.
APP = """\
import sys, openai
client = openai.OpenAI(api_key={key!r}, base_url={url!r} + "/v1", max_retries=0)
try:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "SECRET"}}])
except Exception as exc:
    print(type(exc).__module__, type(exc).__name__)
    sys.exit(3)
print("sent")
"""


class StandIn:
    """The loopback server and every connection it accepted (none means not one byte reached it)."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server, self.url, self.connections = server, server.url, 0

    def count(self, request: Any, client_address: Any) -> bool:
        self.connections += 1
        return True


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    with LoopbackServer(OpenAIWire(key=KEY)) as server:
        seen = StandIn(server)
        monkeypatch.setattr(server._httpd, "verify_request", seen.count)  # socketserver's hook, once a connection
        yield seen
        assert server.errors == []


@pytest.fixture
def app(tmp_path: Path, stand_in: StandIn) -> Path:
    path = tmp_path / "app.py"
    path.write_text(APP.format(key=KEY, url=stand_in.url), encoding="utf-8")
    return path


def privsdk_run(*command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return python("-m", "privsdk", "run", "--", *command, PRIVSDK_REQUIRE="zdr", **env)


def python(*arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    """This Python with ``arguments``, in a clean environment with ``env`` and no usage records."""
    return subprocess.run(
        [sys.executable, *arguments],
        env=clean_env(**{"PRIVSDK_USAGE": "none", **env}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_refused(done: subprocess.CompletedProcess[str], stand_in: StandIn, *says: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    for text in says:
        assert text in done.stderr
    assert "Traceback" not in done.stderr and "SECRET" not in done.stderr
    assert stand_in.connections == 0 and stand_in.server.requests == []


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["-I"], ["-I (isolated mode"]),
        (["-E"], ["-E (ignores PYTHONPATH"]),
        (["-S"], ["-S (skips the site module"]),
        (["-IS"], ["-I (", "-S ("]),
        (["-sE"], ["-E ("]),
        (["-X", "dev", "-W", "ignore", "-I"], ["-I ("]),
        (["-Xfrozen_modules=off", "-bE"], ["-E ("]),
    ],
)
def test_a_python_given_an_option_that_skips_the_guard_is_refused_before_it_starts(
    flags: list[str], named: list[str], app: Path, stand_in: StandIn
) -> None:
    done = privsdk_run(sys.executable, *flags, str(app))
    assert_refused(done, stand_in, "privsdk run refused to start", *named, "-s and -P", "privsdk.instrument()")


def test_python_dash_c_with_isolated_mode_is_refused(app: Path, stand_in: StandIn) -> None:
    done = privsdk_run(sys.executable, "-Ic", app.read_text(encoding="utf-8"))
    assert_refused(done, stand_in, "-I (")


def test_a_console_script_whose_shebang_skips_the_guard_is_refused(tmp_path: Path, stand_in: StandIn) -> None:
    """A script named directly (uvicorn, a tool's entry point) runs under the Python of its #! line."""
    script = tmp_path / "tool"
    script.write_text(f"#!{sys.executable} -E\n" + APP.format(key=KEY, url=stand_in.url), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    done = privsdk_run(str(script))
    assert_refused(done, stand_in, "#! line", "-E (")


@pytest.mark.parametrize("through", ["named", "shebang"])
def test_a_python_with_a_pth_file_beside_it_is_refused(through: str, tmp_path: Path, stand_in: StandIn) -> None:
    """Python 3.11+ reads <executable>._pth on every platform, and starts isolated and without site as -I -S: an
    embedded or relocated Python that ships one ran the program unguarded, and its prompt reached the host."""
    folder = tmp_path / "embedded"
    folder.mkdir()
    interpreter = folder / "python3"
    interpreter.symlink_to(sys.executable)
    (folder / "python3._pth").write_text(".\n", encoding="utf-8")
    program = APP.format(key=KEY, url=stand_in.url)
    if through == "named":
        (tmp_path / "app.py").write_text(program, encoding="utf-8")
        done = privsdk_run(str(interpreter), str(tmp_path / "app.py"))
    else:
        script = tmp_path / "tool"
        script.write_text(f"#!{interpreter}\n" + program, encoding="utf-8")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        done = privsdk_run(str(script))
    assert_refused(done, stand_in, "privsdk run refused to start", "has a ._pth file beside it", "python3._pth")


@pytest.mark.parametrize(
    ("flags", "env"),
    [([], {}), (["-s"], {}), (["-P"], {}), (["-X", "dev", "-W", "ignore"], {}), ([], {"PYTHONNOUSERSITE": "1"})],
)
def test_options_that_keep_the_guard_run_the_program_guarded(
    flags: list[str], env: dict[str, str], app: Path, stand_in: StandIn
) -> None:
    """-s, -P, -X, -W and PYTHONNOUSERSITE leave PYTHONPATH and sitecustomize alone: not refused, and guarded."""
    done = privsdk_run(sys.executable, *flags, str(app), **env)
    assert done.returncode == 3, done.stderr
    assert done.stdout.split() == ["privsdk_openai.dropin", "PolicyViolation"]
    assert stand_in.connections == 0


#: An import hook as typeguard's, beartype's or a lazy importer's: a finder the app puts at the head of
#: sys.meta_path, which finds every module itself (through PathFinder) and wraps its loader.
HOOK = """\
import importlib.abc, importlib.machinery, sys

class Loader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner
    def create_module(self, spec):
        return self.inner.create_module(spec)
    def exec_module(self, module):
        self.inner.exec_module(module)

class Hook(importlib.abc.MetaPathFinder):
    loaded = []
    def find_spec(self, name, path, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None and (spec.origin or "").endswith(".py"):
            spec.loader = Loader(spec.loader)
            self.loaded.append(name)
        return spec

"""


@pytest.mark.parametrize("put", ["sys.meta_path.insert(0, Hook())", "sys.meta_path[:0] = [Hook()]"])
def test_an_import_hook_the_app_puts_first_still_loads_the_sdk_guarded(
    put: str, tmp_path: Path, stand_in: StandIn
) -> None:
    """The hook loads openai (it is the app's), and privsdk's finder, kept ahead of it, patches it: refused."""
    script = tmp_path / "hooked.py"
    check = f"{put}\nimport openai\nassert 'openai' in Hook.loaded and 'openai._client' in Hook.loaded\n"
    script.write_text(HOOK + check + APP.format(key=KEY, url=stand_in.url), encoding="utf-8")
    done = privsdk_run(sys.executable, str(script))
    assert done.returncode == 3, done.stderr
    assert done.stdout.split() == ["privsdk_openai.dropin", "PolicyViolation"]
    assert stand_in.connections == 0


#: Before APP: instrument() from the program's own code, with openai looked up but not loaded (frameworks tell
#: whether a package is installed so), or not importable yet (a folder put on sys.path later brings it).
BEFORE = {
    "looked up first": (
        "import importlib.util, privsdk\nprivsdk.instrument()\nassert importlib.util.find_spec('openai')\n"
    ),
    "importable later": """\
import importlib.abc, sys

class Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] == "openai":
            raise ModuleNotFoundError(name)

hidden = Hidden()
sys.meta_path.insert(0, hidden)
import privsdk
privsdk.instrument()
sys.meta_path.remove(hidden)
""",
}


@pytest.mark.parametrize("before", BEFORE)
def test_instrument_guards_an_sdk_looked_up_first_or_importable_only_later(
    before: str, tmp_path: Path, stand_in: StandIn
) -> None:
    script = tmp_path / "late.py"
    script.write_text(BEFORE[before] + APP.format(key=KEY, url=stand_in.url), encoding="utf-8")
    done = python(str(script), PRIVSDK_REQUIRE="zdr")
    assert done.returncode == 3, done.stderr
    assert done.stdout.split() == ["privsdk_openai.dropin", "PolicyViolation"]
    assert stand_in.connections == 0


#: An app whose first mistralai import is the SDK's Azure or Google Cloud client, then la Plateforme's: it prints, for
#: each client's chat call, the module of the error it raised and its message ("sent" when it was not refused).
MISTRAL_APP = """\
from mistralai.{module} import {cls}
from mistralai.client import Mistral

clients = [{cls}({args}, server_url={url!r}), Mistral(api_key="k", server_url={url!r})]
for client in clients:
    try:
        client.chat.complete(model="mistral-small-2503", messages=[{{"role": "user", "content": "SECRET"}}])
    except Exception as exc:
        print(type(exc).__module__, str(exc).splitlines()[0])
    else:
        print("sent")
"""


@pytest.mark.parametrize(
    ("module", "cls", "args", "offering"),
    [
        ("azure.client", "MistralAzure", "api_key='k'", "mistral.azure"),
        ("gcp.client", "MistralGCP", "access_token='t', project_id='p'", "mistral.vertex"),
    ],
)
def test_an_app_that_imports_mistralais_azure_or_google_cloud_client_first_runs_guarded(
    module: str, cls: str, args: str, offering: str, tmp_path: Path, stand_in: StandIn
) -> None:
    """instrument() waits on each of mistralai's three client modules. The first imported patched the SDK by
    importing privsdk_mistral.dropin, which imports mistralai.client: its callback ran inside the first, on a
    half-initialised drop-in (AttributeError: partially initialized module), and the app died at its import."""
    script = tmp_path / "mistral_app.py"
    script.write_text(MISTRAL_APP.format(module=module, cls=cls, args=args, url=stand_in.url), encoding="utf-8")
    done = privsdk_run(sys.executable, str(script), PRIVSDK_ENDPOINTS=f"{stand_in.url}={offering}")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("privsdk_mistral.dropin ") for line in lines), lines
    assert f"({offering}): unmet: zdr" in lines[0]  # judged on the policy, as the offering it was declared as
    assert "SECRET" not in done.stdout + done.stderr
    assert stand_in.connections == 0 and stand_in.server.requests == []


#: After instrument(), an app imports a drop-in module itself (privsdk's own adapters do), which imports its SDK:
#: the SDK's callback must not run on the drop-in while it is still initialising.
@pytest.mark.parametrize(
    "dropin",
    ["privsdk_mistral.dropin", "privsdk_openai.dropin", "privsdk_cohere.dropin", "privsdk_bedrock.dropin"],
)
def test_instrument_then_a_drop_in_imported_directly_patches_its_sdk(dropin: str) -> None:
    program = (
        "import importlib, privsdk\n"
        "privsdk.instrument()\n"
        f"module = importlib.import_module({dropin!r})\n"
        "constructors = getattr(module, '_constructors', None)\n"
        "print(constructors is None or constructors.patched)\n"
    )
    done = python("-c", program, PRIVSDK_REQUIRE="zdr")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True"]


#: After instrument(), one thread imports an SDK while another imports privsdk's drop-in for it (an app's, or the
#: first privsdk.Client call's): the SDK's callback, importing that drop-in, closed a cycle of module locks, the
#: SDK's import died with importlib's deadlock error, and the SDK was imported again unguarded.
@pytest.mark.parametrize(
    ("sdk", "dropin", "client"),
    [
        ("cohere", "privsdk_cohere.offerings", "cohere.ClientV2(api_key='k', base_url=URL).chat(model='command-r', "
         "messages=[{'role': 'user', 'content': 'SECRET'}])"),
        ("mistralai.client", "privsdk_mistral.dropin", "mistralai.client.Mistral(api_key='k', server_url=URL)"
         ".chat.complete(model='mistral-small-latest', messages=[{'role': 'user', 'content': 'SECRET'}])"),
        ("openai", "privsdk_openai.dropin", "openai.OpenAI(api_key='k', base_url=URL + '/v1', max_retries=0)"
         ".chat.completions.create(model='gpt-4o', messages=[{'role': 'user', 'content': 'SECRET'}])"),
    ],
)  # fmt: skip
def test_an_sdk_imported_while_another_thread_imports_its_drop_in_stays_guarded(
    stand_in: StandIn, sdk: str, dropin: str, client: str
) -> None:
    program = (
        "import importlib, threading, privsdk\n"
        "privsdk.instrument()\n"
        f"URL = {stand_in.url!r}\n"
        "errors, barrier = [], threading.Barrier(2)\n"
        "def load(name):\n"
        "    barrier.wait()\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except BaseException as exc:\n"
        "        errors.append(type(exc).__name__)\n"
        f"threads = [threading.Thread(target=load, args=(n,)) for n in ({sdk!r}, {dropin!r})]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print('import errors:', errors)\n"
        f"import {sdk.split('.')[0]}, {sdk}\n"
        "try:\n"
        f"    {client}\n"
        "    print('sent')\n"
        "except privsdk.PolicyViolation:\n"
        "    print('refused')\n"
    )
    done = python("-c", program)  # the stand-in is declared nowhere: a guarded client refuses it
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["import errors: []", "refused"], done.stdout + done.stderr
    assert stand_in.connections == 0


def test_a_shebang_without_such_an_option_runs_guarded(tmp_path: Path, stand_in: StandIn) -> None:
    script = tmp_path / "tool"
    script.write_text(f"#!{sys.executable} -s\n" + APP.format(key=KEY, url=stand_in.url), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    done = privsdk_run(str(script))
    assert done.returncode == 3, done.stderr
    assert stand_in.connections == 0


#: A launcher's (or an app's) own sitecustomize, as opentelemetry-instrument and ddtrace-run put first on PYTHONPATH.
OTHER_SITECUSTOMIZE = "import sys\nsys.stderr.write('[the other sitecustomize ran]\\n')\n"


@pytest.mark.parametrize("where", ["before privsdk's", "after privsdk's"])
def test_a_sitecustomize_of_the_launcher_or_the_app_runs_and_the_program_stays_guarded(
    where: str, app: Path, tmp_path: Path, stand_in: StandIn
) -> None:
    """Python imports the first sitecustomize on sys.path alone. One a launcher put before privsdk's shadowed the
    guard, and the program's prompt reached the host; one after privsdk's (an app's) never ran. Now privsdk-run.pth
    loads the guard whatever comes first, and privsdk's sitecustomize runs the one it shadows."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text(OTHER_SITECUSTOMIZE, encoding="utf-8")
    if where == "before privsdk's":
        launcher = ["/bin/sh", "-c", f'PYTHONPATH={other}:$PYTHONPATH exec "$@"', "sh"]
        done, pythons = privsdk_run(*launcher, sys.executable, str(app)), 1
    else:  # privsdk run's own Python loads it as well, then the program's, once each
        done, pythons = privsdk_run(sys.executable, str(app), PYTHONPATH=str(other)), 2
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("[the other sitecustomize ran]") == pythons
    assert "privsdk" in done.stdout and "PolicyViolation" in done.stdout
    assert stand_in.connections == 0


def test_a_python_that_cannot_import_privsdk_stops_before_the_program_runs(tmp_path: Path, stand_in: StandIn) -> None:
    """Another venv's Python: site.py would print "Error in sitecustomize" and run the program unguarded."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "other")], check=True, timeout=120)
    python = tmp_path / "other" / ("Scripts" if os.name == "nt" else "bin") / "python"
    program = (
        "import urllib.request\n"
        f"request = urllib.request.Request({stand_in.url!r} + '/v1/chat/completions', method='POST', data=b'"
        '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "SECRET"}]}\', '
        f"headers={{'Authorization': 'Bearer {KEY}', 'Content-Type': 'application/json'}})\n"
        "urllib.request.urlopen(request).read()\n"
        "print('sent')\n"
    )
    done = privsdk_run(str(python), "-c", program)
    assert_refused(done, stand_in, f"this Python ({python}) cannot import privsdk", "No module named 'privsdk'")
    assert "Error in sitecustomize" not in done.stderr


def test_a_launcher_that_is_not_python_starts_python_children_guarded(app: Path, stand_in: StandIn) -> None:
    """A shell (or uv run, a process manager) passes PYTHONPATH on: the Python it starts loads the guard."""
    done = privsdk_run("/bin/sh", "-c", 'exec "$@"', "sh", sys.executable, str(app))
    assert done.returncode == 3, done.stderr
    assert stand_in.connections == 0


def test_a_child_python_whose_guard_fails_to_install_stops_before_the_program_runs(
    app: Path, stand_in: StandIn
) -> None:
    """privsdk run checked the policy in its own environment; a launcher changed it for the Python it starts."""
    done = privsdk_run("/bin/sh", "-c", 'PRIVSDK_REQUIRE=bogus exec "$@"', "sh", sys.executable, str(app))
    assert_refused(
        done, stand_in, "the guard could not be installed", "ConfigError: PRIVSDK_REQUIRE: unknown requirement 'bogus'"
    )


@pytest.mark.parametrize(
    ("options", "found"),
    [
        (["app.py", "-I"], []),
        (["-I", "app.py"], ["I"]),
        (["-bIE", "app.py"], ["I", "E"]),
        (["-II", "-S"], ["I", "S"]),
        (["-c", "pass", "-I"], []),
        (["-Ic", "pass"], ["I"]),
        (["-cI"], []),  # -c's command is "I"
        (["-m", "pkg", "-E"], []),
        (["-Em", "pkg"], ["E"]),
        (["-W", "I", "app.py"], []),  # -W's value, not an option
        (["-WI", "app.py"], []),
        (["-X", "E", "-S"], ["S"]),
        (["-XIE"], []),
        (["--check-hash-based-pycs", "always", "-E"], ["E"]),
        (["-", "-I"], []),
        (["--", "-I"], []),
        (["-s", "-P", "-u", "-O", "-B", "-q"], []),
    ],
)
def test_python_options_are_read_as_python_reads_them(options: list[str], found: list[str]) -> None:
    assert _options_that_skip_the_guard(options) == found
