"""An EU-only tenant: its data is processed in the EU, or not at all.

Tenant ``eu-bank`` requires ``region=eu`` for everything. The app asks for
``openai-mini``; OpenAI's API makes no residency promise, so privsdk reroutes
to the tenant's EU data-zone deployment on Azure OpenAI, and the answer says
so. Another tenant in the same process keeps using OpenAI directly.

  OPENAI_API_KEY=sk-... AZURE_OPENAI_API_KEY=... \\
  AZURE_OPENAI_ENDPOINT=https://RESOURCE.openai.azure.com python examples/eu_only_tenant.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import privsdk

POLICY = """
[targets.openai-mini]
offering = "openai.api"
model = "gpt-4o-mini"

[targets.azure-eu]
offering = "azure.openai"
model = "gpt-4o-mini"               # the deployment's name
api_version = "2024-10-21"
attest = ["deployment=data_zone_eu"]

[tenants.eu-bank]
on_violation = "reroute"
classes.default = ["no_training", "region=eu"]
reroute.openai-mini = ["azure-eu"]

[tenants.us-retail]
classes.default = ["no_training"]
"""


def main() -> None:
    config = Path(tempfile.mkdtemp()) / "privsdk.toml"
    config.write_text(POLICY, encoding="utf-8")
    # PRIVSDK_ENDPOINTS passes through: it declares stand-in servers when the vendors' URLs point at them.
    client = privsdk.Client(
        environ={"PRIVSDK_CONFIG": str(config), "PRIVSDK_ENDPOINTS": os.environ.get("PRIVSDK_ENDPOINTS", "")}
    )
    for tenant in ("eu-bank", "us-retail"):
        with privsdk.scope(tenant=tenant):
            answer = client.chat("openai-mini", "Draft a two-line reply to a customer asking about fees.")
        decision = answer.decision
        assert decision is not None
        where = decision.chosen if decision.outcome == "reroute" else decision.target
        print(f"{tenant}: {decision.outcome} -> {where}: {answer.text}")
    client.close()


if __name__ == "__main__":
    main()
