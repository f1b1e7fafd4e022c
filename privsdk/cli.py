"""The ``privsdk`` command: explain, check and list what the policy allows."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TextIO

from privsdk.docs_url import page
from privsdk.errors import ConfigError, PrivsdkError

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_REFUSE = 0, 1, 2, 3

#: Said under the examples that name a policy file: a user who installed privsdk with pip has none yet.
POLICY_FILE_NOTE = f"""\
privsdk.toml above is your policy file ({page("configuration")} says what it holds).
To try these with the example policy, write it there first: privsdk example-policy > privsdk.toml
Its tenants are acme (data classes default, pii and phi) and globex; its targets openai-mini, azure-eu-gpt4o,
bedrock-eu-claude, mistral-large, cohere-command, vertex-gemini-eu and local-llama.
"""
EXPLAIN_EXAMPLES = f"""\
examples:
  privsdk explain openai/gpt-4o-mini --json
  PRIVSDK_REQUIRE=zdr PRIVSDK_ATTEST=openai:zdr privsdk explain openai/gpt-4o-mini
  privsdk explain openai/gpt-4o --operation batch --json
  PRIVSDK_REQUIRE=zdr privsdk explain --url https://api.openai.com/v1/chat/completions --model gpt-4o-mini
  privsdk explain --url https://acme.services.ai.azure.com/v2/chat --sdk cohere --model Cohere-command-a
  PRIVSDK_CONFIG=privsdk.toml privsdk explain azure-eu-gpt4o --tenant acme --data-class pii

{POLICY_FILE_NOTE}
The examples that set PRIVSDK_ATTEST run without a policy file (PRIVSDK_CONFIG unset): a policy file declares
attestations in its [attest] table, and takes none from the environment unless it sets allow_env_attest = true.
With --url the request itself is judged as the guard would judge it: its operation comes from the URL and
its features from --body, so --operation and --feature do not apply (nor does TARGET). Where a host serves
several protocols (an Azure AI Foundry resource), --sdk names the SDK that sends: openai, cohere, mistralai,
genai or boto3.
exit status: 0 allow or reroute, 3 refuse, 2 configuration error or bad argument, 1 output not written
"""
CHECK_EXAMPLES = f"""\
examples:
  PRIVSDK_CONFIG=privsdk.toml privsdk check
  PRIVSDK_CONFIG=privsdk.toml privsdk check --tenant acme --operation embed
  PRIVSDK_CONFIG=privsdk.toml privsdk check --json

{POLICY_FILE_NOTE}
exit status: 0 when the policy loads (whatever it allows), 2 configuration error, 1 output not written
"""
TARGETS_EXAMPLES = """\
examples:
  privsdk targets
  privsdk targets --vendor mistral
  privsdk targets --json
  privsdk targets --markdown      (the guarantees tables of the documentation)
"""
EXAMPLE_POLICY_EXAMPLES = """\
examples:
  privsdk example-policy > privsdk.toml
  PRIVSDK_CONFIG=privsdk.toml privsdk check
"""
USAGE_EXAMPLES = """\
examples:
  privsdk usage                                  (the store PRIVSDK_USAGE names, by tenant)
  privsdk usage --since 7d --group-by tenant,model
  privsdk usage --store jsonl:///var/log/privsdk.jsonl --since 2026-01-01 --until 2026-02-01 --json
  privsdk usage --tenant acme --group-by day,decision --csv > acme.csv
  privsdk usage prune --older-than 90d

