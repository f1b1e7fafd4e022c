"""Protected health information goes only where a BAA covers it.

The clinic's ``phi`` data class needs a BAA, zero data retention, no training
and no human review. The deployment has a BAA and ZDR with OpenAI, none with
Mistral. privsdk sends PHI to OpenAI and refuses Mistral before any byte
leaves, saying which requirement failed and where the catalogue read it.

  OPENAI_API_KEY=sk-... python examples/phi_baa.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import privsdk

POLICY = """
[attest]
openai = ["zdr", "baa"]          # what the contracts say: ZDR approved, BAA signed

[targets.openai-mini]
offering = "openai.api"
model = "gpt-4o-mini"

[targets.mistral-small]
offering = "mistral.api"
model = "mistral-small-latest"

[tenants.clinic]
classes.default = ["no_training"]
classes.phi = ["no_training", "zdr", "no_human_review", "hipaa_baa"]
"""


def main() -> None:
    config = Path(tempfile.mkdtemp()) / "privsdk.toml"
    config.write_text(POLICY, encoding="utf-8")
    # PRIVSDK_ENDPOINTS passes through: it declares stand-in servers when the vendors' URLs point at them.
    client = privsdk.Client(
        environ={
            "PRIVSDK_CONFIG": str(config),
            "PRIVSDK_TENANT": "clinic",
            "PRIVSDK_ENDPOINTS": os.environ.get("PRIVSDK_ENDPOINTS", ""),
        }
    )
    note = "Patient reports chest pain after exercise; summarise for the referral letter."
    with privsdk.scope(data_class="phi"):
        answer = client.chat("openai-mini", note)
        print(f"openai-mini ({answer.decision.outcome if answer.decision else '?'}): {answer.text}")
        try:
            client.chat("mistral-small", note)
        except privsdk.PolicyViolation as refusal:
            print(f"mistral-small refused, nothing sent: {refusal}")
            for unmet in refusal.decision.unmet:
                print(f"  {unmet.requirement}: {unmet.offered} ({unmet.source}, as of {unmet.as_of})")
    client.close()


if __name__ == "__main__":
    main()
