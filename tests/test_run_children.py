"""``privsdk run``: a Python the program starts keeps the launch's policy, whatever environment it is given.

A launcher that starts a child with a trimmed environment (``env={"PATH": ..., "PYTHONPATH": ...}``) keeps
PYTHONPATH, so the child loads the guard, but drops every PRIVSDK_* variable: without the settings privsdk run
records at launch, the child would run under the default policy, which requires nothing. Every test starts real
processes (``python -m privsdk run -- python app.py``, and the children app.py starts) against a loopback OpenAI
stand-in the launch declares in PRIVSDK_ENDPOINTS: ``PRIVSDK_REQUIRE=zdr`` refuses it (openai.api keeps prompts
for abuse monitoring), so a refused child must never have connected to it.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import clean_env
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

KEY = "sk-loopback"
#: A child: asks the stand-in once with its prompt (argv[1]); exit status 3 when the guard refuses, 0 when sent.
ASK = """\
import sys, openai
client = openai.OpenAI(api_key={key!r}, base_url={url!r} + "/v1", max_retries=0)
try:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": sys.argv[1]}}])
except Exception as exc:
    print(type(exc).__name__, exc)
    sys.exit(3)
print("sent")
"""
#: The program privsdk run starts: it starts ASK once per child that argv[1] describes (JSON), each with a
#: minimal environment that keeps PYTHONPATH (as a tool runner or a sandbox does), and prints one JSON line per
#: child. A child's "env" is added to that environment, its "cwd" is where it runs, and its "damage" is done to
#: the settings privsdk run recorded before it starts (none to do when there are none, as before the fix).
APP = """\
import json, os, shutil, subprocess, sys
ASK, HOME = {ask!r}, {home!r}
entries = os.environ["PYTHONPATH"].split(os.pathsep)
folder = next((e for e in entries if os.path.basename(e).startswith("privsdk-run-")), None)
for child in json.loads(sys.argv[1]):
    env = {{"PATH": os.environ["PATH"], "PYTHONPATH": os.environ["PYTHONPATH"], "HOME": HOME}}
    env.update(child.get("env", {{}}))
    damage = child.get("damage")
    if folder and damage == "remove":
        shutil.rmtree(folder)
    elif folder and damage == "garble":
        with open(os.path.join(folder, "settings.json"), "w") as file:
            file.write("{{")
    elif folder and damage == "drop":
        env["PYTHONPATH"] = os.pathsep.join(e for e in entries if e != folder)
    done = subprocess.run(
        [sys.executable, ASK, child["prompt"]], env=env, cwd=child.get("cwd"), capture_output=True, text=True
    )
    print(json.dumps({{"code": done.returncode, "out": done.stdout, "err": done.stderr}}))
"""


class StandIn:
    """The loopback server and every connection it accepted (none means not one byte reached it)."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server, self.url, self.connections = server, server.url, 0

    def count(self, request: Any, client_address: Any) -> bool:
        self.connections += 1
        return True

    def prompts(self) -> list[str]:
        return [r.json()["messages"][0]["content"] for r in self.server.requests]


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    with LoopbackServer(OpenAIWire(key=KEY)) as server:
        seen = StandIn(server)
        monkeypatch.setattr(server._httpd, "verify_request", seen.count)  # the test server's hook, per connection
        yield seen
        assert server.errors == []


@pytest.fixture
def app(tmp_path: Path, stand_in: StandIn) -> Path:
    ask = tmp_path / "ask.py"
    ask.write_text(ASK.format(key=KEY, url=stand_in.url), encoding="utf-8")
    (tmp_path / "home").mkdir()
    path = tmp_path / "app.py"
    path.write_text(APP.format(ask=str(ask), home=str(tmp_path / "home")), encoding="utf-8")
    return path