WHEN is 30m, 12h, 7d or 2w ago, a date (UTC) or an ISO date and time.
group keys: tenant, data_class, target, model, day, decision.
exit status: 0 report printed (an empty one before the app's first call), 2 bad option, or no file at --store
"""
PRUNE_EXAMPLES = """\
examples:
  privsdk usage prune --older-than 90d
  privsdk usage prune --older-than 12w --store jsonl:///var/log/privsdk.jsonl
  PRIVSDK_USAGE_MAX_AGE_DAYS=30 privsdk usage prune

exit status: 0 pruned (perhaps nothing; no store yet is nothing), 2 bad option, or no file at --store
"""


#: The exit status of a command whose reader went away (``privsdk targets --json | head -1``): a shell's for a
#: program ended by SIGPIPE, as ``cat`` or ``yes`` would end there.
EXIT_BROKEN_PIPE = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the subcommand's own parser, with its own usage line, not privsdk's
        args.said_by.error("unrecognized arguments: " + " ".join(extra))
    try:
        code: int = args.run(args, sys.stdout)
        sys.stdout.flush()  # here, where a closed pipe is caught, rather than at exit
        return code
    except BrokenPipeError:
        _quiet_stdout()  # the reader stopped reading: nothing is wrong, and nothing more can be said
        return EXIT_BROKEN_PIPE
    except ConfigError as exc:
        print(f"privsdk: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:  # the output could not be written (a full disk), say: one line, as for any failure
        _quiet_stdout()
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"privsdk: {exc.strerror or type(exc).__name__}{where}", file=sys.stderr)
        return EXIT_FAILED
    except PrivsdkError as exc:  # a malformed packaged catalogue: report, do not trace back
        print(f"privsdk: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: Python would report the failed flush of what it holds again at exit."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _variables() -> str:
    """The environment variables privsdk reads, one per line with what each holds: the main --help's epilog."""
    import textwrap

    from privsdk.config import ENV_VARS

    width = max(map(len, ENV_VARS)) + 2
    lines = [f"configuration (every variable privsdk reads; {page('configuration')}):"]
    for name, meaning in ENV_VARS.items():
        wrapped = textwrap.wrap(meaning, 116 - width)
        lines.append(f"  {name:<{width}}{wrapped[0]}")
        lines.extend(" " * (width + 2) + more for more in wrapped[1:])
    return "\n".join(lines)


def _version() -> str:
    from privsdk import __version__

    return __version__


def _parser() -> argparse.ArgumentParser:
    from privsdk.outbound.wire import SDKS

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="privsdk",
        formatter_class=fmt,
        description="Check a tenant's data-privacy requirements against what LLM vendor offerings promise.",
        epilog=_variables(),
    )
    parser.add_argument("--version", action="version", version=f"privsdk {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "explain",
        help="decide one target and say why",
        epilog=EXPLAIN_EXAMPLES,
        formatter_class=fmt,
        description="Decide whether a call may go to TARGET, and why.",
    )
    p.add_argument(
        "target",
        metavar="TARGET",
        nargs="?",
        help="vendor/model (the vendor's public API) or a target name from the config; or give --url",
    )
    p.add_argument(
        "--url",
        help="explain a request instead: the URL an SDK would send to (the guard places it as it would the request)",
    )
    p.add_argument("--model", help="with --url: the model the request's body names")
    p.add_argument(
        "--body",
        help="with --url: the request's JSON body, an object (default: {\"model\": MODEL}); '' for none",
    )
    p.add_argument("--method", default="POST", help="with --url: the HTTP method (default POST)")
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="with --url: a request header, e.g. OpenAI-Project=proj_abc (repeatable: a name given twice is "
        "sent twice, as an SDK sends it)",
    )
    p.add_argument(
        "--sdk",
        choices=SDKS,
        help="with --url: the SDK that sends the request, which picks the protocol it is read in where a host "
        "serves several (required there)",
    )
    p.add_argument(
        "--operation",
        help="chat, stream, embed, rerank, files, batch or fine_tune (default chat); not with --url, which "
        "shows the operation",
    )
    p.add_argument("--data-class", help="the tenant's data class (default: the tenant's default class)")
    p.add_argument("--tenant", help="the tenant (default: PRIVSDK_TENANT, else the file's default_tenant)")
    p.add_argument(
        "--feature",
        action="append",
        default=[],
        metavar="NAME",
        help="a request feature in use, e.g. stored_responses (repeatable); not with --url, whose --body shows them",
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

    p = sub.add_parser(
        "example-policy",
        help="print the example policy file, to start your own from",
        epilog=EXAMPLE_POLICY_EXAMPLES,
        formatter_class=fmt,
        description="Print the example policy that the documentation and the examples of --help use: two "
        "tenants of one SaaS product, seven targets, with comments that say what each part does.",
    )
    p.set_defaults(run=_example_policy)

    p = sub.add_parser(
        "usage",
        help="summarise the local usage records; prune old ones",
        epilog=USAGE_EXAMPLES,
        formatter_class=fmt,
        description="Summarise the usage records of a SQLite or JSONL store: calls, attempts, refusals, reroutes, "
        "retries, errors, tokens and p50/p95 latency, per group.",
    )
    store_help = "sqlite:///PATH, jsonl:///PATH or a file path (default: PRIVSDK_USAGE, else the default SQLite store)"
    p.add_argument("--store", help=store_help)
    p.add_argument("--since", metavar="WHEN", help="only records from this time on")
    p.add_argument("--until", metavar="WHEN", help="only records before this time")
    p.add_argument("--tenant", help="only this tenant's records")
    p.add_argument("--group-by", default="tenant", metavar="KEYS", help="comma list of group keys (default tenant)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--csv", action="store_true", help="print CSV: a header, then one row per group")
    p.set_defaults(run=_usage)
    usage_sub = p.add_subparsers(dest="usage_command", metavar="{prune}")
    q = usage_sub.add_parser(
        "prune",
        help="delete records older than an age",
        epilog=PRUNE_EXAMPLES,
        formatter_class=fmt,
        description="Delete the usage records older than --older-than (default: PRIVSDK_USAGE_MAX_AGE_DAYS days).",
    )
    q.add_argument("--older-than", metavar="AGE", help="30m, 12h, 7d or 2w")
    q.add_argument("--store", default=argparse.SUPPRESS, help=store_help)
    q.set_defaults(run=_usage_prune, said_by=q)

    p = sub.add_parser(
        "run",
        help="run a program with every vendor SDK client it creates guarded",
        epilog=RUN_EXAMPLES,
        formatter_class=fmt,
        description="Run COMMAND with privsdk.instrument() applied at start-up: every client of a supported SDK "
        "that it creates, itself or inside a framework, sends through the guard.",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    p.set_defaults(run=_run)
    for command in sub.choices.values():
        command.set_defaults(said_by=command)  # usage prune says its own: its default is set where it is made
    return parser


RUN_EXAMPLES = """\
examples:
  privsdk run -- python app.py
  PRIVSDK_REQUIRE=zdr PRIVSDK_ATTEST=openai:zdr@proj_abc privsdk run -- python -m myservice
  PRIVSDK_ENDPOINTS=http://vllm.internal:8000/v1=selfhosted.vllm privsdk run -- uvicorn app:api

Every client of openai, cohere, mistralai, boto3 (Bedrock) and google-genai that the program creates,
itself or inside a framework, sends through the guard, configured by the PRIVSDK_* environment.
Each Python process loads the guard from PYTHONPATH: a Python started with -I, -E or -S would not, and is
refused (-s and -P isolate without dropping the guard); so is one that cannot import privsdk. One started
with a trimmed environment that keeps PYTHONPATH gets back the PRIVSDK_* variables it lacks, as set here.
exit status: the program's own; 2 when privsdk run refuses to start it
"""

#: The Python options that keep the guard out: -I and -E ignore PYTHONPATH, where privsdk run puts the guard's
#: sitecustomize, and -S skips the site module, which imports it. No other option does (not -s, -P, -W or any
#: -X option), nor does PYTHONNOUSERSITE: they leave PYTHONPATH and sitecustomize alone.
_SKIPS_THE_GUARD = {
    "I": "-I (isolated mode ignores PYTHONPATH, where privsdk run puts the guard)",
    "E": "-E (ignores PYTHONPATH, where privsdk run puts the guard)",
    "S": "-S (skips the site module, which loads the guard)",
}


def _run(args: argparse.Namespace, out: TextIO) -> int:
    """Start a program with every vendor SDK client it creates guarded (as opentelemetry-instrument does).

    PYTHONPATH carries the guard's sitecustomize and the folder of the launch's PRIVSDK_* settings: it is the
    variable every Python process of the program must keep to load the guard at all, so the one through which
    a child given a trimmed environment can still find the policy it was launched with.
    """
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ConfigError("privsdk run needs a command", hint="write e.g. privsdk run -- python app.py")
    from privsdk.config import load_policy

    load_policy()  # a configuration error stops here, before the program starts
    import shutil

    program = shutil.which(command[0]) or command[0]
    _refuse_a_python_that_skips_the_guard(program, command)
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "outbound", "autoinstrument")
    settings = _record_settings(_launch_settings(os.environ))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, settings, env.get("PYTHONPATH", "")) if p)
    try:
        os.execve(program, command, env)
    except OSError as exc:
        raise ConfigError(f"cannot run {command[0]!r} ({exc.strerror})", hint="name a program on PATH") from None


