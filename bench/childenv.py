"""What the bench scripts share: the checkout's path, the environments child interpreters run in, PASS/FAIL."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child_envs(cache_dir: str, **extra: str) -> list[tuple[str, dict[str, str]]]:
    """The environments to time a fresh interpreter in: (label, environment).

    No PRIVSDK_* variable but ``extra``, and no PYTHONPROFILEIMPORTTIME. First with
    bytecode cached, as an installed or already-run package has it: compiled files go
    to ``cache_dir`` (PYTHONPYCACHEPREFIX), written by a warm-up run, so nothing is
    written into the checkout. Then, only when the inherited environment forbids
    bytecode files (PYTHONDONTWRITEBYTECODE) and privsdk has none: with privsdk's
    modules compiled from source in every process.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith("PRIVSDK_") and k != "PYTHONPROFILEIMPORTTIME"}
    base.update(extra)
    cached = {k: v for k, v in base.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    cached["PYTHONPYCACHEPREFIX"] = cache_dir
    envs = [("bytecode cached", cached)]
    if (
        base.get("PYTHONDONTWRITEBYTECODE")
        and not base.get("PYTHONPYCACHEPREFIX")
        and not (REPO / "privsdk" / "__pycache__").is_dir()
    ):
        envs.append(("no bytecode (PYTHONDONTWRITEBYTECODE set: privsdk compiled in every process)", base))
    return envs


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
