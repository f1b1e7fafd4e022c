"""The guard a bench gives an adapter it opens itself, as privsdk.Client would give it one."""

from __future__ import annotations

from privsdk.config import load_policy
from privsdk.outbound.judge import Guard
from privsdk.policy import Policy, Target


def guard_for(*targets: Target) -> Guard:
    """A guard whose policy configures ``targets`` (so a loopback endpoint a target names is declared), and that
    keeps no usage records: the records' own cost is bench/usage.py's."""
    base = load_policy({})
    return Guard(Policy(base.tenants, base.default_tenant, {t.name: t for t in targets}, usage="none"), environ={})
