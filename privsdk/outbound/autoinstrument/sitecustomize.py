"""Loaded by Python at start-up in a process ``privsdk run`` launched: guard every SDK client it creates.

Fail closed. site.py catches an Exception raised here, prints "Error in sitecustomize" on one line and runs
the program anyway, unguarded; a SystemExit (or any other BaseException) raised here is, on 3.10 to 3.13, a
"Fatal Python error: init_import_site" with a traceback and exit status 1, whatever the code. So when the
guard cannot be installed (this Python cannot import privsdk, or ``instrument()`` fails), this module says why
on stderr and ends the process with ``os._exit(2)`` before the program's first line runs.

The Python that loads this file may not be privsdk's own (another venv, the system's, even Python 2 when
``python`` names it): the module keeps to syntax every one of them parses (no f-strings, no annotations), for
a SyntaxError here would be one more line site.py prints before running the program unguarded.
"""

import os
import sys

try:
    import privsdk

    privsdk.instrument()
except BaseException as exc:  # whatever it is, the program must not run with its clients unguarded
    _python, _error = str(sys.executable), type(exc).__name__ + ": " + str(exc)
    if isinstance(exc, ImportError) and getattr(exc, "name", "privsdk") == "privsdk":
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
