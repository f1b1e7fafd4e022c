"""Ask privsdk whether a call may go ahead, from Python.

Run:  privsdk example-policy > privsdk.toml && PRIVSDK_CONFIG=privsdk.toml python examples/decide.py

This is how an app consults the policy without sending anything: what
``privsdk.Client``, the drop-ins and ``privsdk explain`` decide on. (``python`` is
the environment privsdk is installed in: ``.venv/bin/python`` after ``make setup``.)
"""

from __future__ import annotations

import privsdk


def main() -> None:
    policy = privsdk.load_policy()  # reads PRIVSDK_CONFIG and the other PRIVSDK_* variables
    for tenant, data_class, target in [
        ("acme", "default", "openai-mini"),
        ("acme", "pii", "openai-mini"),  # not EU-resident: rerouted
        ("acme", "phi", "vertex-gemini-eu"),  # no BAA, humans may review: refused
        ("globex", "default", "cohere/command-r-plus"),  # a Cohere key with nothing attested is a trial key
    ]:
        decision = privsdk.decide(policy, target, "chat", tenant=tenant, data_class=data_class)
        print(f"{tenant}/{data_class} -> {target}: {decision.outcome}", end="")
        if decision.outcome == "reroute":
            print(f" to {decision.chosen}", end="")
        print()
        for unmet in decision.unmet:
            print(f"    {unmet.requirement}: offered {unmet.offered} ({unmet.source})")


if __name__ == "__main__":
    main()
