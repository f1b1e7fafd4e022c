"""The ``privsdk`` command: explain, check and list what the policy allows."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from privsdk.errors import ConfigError, PrivsdkError

EXIT_OK, EXIT_CONFIG, EXIT_REFUSE = 0, 2, 3

EXPLAIN_EXAMPLES = """\
examples:
  privsdk explain openai/gpt-4o-mini --json
  PRIVSDK_REQUIRE=zdr PRIVSDK_ATTEST=openai:zdr privsdk explain openai/gpt-4o-mini
  PRIVSDK_CONFIG=examples/privsdk.toml privsdk explain eu-gpt4o --tenant acme --data-class pii
  privsdk explain openai/gpt-4o --operation batch --json

exit status: 0 allow or reroute, 3 refuse, 2 configuration error
"""
CHECK_EXAMPLES = """\
examples:
  PRIVSDK_CONFIG=examples/privsdk.toml privsdk check
  PRIVSDK_CONFIG=examples/privsdk.toml privsdk check --tenant acme --operation embed
  PRIVSDK_CONFIG=examples/privsdk.toml privsdk check --json

exit status: 0 when the policy loads (whatever it allows), 2 configuration error
"""
TARGETS_EXAMPLES = """\
examples:
  privsdk targets
  privsdk targets --vendor mistral
  privsdk targets --json
  privsdk targets --markdown      (the table in docs/guarantees.md)
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args, sys.stdout)
        return code
    except ConfigError as exc:
        print(f"privsdk: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except PrivsdkError as exc:  # a malformed packaged catalogue: report, do not trace back
        print(f"privsdk: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="privsdk",
        formatter_class=fmt,
        description="Check a tenant's data-privacy requirements against what LLM vendor offerings promise.",
        epilog="configuration: PRIVSDK_CONFIG, PRIVSDK_REQUIRE, PRIVSDK_ATTEST, PRIVSDK_TENANT, "
        "PRIVSDK_ON_VIOLATION (see docs/configuration.md)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "explain",
        help="decide one target and say why",
        epilog=EXPLAIN_EXAMPLES,
        formatter_class=fmt,
        description="Decide whether a call may go to TARGET, and why.",
    )
    p.add_argument(
        "target", metavar="TARGET", help="vendor/model (the vendor's public API) or a target name from the config"
    )
    p.add_argument(
        "--operation", default="chat", help="chat, stream, embed, rerank, files, batch or fine_tune (default chat)"
    )
    p.add_argument("--data-class", help="the tenant's data class (default: the tenant's default class)")
    p.add_argument("--tenant", help="the tenant (default: PRIVSDK_TENANT, else the first tenant in the config)")
    p.add_argument(
        "--feature",
        action="append",
        default=[],
        metavar="NAME",
        help="a request feature in use, e.g. stored_responses (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_explain)

    p = sub.add_parser(
        "check",
        help="every configured target x data class",
        epilog=CHECK_EXAMPLES,
        formatter_class=fmt,
        description="Decide every configured target for every data class of each tenant.",
    )
    p.add_argument("--tenant", help="only this tenant")
    p.add_argument("--operation", default="chat", help="the operation to check (default chat)")
    p.add_argument("--json", action="store_true", help="print a JSON list of decisions")
    p.set_defaults(run=_check)

    p = sub.add_parser(
        "targets",
        help="the catalogue: offerings, guarantees, attestations, sources",
        epilog=TARGETS_EXAMPLES,
        formatter_class=fmt,
        description="List the guarantee catalogue packaged with this privsdk.",
    )
    p.add_argument("--vendor", help="only this vendor")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--markdown", action="store_true", help="print the Markdown guarantees table")
    p.set_defaults(run=_targets)
    return parser


def _explain(args: argparse.Namespace, out: TextIO) -> int:
    from privsdk.config import load_policy
    from privsdk.decision import decide
    from privsdk.vocabulary import parse_feature, parse_operation

    policy = load_policy()
    operation = parse_operation(args.operation).value
    features = frozenset(parse_feature(f) for f in args.feature)
    _check_names(policy, args.tenant, args.data_class)
    decision = decide(policy, args.target, operation, tenant=args.tenant, data_class=args.data_class, features=features)
    if args.json:
        _print_json(out, decision.to_json())
    else:
        from privsdk.report import explain_text

        out.write(explain_text(decision, _colour(out)))
    return EXIT_OK if decision.allowed else EXIT_REFUSE


def _check(args: argparse.Namespace, out: TextIO) -> int:
    from privsdk.config import load_policy
    from privsdk.decision import decide
    from privsdk.vocabulary import parse_operation

    policy = load_policy()
    operation = parse_operation(args.operation).value
    _check_names(policy, args.tenant, None)
    tenants = [policy.tenants[args.tenant]] if args.tenant else list(policy.tenants.values())
    decisions = [
        decide(policy, target, operation, tenant=t.name, data_class=cls)
        for t in tenants
        for cls in t.classes
        for target in policy.targets
    ]
    if args.json:
        _print_json(out, [d.to_json() for d in decisions])
    else:
        from privsdk.report import check_text

        out.write(check_text(policy, tenants, decisions, _colour(out)))
    return EXIT_OK


def _targets(args: argparse.Namespace, out: TextIO) -> int:
    from privsdk.catalogue import default_catalogue
    from privsdk.report import catalogue_json, catalogue_markdown, catalogue_text

    cat = default_catalogue()
    if args.vendor and cat.vendor(args.vendor) is None:
        raise ConfigError(
            f"unknown vendor {args.vendor!r}", where="--vendor", hint="vendors: " + ", ".join(cat.vendor_names)
        )
    vendors = [v for v in cat.all_vendors() if not args.vendor or v.vendor == args.vendor]
    if args.json:
        _print_json(out, catalogue_json(vendors))
    elif args.markdown:
        out.write(catalogue_markdown(vendors))
    else:
        out.write(catalogue_text(vendors))
    return EXIT_OK


def _print_json(out: TextIO, data: object) -> None:
    json.dump(data, out, indent=2)
    out.write("\n")


def _check_names(policy: Any, tenant: str | None, data_class: str | None) -> None:
    """Unknown --tenant / --data-class are usage errors (exit 2), not refusals."""
    name = tenant or policy.default_tenant
    if name not in policy.tenants:
        raise ConfigError(
            f"no tenant {name!r} in {policy.origin}", where="--tenant", hint="tenants: " + ", ".join(policy.tenants)
        )
    classes = policy.tenants[name].classes
    if data_class is not None and data_class not in classes:
        raise ConfigError(
            f"tenant {name!r} has no data class {data_class!r}",
            where="--data-class",
            hint="classes: " + ", ".join(classes),
        )


def _colour(out: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(os.environ.get("FORCE_COLOR")) or out.isatty()