#: The folder and file in which privsdk run records the launch's PRIVSDK_* settings for every Python process
#: of the program (read by outbound/autoinstrument/sitecustomize.py, which names them alike: keep them so).
RUN_SETTINGS_PREFIX, RUN_SETTINGS_FILE = "privsdk-run-", "settings.json"


def _launch_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The launch's PRIVSDK_* variables, name to value, as a process started in another folder must read them.

    Each Python process of the program puts back those its environment lacks (see sitecustomize.py), so a
    child given a trimmed environment keeps the launch's policy. A relative path in PRIVSDK_CONFIG or
    PRIVSDK_TENANTS is made absolute against this folder: the child may run elsewhere. PRIVSDK_USAGE needs
    nothing: its sqlite:/// and jsonl:/// paths are absolute by their form. Names are matched in any case, as
    load_policy matches them; it has refused any but the ones it reads, so they are all in capitals here.
    """
    settings = {name: value for name, value in environ.items() if name.upper().startswith("PRIVSDK_")}
    config = settings.get("PRIVSDK_CONFIG", "").strip()
    if config:
        # Joined, not normalized: where a is a symlink, a/../b need not be b.
        settings["PRIVSDK_CONFIG"] = os.path.join(os.getcwd(), config)
    tenants = settings.get("PRIVSDK_TENANTS", "").strip()
    if tenants:
        settings["PRIVSDK_TENANTS"] = _absolute_store(tenants)
    return settings


def _absolute_store(spec: str) -> str:
    """``spec`` (PRIVSDK_TENANTS) naming the same store from any folder: ``dir://tenants`` and
    ``sqlite://t.db?table=T`` are read from the current folder, as parse_tenants_spec reads them.

    The folder goes in percent-encoded before the path as written, so the path parse_tenants_spec decodes is
    the folder joined to the path it decoded before; settings after '?' stay as they were. Any other value
    (absolute, or one parse_tenants_spec refuses, which load_policy has already done) is kept as it is.
    """
    import urllib.parse

    scheme, sep, rest = spec.partition("://")
    path = urllib.parse.unquote(rest.partition("?")[0])
    if not sep or not path or os.path.isabs(path):
        return spec
    return f"{scheme}://{urllib.parse.quote(os.getcwd())}/{rest}"


def _record_settings(settings: Mapping[str, str]) -> str:
    """Write ``settings`` where every process of the program can read them, and return their folder.

    The program's processes may read the file at any time, and privsdk run becomes the program, so nothing can
    remove it: launches with the same settings share one folder, named by their digest, and the folders grow with
    the sets of settings, not with launches. They are kept in one folder of this user's in the temporary folder,
    made 0700 and refused when another user owns it or may open it (its name can be guessed there): another user
    must neither read the settings nor put others in their place. The file is written anew each time, whole (a
    cleaner may have removed it, and two launches may write at once).
    """
    import hashlib
    import stat
    import tempfile

    data = json.dumps(settings, sort_keys=True)  # ensure_ascii: any Python reads it back, whatever its locale
    uid = os.getuid() if hasattr(os, "getuid") else None  # None on Windows, whose folders ACLs guard
    base = os.path.join(tempfile.gettempdir(), f"privsdk-{uid if uid is not None else 'run'}")
    folder = os.path.join(base, RUN_SETTINGS_PREFIX + hashlib.sha256(data.encode()).hexdigest()[:32])
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
        held = os.lstat(base)
        if not stat.S_ISDIR(held.st_mode) or (uid is not None and (held.st_uid != uid or held.st_mode & 0o077)):
            raise ConfigError(
                "privsdk run keeps the settings of the program's processes in a folder of this user's alone, and "
                "this one is not a folder, is another user's, or others may open it",
                where=base,
                hint="remove it, or set TMPDIR to a folder of your own",
            )
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, written = tempfile.mkstemp(dir=folder, suffix=".tmp")  # 0600
        with open(fd, "w", encoding="ascii") as file:
            file.write(data)
        os.replace(written, os.path.join(folder, RUN_SETTINGS_FILE))
    except OSError as exc:
        raise ConfigError(
            f"privsdk run cannot write the settings of the program's processes ({exc.strerror})",
            where=folder,
            hint="set TMPDIR to a folder you can write to",
        ) from None
    return folder


def _refuse_a_python_that_skips_the_guard(program: str, command: list[str]) -> None:
    """Refuse, before it starts, a Python whose options would keep the guard's sitecustomize from loading.

    Refusing is the simple, robust choice. Guarding such a Python all the same would mean starting the program
    through a bootstrap (``python -I -c "instrument(); runpy..."``), which changes what the program sees:
    sys.argv[0] and sys.orig_argv, __main__'s __spec__ and __file__, how -m and -c behave, and -I's promise that
    nothing from the environment enters the process. The command is read as Python reads it: the interpreter
    named directly, or the one the #! line of the named script starts (a console script such as uvicorn). A
    Python that a shell script or another program starts is out of reach here: it is guarded when it loads the
    sitecustomize, and stops before the program runs when it cannot import privsdk (see sitecustomize.py).
    """
    import re
    import shutil

    is_python = re.compile(r"(?:python|pypy)[0-9.]*[a-z]*(?:-dbg)?(?:\.exe)?", re.IGNORECASE).fullmatch
    names = {os.path.basename(program), os.path.basename(os.path.realpath(program))}
    if any(is_python(name) for name in names):
        where, options, python = f"Python ({command[0]})", command[1:], program
    else:
        words = _shebang(program)
        first = next((i for i, word in enumerate(words) if is_python(os.path.basename(word))), None)
        if first is None:
            return
        where, options = f"the Python that the #! line of {command[0]} starts ({' '.join(words)})", words[first + 1 :]
        python = shutil.which(words[first]) or words[first]  # #!/usr/bin/env python3 names it by PATH
    pth = _pth_file(python)
    if pth is not None:
        raise ConfigError(
            f"privsdk run refused to start {command[0]}: {where} has a ._pth file beside it ({pth}), which starts "
            "it isolated and without the site module, as -I -S would, so the SDK clients the program creates "
            "would not be guarded",
            hint="run the program with a Python that has no ._pth file (a virtual environment's), or call "
            "privsdk.instrument() first thing in the program",
        )
    skipping = _options_that_skip_the_guard(options)
    if skipping:
        raise ConfigError(
            f"privsdk run refused to start {command[0]}: {where} is given "
            + " and ".join(_SKIPS_THE_GUARD[letter] for letter in skipping)
            + ", so the SDK clients the program creates would not be guarded",
            hint="drop the option; -s and -P isolate from the user's site-packages and the script's folder and "
            "keep the guard; or call privsdk.instrument() first thing in the program",
        )


def _pth_file(python: str) -> str | None:
    """The ``._pth`` file beside ``python`` (as named, or the file its links lead to), None when there is none.

    Python 3.11 and later read ``<executable>._pth`` (or the runtime library's) on every platform, and one there
    replaces sys.path and implies -I and -S (embedded and relocatable Pythons ship one). Any ``*._pth`` in the
    folder is taken as one: refusing a Python that would have run guarded is the safe way to be wrong.
    """
    import glob

    for path in dict.fromkeys((python, os.path.realpath(python))):
        found = sorted(glob.glob(os.path.join(glob.escape(os.path.dirname(os.path.abspath(path))), "*._pth")))
        if found:
            return found[0]
    return None


def _shebang(program: str) -> list[str]:
    """The words of ``program``'s #! line; none when it has none or cannot be read."""
    if not os.path.isfile(program):
        return []
    try:
        with open(program, "rb") as file:
            head = file.read(256)  # what Linux reads of a #! line
    except OSError:
        return []
    if not head.startswith(b"#!"):
        return []
    return head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()


def _options_that_skip_the_guard(options: Sequence[str]) -> list[str]:
    """The letters of :data:`_SKIPS_THE_GUARD` among Python's own options at the head of ``options``.

    Read as Python reads its command line: short options combine (-IS, -Ec CMD), -W and -X take a value (the
    rest of the word or the next word), -c and -m end Python's options, as do the script's name, - and --.
    """
    found: dict[str, None] = {}
    at = 0
    while at < len(options):
        word = options[at]
        if word in ("-", "--") or not word.startswith("-"):
            break
        at += 1
        if word.startswith("--"):  # --check-hash-based-pycs MODE takes a value; --help and the others none
            if word == "--check-hash-based-pycs":
                at += 1
            continue
        for i, letter in enumerate(word[1:], start=1):
            if letter in "cm":
                return list(found)
            if letter in "WX":
                if i == len(word) - 1:
                    at += 1
                break
            if letter in _SKIPS_THE_GUARD:
                found[letter] = None
    return list(found)


def _explain(args: argparse.Namespace, out: TextIO) -> int:
    from privsdk.config import load_policy
    from privsdk.decision import decide
    from privsdk.vocabulary import parse_feature, parse_operation

    policy = load_policy()
    if args.url is not None:
        # The request shows its operation and features (and where it goes): options that would say them too
        # are refused rather than silently ignored.
        given = [
            name
            for name, value in (("TARGET", args.target), ("--operation", args.operation), ("--feature", args.feature))
            if value
        ]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} cannot go with --url: the request shows its operation (from the URL) and "
                "its features (from --body)",
                hint="drop " + " and ".join(given) + ", or drop --url and explain a TARGET",
            )
        _check_names(policy, args.tenant, args.data_class)
        return _explain_request(args, policy, out)
    if args.sdk is not None:
        raise ConfigError("--sdk goes with --url", hint="drop --sdk, or explain a request with --url URL --sdk SDK")
    operation = parse_operation(args.operation or "chat").value
    features = frozenset(parse_feature(f) for f in args.feature)
    _check_names(policy, args.tenant, args.data_class)
    if not args.target:
        raise ConfigError("explain needs a TARGET or --url", hint="see privsdk explain --help")
    decision = decide(policy, args.target, operation, tenant=args.tenant, data_class=args.data_class, features=features)
    adapter = _adapter_status(decision)
    note = _model_note(policy, args.target)
    if args.json:
        _print_json(out, {**decision.to_json(), "adapter": adapter, "model_note": note})
    else:
        from privsdk.report import explain_text

        text = explain_text(decision, _colour(out))
        if note is not None and note not in (decision.reason or ""):
            text += f"  model: {note}\n"
        if adapter is not None and not adapter["installed"]:
            text += (
                f"  adapter: the {adapter['vendor']} SDK (or its privsdk adapter) is not installed: the call would "
                f"fail (install it: {adapter['install']})\n"
            )
        out.write(text)
    return EXIT_OK if decision.allowed else EXIT_REFUSE


