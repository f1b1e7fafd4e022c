"""Loaded by Python at start-up in a process ``privsdk run`` launched: guard every SDK client it creates.

Fail closed. site.py catches an Exception raised here, prints "Error in sitecustomize" on one line and runs
the program anyway, unguarded; a SystemExit (or any other BaseException) raised here is, on 3.10 to 3.13, a
"Fatal Python error: init_import_site" with a traceback and exit status 1, whatever the code. So when the
guard cannot be installed (this Python cannot import privsdk, or ``instrument()`` fails), this module says why
on stderr and ends the process with ``os._exit(2)`` before the program's first line runs.

Before ``instrument()`` reads the policy, the PRIVSDK_* settings privsdk run recorded at launch are put back
into an environment that lacks them: a child started with a trimmed environment that keeps PYTHONPATH (so it
loads this module) but drops the PRIVSDK_* variables would otherwise run under the default policy, which
requires nothing. Their file, and so this process, must be found: when it is not, the process stops too.

The Python that loads this file may not be privsdk's own (another venv, the system's, even Python 2 when
``python`` names it): the module keeps to syntax every one of them parses (no f-strings, no annotations), for
a SyntaxError here would be one more line site.py prints before running the program unguarded.

Python imports the first ``sitecustomize`` on ``sys.path`` alone. A launcher that puts a folder with its own before
this one (as opentelemetry-instrument and ddtrace-run do) would leave the guard out: so privsdk's wheel also installs
``privsdk-run.pth`` (beside this file), which site.py runs in every Python of privsdk's environment before any
``sitecustomize``, and which imports this module (as ``privsdk.outbound.autoinstrument.sitecustomize``) whenever
``PYTHONPATH`` names a ``privsdk-run-*`` folder. Loaded as ``sitecustomize``, this module then runs the one it
shadows (the environment's own, or an app's later on ``PYTHONPATH``), as Python would have without privsdk run.
"""

import os
import sys

#: privsdk run keeps the launch's settings in a folder of its own, named on PYTHONPATH beside this module's, in
#: one JSON file. Written by privsdk.cli (RUN_SETTINGS_PREFIX and RUN_SETTINGS_FILE there): keep them alike.
SETTINGS_PREFIX = "privsdk-run-"
SETTINGS_FILE = "settings.json"


class _NoSettings(Exception):
    """The launch's settings cannot be put back: the message names the file (never a value) and says why."""


def _settings_file():  # type: () -> str
    """The settings file of the privsdk run that launched this process, found by its folder on PYTHONPATH.

    PYTHONPATH, not another variable, points at it: it is the one variable a child that loads this module
    has kept. The first such folder is taken: a privsdk run started inside the program puts its own first.
    """
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if os.path.basename(entry.rstrip("/" + os.sep)).startswith(SETTINGS_PREFIX):
            return os.path.join(entry, SETTINGS_FILE)
    raise _NoSettings(
        "PYTHONPATH names no " + SETTINGS_PREFIX + "* folder, where privsdk run keeps the PRIVSDK_* settings it "
        "was started with, so this process's policy could be weaker than theirs. Start the program with "
        "privsdk run, and keep PYTHONPATH whole in the environment of the processes it starts."
    )


def _restore_settings():  # type: () -> None
    """Put back every recorded PRIVSDK_* variable this process's environment lacks; keep those it sets.

    A variable the environment sets, even to "", is the launcher's choice and stays. Names are compared in
    any case, as privsdk's configuration compares them: privsdk_require is a misspelt PRIVSDK_REQUIRE, which
    the policy then refuses, not an absent one to fill in.
    """
    import json

    path = _settings_file()
    try:
        with open(path) as file:  # privsdk run writes it in ASCII (JSON escapes the rest)
            recorded = json.load(file)
        if not isinstance(recorded, dict):
            raise ValueError("not a JSON object")
        for name, value in recorded.items():
            # type(name): str, or Python 2's unicode, which its json gives for every string.
            if not name.startswith("PRIVSDK_") or not isinstance(value, type(name)):
                raise ValueError("an entry is not a PRIVSDK_* variable and its value")  # neither shown
    except (OSError, ValueError) as exc:  # (Python 2's IOError falls to the caller's handler: stopped all the same)
        why = getattr(exc, "strerror", None) or str(exc)
        raise _NoSettings(  # noqa: B904 (raise ... from None is Python 3 syntax; see the module's docstring)
            "cannot read " + path + " (" + why + "), the PRIVSDK_* settings privsdk run was started with, so "
            "this process's policy could be weaker than theirs. Start the program with privsdk run again."
        )
    present = set(name.upper() for name in os.environ)
    for name, value in recorded.items():
        if name.upper() not in present:
            os.environ[name] = value


try:
    _restore_settings()
    import privsdk

    privsdk.instrument()
except BaseException as exc:  # whatever it is, the program must not run with its clients unguarded
    _python, _error = str(sys.executable), type(exc).__name__ + ": " + str(exc)
    if isinstance(exc, _NoSettings):
        _why = str(exc)
    elif isinstance(exc, ImportError) and getattr(exc, "name", "privsdk") == "privsdk":
        _why = "this Python (" + _python + ") cannot import privsdk (" + _error + "), so nothing would guard the "
        _why += (
            "SDK clients the program creates. Install privsdk, with the adapters the program needs (e.g. "
            "pip install 'privsdk[openai]'), in this interpreter's environment, or start the program with the "
            "Python privsdk is installed in."
        )
    else:
        _why = "the guard could not be installed in this Python (" + _python + "): " + _error + ". Fix it, then retry."
    try:
        sys.stderr.write("privsdk run: refused to start the program: " + _why + "\n")
        sys.stderr.flush()
    finally:
        os._exit(2)


def _run_the_next_sitecustomize():  # type: () -> None
    """Run the ``sitecustomize`` module on ``sys.path`` after this one's folder, if there is one. Its errors are
    site.py's to report, as they would be without privsdk run."""
    import importlib.machinery
    import importlib.util

    here = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
    folders = [os.path.realpath(entry or os.getcwd()) for entry in sys.path]
    later = sys.path[folders.index(here) + 1 :] if here in folders else []
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", later)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


if __name__ == "sitecustomize":
    _run_the_next_sitecustomize()