def privsdk_run(
    app: Path, stand_in: StandIn, children: list[dict[str, Any]], cwd: Path | None = None, **env: str
) -> list[dict[str, Any]]:
    """``privsdk run -- python app.py`` with PRIVSDK_REQUIRE=zdr and the stand-in declared (unless ``env`` says
    otherwise); what each child did. Temporary files go under the test's folder (TMPDIR)."""
    tmp = app.parent / "tmp"
    tmp.mkdir(exist_ok=True)
    launch = {
        "PRIVSDK_REQUIRE": "zdr",
        "PRIVSDK_ENDPOINTS": f"{stand_in.url}/v1=openai.api",
        "PRIVSDK_USAGE": "none",
        "TMPDIR": str(tmp),
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-m", "privsdk", "run", "--", sys.executable, str(app), json.dumps(children)],
        env=clean_env(**launch),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return [json.loads(line) for line in done.stdout.splitlines()]


def settings_folder(app: Path) -> Path:
    (folder,) = (app.parent / "tmp").glob("privsdk-*/privsdk-run-*")
    return folder


@pytest.mark.parametrize(
    "child_env",
    [
        pytest.param({}, id="no-privsdk-variable"),
        pytest.param({"PRIVSDK_USAGE": "none"}, id="some-kept-the-requirement-dropped"),
        pytest.param({"PRIVSDK_ENDPOINTS": "{declared}", "PRIVSDK_TENANT": ""}, id="the-endpoint-kept"),
    ],
)
def test_a_child_with_a_trimmed_environment_keeps_the_launchs_requirement(
    app: Path, stand_in: StandIn, child_env: dict[str, str]
) -> None:
    """The child's policy is the launch's: the stand-in declared (by the launch, or by the child itself), it is
    refused for the launch's zdr, and never connects."""
    env = {name: value.format(declared=f"{stand_in.url}/v1=openai.api") for name, value in child_env.items()}
    [child] = privsdk_run(app, stand_in, [{"prompt": "SECRET", "env": env}])
    assert child["code"] == 3, child
    assert "unmet: zdr" in child["out"], child
    assert stand_in.connections == 0 and stand_in.server.requests == []


def test_a_variable_the_child_sets_itself_is_kept(app: Path, stand_in: StandIn) -> None:
    """An app that sets PRIVSDK_REQUIRE for its child (to "" here) means it: only what the child lacks comes back
    (PRIVSDK_ENDPOINTS, which declares the stand-in, and PRIVSDK_USAGE), so its request is sent."""
    children: list[dict[str, Any]] = [
        {"prompt": "trimmed"},
        {"prompt": "its own", "env": {"PRIVSDK_REQUIRE": ""}},
        {"prompt": "trimmed again"},
    ]
    codes = [child["code"] for child in privsdk_run(app, stand_in, children)]
    assert codes == [3, 0, 3]
    assert stand_in.prompts() == ["its own"] and stand_in.connections == 1


def test_the_settings_are_the_users_alone_and_hold_absolute_paths(app: Path, stand_in: StandIn) -> None:
    """A folder only its user enters, a file only its user reads; a relative path recorded as an absolute one."""
    launch = app.parent / "launch"
    (launch / "tenants").mkdir(parents=True)
    (launch / "policy.toml").write_text("", encoding="utf-8")
    privsdk_run(app, stand_in, [], cwd=launch, PRIVSDK_CONFIG="policy.toml", PRIVSDK_TENANTS="dir://tenants")
    folder = settings_folder(app)
    file = folder / "settings.json"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert json.loads(file.read_text(encoding="ascii")) == {
        "PRIVSDK_REQUIRE": "zdr",
        "PRIVSDK_ENDPOINTS": f"{stand_in.url}/v1=openai.api",
        "PRIVSDK_USAGE": "none",
        "PRIVSDK_CONFIG": str(launch / "policy.toml"),
        "PRIVSDK_TENANTS": f"dir://{launch}/tenants",
    }


@pytest.mark.parametrize("store", ["config", "tenants"])
def test_a_relative_path_still_applies_in_a_child_started_in_another_folder(
    app: Path, stand_in: StandIn, store: str
) -> None:
    """PRIVSDK_CONFIG=policy.toml (or PRIVSDK_TENANTS=dir://tenants) is read from the launch's folder: a child
    running elsewhere, which keeps only PRIVSDK_ENDPOINTS, is still refused for the zdr the file requires."""
    launch, elsewhere = app.parent / "launch", app.parent / "elsewhere"
    (launch / "tenants").mkdir(parents=True)
    elsewhere.mkdir()
    if store == "config":
        (launch / "policy.toml").write_text('default_tenant = "acme"\n[tenants.acme]\nclasses.default = ["zdr"]\n')
        variables = {"PRIVSDK_CONFIG": "policy.toml"}
    else:
        (launch / "tenants" / "acme.toml").write_text('classes.default = ["zdr"]\n')
        variables = {"PRIVSDK_TENANTS": "dir://tenants", "PRIVSDK_TENANT": "acme"}
    declared = {"PRIVSDK_ENDPOINTS": f"{stand_in.url}/v1=openai.api"}
    children = [{"prompt": "SECRET", "env": declared, "cwd": str(elsewhere)}]
    [child] = privsdk_run(app, stand_in, children, cwd=launch, PRIVSDK_REQUIRE="", **variables)
    assert child["code"] == 3, child
    assert "unmet: zdr" in child["out"], child  # the file's requirement: the launch's PRIVSDK_REQUIRE is ""
    assert stand_in.connections == 0 and stand_in.server.requests == []


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("remove", ["cannot read ", "settings.json (No such file or directory)"]),
        ("garble", ["cannot read ", "settings.json (Expecting"]),
        ("drop", ["PYTHONPATH names no privsdk-run-* folder"]),
    ],
)
def test_a_child_that_cannot_read_the_settings_stops_before_it_runs(
    app: Path, stand_in: StandIn, damage: str, says: list[str]
) -> None:
    """Settings removed (a temporary folder cleaned up), unreadable, or no longer named on PYTHONPATH: exit status
    2 and a message naming the file, never a value, before the child's first line; the stand-in sees nothing."""
    [child] = privsdk_run(app, stand_in, [{"prompt": "SECRET", "damage": damage}])
    assert child["code"] == 2 and child["out"] == "", child
    assert child["err"].startswith("privsdk run: refused to start the program: "), child
    for text in says:
        assert text in child["err"], child
    if damage != "drop":  # the file privsdk run wrote, by its whole path
        assert re.search(
            rf"{re.escape(str(app.parent / 'tmp'))}/privsdk-\d+/privsdk-run-\w+/settings\.json", child["err"]
        )
    assert "Traceback" not in child["err"] and "zdr" not in child["err"] and stand_in.url not in child["err"]
    assert stand_in.connections == 0 and stand_in.server.requests == []