def _model_note(policy: Any, target: str) -> str | None:
    """How the catalogue judges the target's model where its name does not say (a fine-tuned model: as its base
    model's family, or refused, and why)."""
    from privsdk.catalogue import default_catalogue
    from privsdk.decision import resolve_target

    catalogue = default_catalogue()
    spec = resolve_target(policy, catalogue, target)
    if isinstance(spec, str):
        return None
    offering = catalogue.offering(spec.offering)
    return offering.model_note(spec.model) if offering is not None else None


def _explain_request(args: argparse.Namespace, policy: Any, out: TextIO) -> int:
    """``explain --url``: the decision the guard would make on that request, and what it was made for."""
    from urllib.parse import urlsplit

    from privsdk.config import shown_url, url_problem
    from privsdk.context import current, scope
    from privsdk.decision import refused
    from privsdk.outbound.judge import Guard, protocols_at
    from privsdk.outbound.outgoing import Outgoing

    problem = url_problem(args.url)
    if problem is not None:
        raise ConfigError(
            f"bad URL {shown_url(args.url)!r}: {problem}",
            where="--url",
            hint="write e.g. https://api.openai.com/v1/chat/completions",
        )
    parts = urlsplit(args.url.strip())
    headers: dict[str, str] = {}
    for item in args.header:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            # Never the value (an Authorization header's is a key); the name only when it looks like one.
            name = item.partition(":")[0].strip() if eq == "" else ""
            plain = name.isascii() and name.replace("-", "").replace("_", "").isalnum() and len(name) <= 64
            shown = f"--header {name!r}" if plain and ":" in item else "--header"
            raise ConfigError(
                f"bad {shown}: not NAME=VALUE (the value is not shown)",
                hint="write NAME=VALUE with '=', not ':', e.g. --header OpenAI-Project=proj_abc",
            )
        key = name.strip().lower()
        # A name given twice is sent twice; the guard reads it as httpx joins it, with ", " (so it names no
        # account an attestation matches), never as the last one alone.
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    body = _request_body(args.body, args.model)
    request = Outgoing(
        sdk=args.sdk or "cli",
        method=args.method.upper(),
        scheme=parts.scheme,
        host=(parts.hostname or "").lower(),
        port=parts.port,
        path=parts.path or "/",
        query=parts.query,
        headers=headers,
        body=body.encode(),
    )
    with scope(tenant=args.tenant, data_class=args.data_class):
        verdict = Guard(policy).judge(request)
        several = protocols_at(verdict.place.offerings) if verdict.place and args.sdk is None else {}
        if len(several) > 1:
            # The guard reads a request in the protocol of the SDK that sends it: without one, any answer would
            # be a guess about another request than the app's.
            assert verdict.place is not None
            reason = (
                f"{verdict.place.endpoint} serves {', '.join(verdict.place.offerings)}, in several protocols "
                f"({', '.join(sorted(several))}): the SDK that sends the request decides how it is read (pass "
                f"--sdk {'|'.join(several.values())})"
            )
            tenant, data_class, _ = current()
            decision = refused(policy, request.host, "other", tenant, data_class, reason)
            verdict = verdict._replace(decision=decision, targets=(), asks=None, wire=None)
    unread = verdict.place is not None and verdict.asks is None
    if len(several) <= 1 and args.body is None and args.model is None and unread:
        # A request the guard reads its body for (an OpenAI chat, say), given none: that is the command's
        # mistake, not a refusal of the request.
        raise ConfigError(
            "this request has a body the guard reads (its model, its features), and none was given",
            where="--url",
            hint='add --model MODEL (the body is then {"model": MODEL}) or --body JSON',
        )
    decision = verdict.decision
    target = verdict.targets[0] if verdict.targets else None
    seen = {
        "endpoint": verdict.place.endpoint if verdict.place else None,
        "offerings": list(verdict.place.offerings) if verdict.place else [],
        "account": target.account if target else None,
        "geography": target.geography if target else None,
        "request_operation": verdict.asks.operation if verdict.asks else None,
        "features": sorted(verdict.asks.features) if verdict.asks else [],
        "model": verdict.asks.model if verdict.asks else None,
    }
    if args.json:
        _print_json(out, {**decision.to_json(), **seen})
    else:
        from privsdk.report import explain_text

        # A request the guard could not read asks for no operation it knows: say so, not "other".
        as_shown = decision if verdict.asks is not None else decision._replace(operation="not read")
        out.write(explain_text(as_shown, _colour(out)))
        for key in ("endpoint", "offerings", "account", "geography", "request_operation", "features", "model"):
            value = seen[key]
            if value not in (None, []):
                shown = ", ".join(value) if isinstance(value, list) else value
                out.write(f"  {key.replace('_', ' ')}: {shown}\n")
        offerings = verdict.place.offerings if verdict.place else ()
        if seen["geography"] is None and "authorization" not in headers and "bedrock.runtime" in offerings:
            # boto3 signs each request for its client's Region, which the guard reads as where it goes.
            out.write(
                "  note: no Region shown; boto3's requests are signed for their client's Region, which the guard "
                "reads: add --header 'Authorization=AWS4-HMAC-SHA256 Credential=AKID/20260101/REGION/bedrock/"
                "aws4_request' to see the decision on one\n"
            )
    return EXIT_OK if decision.allowed else EXIT_REFUSE


def _request_body(body: str | None, model: str | None) -> str:
    """``explain --url``'s request body: ``--body`` (a JSON object; ``''`` for none), with ``--model`` in it when
    given; ``{"model": MODEL}`` for ``--model`` alone; none for neither. A body that is not a JSON object is a
    bad argument (never shown: it can hold a prompt)."""
    if body is None:
        return json.dumps({"model": model}) if model is not None else ""
    if not body.strip():
        if model is not None:
            return json.dumps({"model": model})
        return ""
    try:
        data = json.loads(body)
    except ValueError as exc:
        at = f" at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigError(
            f"not JSON{at} (the value is not shown)",
            where="--body",
            hint='write the request\'s body as a JSON object, e.g. --body \'{"model": "gpt-4o-mini", "store": true}\'',
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"a JSON {_JSON_KINDS.get(type(data), 'value')} where a request body (a JSON object) belongs",
            where="--body",
            hint='write e.g. --body \'{"model": "gpt-4o-mini"}\'',
        )
    if model is not None:
        if data.setdefault("model", model) != model:
            raise ConfigError(
                "--model and the body's model differ",
                where="--model",
                hint="give the model once: in --body, or with --model",
            )
        return json.dumps(data)
    return body


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "true or false"}


def _adapter_status(decision: Any) -> dict[str, Any] | None:
    """Whether the adapter the call would use is installed: an allowed call without one fails at the call."""
    chosen = decision.chosen_evaluation or decision.evaluation
    offering = chosen.offering
    return None if offering is None else _vendor_adapter(offering.split(".", 1)[0])


@functools.cache
def _vendor_adapter(vendor: str) -> dict[str, Any]:
    """``vendor``'s adapter status, found once: check asks it for every tenant x class x target, and finding an
    SDK looks through the import path."""
    from privsdk.adapter import adapter_installed, install_command

    installed = adapter_installed(vendor)
    return {"vendor": vendor, "installed": installed, "install": None if installed else install_command(vendor)}


def _check(args: argparse.Namespace, out: TextIO) -> int:
    from privsdk.config import load_policy
    from privsdk.decision import decide
    from privsdk.vocabulary import parse_operation

    policy = load_policy()
    operation = parse_operation(args.operation).value
    _check_usage(policy.usage)
    if args.tenant:
        _check_names(policy, args.tenant, None)
    tenants = [policy.tenants[args.tenant]] if args.tenant else _every_tenant(policy)
    decisions = [
        decide(policy, target, operation, tenant=t.name, data_class=cls)
        for t in tenants
        for cls in t.classes
        for target in policy.targets
    ]
    if not any(reqs for t in policy.tenants.values() for reqs in t.classes.values()):
        # Nothing required anywhere: every target passes, which is rarely what a policy file meant.
        sys.stderr.write(
            f"warning: {policy.origin} requires nothing of any tenant: every call to every known target is allowed "
            "(add classes.NAME = [requirements] to a tenant, or set PRIVSDK_REQUIRE)\n"
        )
    # As explain says per target: a call allowed to a target whose SDK is not installed fails at the call.
    adapters = [_adapter_status(d) if d.outcome != "refuse" else None for d in decisions]
    missing: dict[str, str] = {}
    for decision, adapter in zip(decisions, adapters, strict=True):
        if adapter is not None and not adapter["installed"]:
            missing.setdefault(adapter["install"], decision.chosen or decision.target)
    for install, target in missing.items():
        sys.stderr.write(
            f"warning: calls allowed to {target} (and any other target of its vendor) would fail: its SDK is not "
            f"installed ({install})\n"
        )
    if args.json:
        _print_json(out, [{**d.to_json(), "adapter": a} for d, a in zip(decisions, adapters, strict=True)])
    else:
        from privsdk.report import check_text

        out.write(check_text(policy, tenants, decisions, _colour(out)))
    return EXIT_OK


def _check_usage(spec: str) -> None:
    """What ``privsdk.Client()`` would refuse of the usage store: ``otlp`` without the otlp extra, say. Nothing is
    opened or written: a recorder opens its store with its first record."""
    from privsdk.usage import open_recorder

    try:
        open_recorder(spec).close()
    except ConfigError as exc:  # placed where the value came from, whatever place the recorder gave it
        raise ConfigError(exc.message, where="PRIVSDK_USAGE", hint=exc.hint) from None


def _every_tenant(policy: Any) -> list[Any]:
    """Every tenant of the file, or of the tenant store (each loaded and checked: a bad one is a ConfigError)."""
    from privsdk.tenants import TenantStore

    store = policy.tenants
    if not isinstance(store, TenantStore):
        return list(store.values())
    try:
        names = store.names()
    except ConfigError as exc:  # the store's own words: what is wrong with its table or file
        raise exc.at("PRIVSDK_TENANTS") from None
    except Exception as exc:  # a driver's text can hold a connection string: its class only
        raise ConfigError(
            f"the tenant store could not list its tenants ({type(exc).__name__})",
            where="PRIVSDK_TENANTS",
            hint="check that the store can be read, and that it holds the tenants table",
        ) from None
    out = []
    for name in names:
        entry = store.entry(name)
        if entry.tenant is None:
            raise ConfigError(entry.reason, where="PRIVSDK_TENANTS")
        out.append(entry.tenant)
    return out


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


def _example_policy(args: argparse.Namespace, out: TextIO) -> int:
    from importlib.resources import files

    # Package data, so that a user who installed the wheel has the file the documentation starts from.
    out.write(files("privsdk").joinpath("example_policy.toml").read_text(encoding="utf-8"))
    return EXIT_OK


def _usage(args: argparse.Namespace, out: TextIO) -> int:
    import time

    from privsdk.usage import report
    from privsdk.usage.timespec import iso, parse_time

    store = _usage_store(args.store)
    now = time.time()
    since = parse_time(args.since, "--since", now) if args.since else None
    until = parse_time(args.until, "--until", now) if args.until else None
    if since is not None and until is not None and since >= until:
        raise ConfigError("--since is not before --until", where="--since", hint=f"{iso(since)} >= {iso(until)}")
    group_by = report.parse_group_by(args.group_by)
    where = "PRIVSDK_USAGE" if args.store is None else "--store"
    fresh = _not_created_yet(args.store, store)
    records, damaged = (
        ((), lambda: 0)
        if fresh
        else report.read_records(store, since=since, until=until, tenant=args.tenant, where=where)
    )
    summary = report.summarise(records, group_by)
    if damaged():
        print(f"privsdk: skipped {damaged()} damaged record(s) in {store.path}", file=sys.stderr)
    if args.json:
        _print_json(out, report.to_json(summary, str(store.path), since, until))
    elif args.csv:
        out.write(report.to_csv(summary))
    else:
        span = "".join(
            [f" from {iso(since)}" if since else "", f" until {iso(until)}" if until else ""]
            + ([f", tenant {args.tenant}"] if args.tenant else [])
        )
        # Records (attempts and refusals) and calls differ; the table's rows count calls, so say both.
        title = f"usage records in {store.path}{span}: {summary.records} records, {summary.total['calls']} calls"
        out.write(report.to_text(summary, title, _colour(out)))
    return EXIT_OK


def _usage_prune(args: argparse.Namespace, out: TextIO) -> int:
    import time

    from privsdk.config import usage_max_age_days
    from privsdk.usage.retention import DAY_S, prune
    from privsdk.usage.timespec import iso, parse_duration

    store = _usage_store(args.store)
    if args.older_than:
        age = parse_duration(args.older_than, "--older-than")
        if age <= 0:  # as PRIVSDK_USAGE_MAX_AGE_DAYS=0 is refused: an age of 0 is every record, never a limit
            raise ConfigError(
                f"{args.older_than.strip()!r} would delete every usage record",
                where="--older-than",
                hint="give an age of 1m or more, e.g. --older-than 90d; to empty the store, delete its file",
            )
    else:
        days = usage_max_age_days()
        if days is None:
            raise ConfigError(
                "say how old a record must be to go",
                where="--older-than",
                hint="e.g. --older-than 90d, or set PRIVSDK_USAGE_MAX_AGE_DAYS",
            )
        age = days * DAY_S
    before = time.time() - age
    if _not_created_yet(args.store, store):
        return EXIT_OK
    try:
        deleted = prune(store, before)
    except ConfigError as exc:
        if store.kind in ("sqlite", "jsonl"):  # the store's own trouble, which names the file
            raise
        raise exc.at("--store" if args.store is not None else "PRIVSDK_USAGE") from None  # nothing local to prune
    out.write(f"deleted {deleted} usage record(s) older than {iso(before)} from {store.path}\n")
    return EXIT_OK


def _not_created_yet(option: str | None, store: Any) -> bool:
    """Whether ``store`` is the app's (PRIVSDK_USAGE's, or the default) and its file does not exist yet, said on
    stderr: an app creates its store at its first recorded call, so a report or a prune before then finds no
    records, which is no error. A file named by --store must exist (a typo there would otherwise look empty)."""
    if option is not None or store.kind not in ("sqlite", "jsonl") or not store.path:
        return False
    try:
        os.stat(store.path)
    except FileNotFoundError:
        said = f"privsdk: no usage recorded yet: an app's first call through privsdk creates {store.path}"
        print(said, file=sys.stderr)
        return True
    except OSError:  # a store the user may not read, or a path no app could create: the reader's error (exit 2)
        pass
    return False


def _usage_store(text: str | None) -> Any:
    """The store to read: --store (a spec or a bare path), else PRIVSDK_USAGE."""
    from privsdk.config import usage_spec
    from privsdk.usage.spec import Store, parse_spec

    if text is None:
        return parse_spec(usage_spec())
    if "://" in text or text in ("sqlite", "otlp", "none"):
        from privsdk.config import check_usage_path

        check_usage_path(text, "--store")
        return parse_spec(text, where="--store")
    return Store(_store_kind(text), text)


def _store_kind(path: str) -> Literal["sqlite", "jsonl"]:
    """What a bare --store path holds: SQLite by its file header, JSON lines by a first '{'; else by its name.

    A JSONL store may have any name (``PRIVSDK_USAGE=jsonl:///var/log/app-usage.log``), so the content decides.
    """
    try:
        with open(path, "rb") as file:
            head: bytes | None = file.read(64).lstrip()
    except OSError:  # not there (yet): the store's own reader says so
        head = None
    if head is not None and head.startswith(b"SQLite format 3\x00"):
        return "sqlite"
    # A file that holds nothing (a JSONL store a prune emptied, say app-usage.log) is an empty store of either
    # kind: read as JSON lines, whose reader takes blank lines, and never by SQLite, which cannot read a blank line.
    if head is not None and (head == b"" or head.startswith(b"{")):
        return "jsonl"
    return "jsonl" if path.endswith((".jsonl", ".ndjson", ".json")) else "sqlite"


def _print_json(out: TextIO, data: object) -> None:
    json.dump(data, out, indent=2)
    out.write("\n")


def _check_names(policy: Any, tenant: str | None, data_class: str | None) -> None:
    """Unknown --tenant / --data-class are usage errors (exit 2), not refusals."""
    name = tenant if tenant is not None else policy.default_tenant
    store = getattr(policy.tenants, "entry", None)  # a TenantStore: its own reason for a missing tenant
    if name is None and store is not None:
        raise ConfigError(
            "no tenant named: tenants come from a tenant store",
            where="--tenant",
            hint="name one, or set PRIVSDK_TENANT",
        )
    if name is None:
        raise ConfigError(
            f"no tenant named: {policy.origin} defines tenants and names no default_tenant",
            where="--tenant",
            hint="tenants: " + ", ".join(policy.tenants) + "; or set PRIVSDK_TENANT, or default_tenant in the file",
        )
    if store is not None and name not in policy.tenants:
        raise ConfigError(store(name).reason, where="--tenant")
    if name not in policy.tenants:
        raise ConfigError(policy.unknown_tenant(name), where="--tenant")
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
