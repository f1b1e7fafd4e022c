"""What each vendor offering promises, requirement by requirement, as the sources say.

Each row is one claim from the sources (shared/reference/vendor-guarantees.md
and the seeds), written down by hand: the engine must agree with every one.
"""

from __future__ import annotations

import pytest

from privsdk.decision import decide
from tests.conftest import one_target_policy

Row = tuple[str, str, str, str, tuple[str, ...], tuple[str, ...], bool]
# (offering, model, operation, requirement, account attestations, features, holds)

OAI, AZ, CO, MI, BR, VX, GM = (
    "openai.api",
    "azure.openai",
    "cohere.saas",
    "mistral.api",
    "bedrock.runtime",
    "vertex.gemini",
    "gemini.api",
)
GPT, CLAUDE = "gpt-4o-mini", "anthropic.claude-3-5-sonnet-20240620-v1:0"

ROWS: list[tuple[str, Row]] = [
    # OpenAI API: no training by default; 30-day abuse logs unless ZDR/MAM; stateful endpoints keep data.
    ("openai does not train by default", (OAI, GPT, "chat", "no_training", (), (), True)),
    ("openai keeps abuse logs 30 days", (OAI, GPT, "chat", "zdr", (), (), False)),
    ("openai 30 days meets a 30-day cap", (OAI, GPT, "chat", "max_retention_days=30", (), (), True)),
    ("openai 30 days misses a 29-day cap", (OAI, GPT, "chat", "max_retention_days=29", (), (), False)),
    ("openai zdr approved", (OAI, GPT, "chat", "zdr", ("openai:zdr",), (), True)),
    ("openai zdr covers streaming", (OAI, GPT, "stream", "zdr", ("openai:zdr",), (), True)),
    ("openai zdr covers embeddings", (OAI, "text-embedding-3-small", "embed", "zdr", ("openai:zdr",), (), True)),
    # MAM drops content from abuse logs, but it is not ZDR: without ZDR, prompt caching defaults to 24 hours (OAI-PC).
    ("openai MAM is not zdr", (OAI, GPT, "chat", "zdr", ("openai:modified_abuse_monitoring",), (), False)),
    (
        "openai MAM keeps a day at most",
        (OAI, GPT, "chat", "max_retention_days=1", ("openai:modified_abuse_monitoring",), (), True),
    ),
    (
        "openai MAM has no human review",
        (OAI, GPT, "chat", "no_human_review", ("openai:modified_abuse_monitoring",), (), True),
    ),
    ("openai search models search the web", (OAI, "gpt-4o-search-preview", "chat", "zdr", ("openai:zdr",), (), False)),
    ("openai zdr excludes files", (OAI, GPT, "files", "zdr", ("openai:zdr",), (), False)),
    ("openai zdr excludes batch", (OAI, GPT, "batch", "zdr", ("openai:zdr",), (), False)),
    ("openai zdr excludes fine-tuning", (OAI, GPT, "fine_tune", "zdr", ("openai:zdr",), (), False)),
    ("openai zdr excludes stored responses", (OAI, GPT, "chat", "zdr", ("openai:zdr",), ("stored_responses",), False)),
    ("openai zdr excludes background mode", (OAI, GPT, "chat", "zdr", ("openai:zdr",), ("background",), False)),
    ("openai humans may review abuse logs", (OAI, GPT, "chat", "no_human_review", (), (), False)),
    ("openai zdr: nothing kept to review", (OAI, GPT, "chat", "no_human_review", ("openai:zdr",), (), True)),
    ("openai first-party: no other maker", (OAI, GPT, "chat", "no_provider_sharing", (), (), True)),
    ("openai is not a private deployment", (OAI, GPT, "chat", "private_deployment", ("openai:zdr",), (), False)),
    ("openai no BAA unless signed", (OAI, GPT, "chat", "hipaa_baa", (), (), False)),
    ("openai BAA signed", (OAI, GPT, "chat", "hipaa_baa", ("openai:baa",), (), True)),
    ("openai BAA does not cover web search", (OAI, GPT, "chat", "hipaa_baa", ("openai:baa",), ("web_search",), False)),
    ("openai no residency by default", (OAI, GPT, "chat", "region=eu", (), (), False)),
    ("openai EU residency project", (OAI, GPT, "chat", "region=eu", ("openai:zdr", "openai:region=eu"), (), True)),
    ("openai EU residency needs zdr", (OAI, GPT, "chat", "region=eu", ("openai:region=eu",), (), False)),
    ("openai US project is not EU", (OAI, GPT, "chat", "region=eu", ("openai:region=us",), (), False)),
    ("openai US project meets eu|us", (OAI, GPT, "chat", "region=eu|us", ("openai:region=us",), (), True)),
    (
        "openai residency excludes web search (third parties)",
        (OAI, GPT, "chat", "region=eu", ("openai:zdr", "openai:region=eu"), ("web_search",), False),
    ),
    (
        "openai residency excludes hosted tools and remote MCP",
        (OAI, GPT, "chat", "region=eu", ("openai:zdr", "openai:region=eu"), ("hosted_tools",), False),
    ),
    # A remote MCP server is governed by its own party: a BAA with OpenAI cannot cover it (it was let through).
    (
        "openai hosted tools: no BAA covers a remote MCP server",
        (OAI, GPT, "chat", "hipaa_baa", ("openai:baa",), ("hosted_tools",), False),
    ),
    # Azure OpenAI's BAA: confirmed for text inputs only.
    ("azure BAA covers text", (AZ, "gpt-4o", "chat", "hipaa_baa", ("azure:baa",), (), True)),
    (
        "azure BAA not confirmed for image, audio or file inputs",
        (AZ, "gpt-4o", "chat", "hipaa_baa", ("azure:baa",), ("file_inputs",), False),
    ),
    (
        "azure BAA not confirmed for audio output",
        (AZ, "gpt-4o", "chat", "hipaa_baa", ("azure:baa",), ("audio_output",), False),
    ),
    # Azure OpenAI: not shared with OpenAI; abuse store period not stated now; deployment type sets residency.
    ("azure does not train", (AZ, "gpt-4o", "chat", "no_training", (), (), True)),
    # OpenAI keeps generated audio an hour even under ZDR; no Azure source states a period: unknown.
    (
        "azure audio output: no period stated, so never zero",
        (AZ, "gpt-4o", "chat", "zdr", ("azure:modified_abuse_monitoring",), ("audio_output",), False),
    ),
    ("azure is not shared with OpenAI", (AZ, "gpt-4o", "chat", "no_provider_sharing", (), (), True)),
    ("azure abuse store period unknown", (AZ, "gpt-4o", "chat", "max_retention_days=30", (), (), False)),
    ("azure modified abuse monitoring", (AZ, "gpt-4o", "chat", "zdr", ("azure:modified_abuse_monitoring",), (), True)),
    ("azure flagged content reviewed", (AZ, "gpt-4o", "chat", "no_human_review", (), (), False)),
    ("azure unknown deployment type", (AZ, "gpt-4o", "chat", "region=eu", (), (), False)),
    ("azure EU data zone", (AZ, "gpt-4o", "chat", "region=eu", ("azure:deployment=data_zone_eu",), (), True)),
    (
        "azure US data zone is not EU",
        (AZ, "gpt-4o", "chat", "region=eu", ("azure:deployment=data_zone_us",), (), False),
    ),
    (
        "azure batch is a Global type",
        (AZ, "gpt-4o", "batch", "region=eu", ("azure:deployment=data_zone_eu",), (), False),
    ),
    # Cohere SaaS: a key with nothing attested is a trial key; paid trains unless opted out; ZDR for enterprise.
    ("cohere trial key trains", (CO, "command-r-plus", "chat", "no_training", (), (), False)),
    (
        "cohere paid still trains (opt-out model)",
        (CO, "command-r-plus", "chat", "no_training", ("cohere:plan=paid",), (), False),
    ),
    (
        "cohere paid and opted out",
        (CO, "command-r-plus", "chat", "no_training", ("cohere:plan=paid", "cohere:training_opt_out"), (), True),
    ),
    (
        "cohere opt-out needs paid plan",
        (CO, "command-r-plus", "chat", "no_training", ("cohere:training_opt_out",), (), False),
    ),
    ("cohere trial retention unknown", (CO, "command-r-plus", "chat", "max_retention_days=30", (), (), False)),
    (
        "cohere paid, training on: what it trains on has no stated period",
        (CO, "command-r-plus", "chat", "max_retention_days=30", ("cohere:plan=paid",), (), False),
    ),
    (
        "cohere paid, training off: logs deleted at 30 days",
        (
            CO,
            "command-r-plus",
            "chat",
            "max_retention_days=30",
            ("cohere:plan=paid", "cohere:training_opt_out"),
            (),
            True,
        ),
    ),
    ("cohere paid logs 30 days", (CO, "command-r-plus", "chat", "zdr", ("cohere:plan=paid",), (), False)),
    (
        "cohere enterprise zdr, training off",
        (CO, "command-r-plus", "chat", "zdr", ("cohere:plan=paid", "cohere:training_opt_out", "cohere:zdr"), (), True),
    ),
    (
        "cohere zdr covers rerank",
        (CO, "rerank-v3.5", "rerank", "zdr", ("cohere:plan=paid", "cohere:training_opt_out", "cohere:zdr"), (), True),
    ),
    # ZDR stops logging, not training use: data kept to train on has no stated period, so zdr needs the opt-out.
    (
        "cohere zdr with training on",
        (CO, "command-r-plus", "chat", "zdr", ("cohere:plan=paid", "cohere:zdr"), (), False),
    ),
    (
        "cohere safety teams may review",
        (CO, "command-r-plus", "chat", "no_human_review", ("cohere:plan=paid",), (), False),
    ),
    # Cohere elsewhere: Cohere receives nothing on third-party clouds and private deployments.
    (
        "cohere on bedrock: shared unless the Region's retention mode is attested, as bedrock/cohere.* is",
        ("cohere.bedrock", "cohere.command-r-v1:0", "chat", "no_provider_sharing", (), (), False),
    ),
    (
        "cohere on bedrock: not shared in the default retention mode",
        (
            "cohere.bedrock",
            "cohere.command-r-v1:0",
            "chat",
            "no_provider_sharing",
            ("bedrock:data_retention_mode=default",),
            (),
            True,
        ),
    ),
    (
        "cohere on bedrock follows bedrock zdr",
        ("cohere.bedrock", "cohere.command-r-v1:0", "chat", "zdr", ("bedrock:data_retention_mode=none",), (), True),
    ),
    ("cohere private deployment", ("cohere.private", "command-r-plus", "chat", "private_deployment", (), (), True)),
    ("cohere private: operator logging unknown", ("cohere.private", "command-r-plus", "chat", "zdr", (), (), False)),
    # Mistral API: a key is on the free plan, which trains unless opted out; ZDR on Scale covers stateless calls.
    ("mistral free plan trains", (MI, "mistral-large-latest", "chat", "no_training", (), (), False)),
    ("mistral opted out", (MI, "mistral-large-latest", "chat", "no_training", ("mistral:training_opt_out",), (), True)),
    (
        "mistral scale does not train",
        (MI, "mistral-large-latest", "chat", "no_training", ("mistral:plan=scale",), (), True),
    ),
    ("mistral keeps 30 days", (MI, "mistral-large-latest", "chat", "zdr", ("mistral:plan=scale",), (), False)),
    ("mistral scale zdr", (MI, "mistral-large-latest", "chat", "zdr", ("mistral:plan=scale", "mistral:zdr"), (), True)),
    ("mistral zdr needs scale", (MI, "mistral-large-latest", "chat", "zdr", ("mistral:zdr",), (), False)),
    (
        "mistral zdr excludes batch",
        (MI, "mistral-large-latest", "batch", "zdr", ("mistral:plan=scale", "mistral:zdr"), (), False),
    ),
    (
        "mistral zdr excludes labs models",
        (MI, "labs-mistral-small-creative", "chat", "zdr", ("mistral:plan=scale", "mistral:zdr"), (), False),
    ),
    (
        "mistral promises no EU-only processing",
        (MI, "mistral-large-latest", "chat", "region=eu", ("mistral:plan=scale", "mistral:zdr"), (), False),
    ),
    (
        "mistral on azure: not shared with Mistral",
        ("mistral.azure", "mistral-large-2407", "chat", "no_provider_sharing", (), (), True),
    ),
    # Amazon Bedrock: no training; retention and sharing depend on the Region's data_retention_mode.
    ("bedrock does not train", (BR, CLAUDE, "chat", "no_training", (), (), True)),
    ("bedrock mode unknown: retention unknown", (BR, CLAUDE, "chat", "zdr", (), (), False)),
    ("bedrock mode none", (BR, CLAUDE, "chat", "zdr", ("bedrock:data_retention_mode=none",), (), True)),
    (
        "bedrock mode default may retain",
        (BR, CLAUDE, "chat", "zdr", ("bedrock:data_retention_mode=default",), (), False),
    ),
    ("bedrock mode unknown may share", (BR, CLAUDE, "chat", "no_provider_sharing", (), (), False)),
    (
        "bedrock mode default: provider gets nothing",
        (BR, CLAUDE, "chat", "no_provider_sharing", ("bedrock:data_retention_mode=default",), (), True),
    ),
    (
        "bedrock model with its own retention",
        (BR, "anthropic.claude-fable-5-v1:0", "chat", "zdr", ("bedrock:data_retention_mode=none",), (), False),
    ),
    (
        "bedrock model shared with its maker",
        (
            BR,
            "anthropic.claude-fable-5-v1:0",
            "chat",
            "no_provider_sharing",
            ("bedrock:data_retention_mode=none",),
            (),
            False,
        ),
    ),
    ("bedrock EU region, in-region model", (BR, CLAUDE, "chat", "region=eu", ("bedrock:region=eu",), (), True)),
    # AWS's EU geography may route to London (uk) and Zurich (ch): the stricter reading of the sources.
    ("bedrock EU geographic profile", (BR, "eu." + CLAUDE, "chat", "region=eu", ("bedrock:region=eu",), (), False)),
    (
        "bedrock EU geography is eu, uk or ch",
        (BR, "eu." + CLAUDE, "chat", "region=eu|uk|ch", ("bedrock:region=eu",), (), True),
    ),
    ("bedrock US profile leaves the EU", (BR, "us." + CLAUDE, "chat", "region=eu", ("bedrock:region=eu",), (), False)),
    (
        "bedrock global profile: any Region",
        (BR, "global." + CLAUDE, "chat", "region=eu", ("bedrock:region=eu",), (), False),
    ),
    ("bedrock region not attested", (BR, "eu." + CLAUDE, "chat", "region=eu", (), (), False)),
    ("bedrock BAA", (BR, CLAUDE, "chat", "hipaa_baa", ("bedrock:baa",), (), True)),
    # Vertex AI: flagged prompts logged 30 days unless excepted; caching and grounding keep data.
    ("vertex does not train", (VX, "gemini-2.5-flash", "chat", "no_training", (), (), True)),
    ("vertex logs flagged prompts 30 days", (VX, "gemini-2.5-flash", "chat", "zdr", (), (), False)),
    ("vertex 30 days meets a 30-day cap", (VX, "gemini-2.5-flash", "chat", "max_retention_days=30", (), (), True)),
    (
        "vertex exception alone leaves the cache",
        (VX, "gemini-2.5-flash", "chat", "zdr", ("vertex:abuse_monitoring_exception",), (), False),
    ),
    (
        "vertex exception and cache off",
        (
            VX,
            "gemini-2.5-flash",
            "chat",
            "zdr",
            ("vertex:abuse_monitoring_exception", "vertex:caching_disabled"),
            (),
            True,
        ),
    ),
    (
        "vertex search grounding keeps 30 days",
        (
            VX,
            "gemini-2.5-flash",
            "chat",
            "zdr",
            ("vertex:abuse_monitoring_exception", "vertex:caching_disabled"),
            ("grounding_search",),
            False,
        ),
    ),
    ("vertex global endpoint: no residency", (VX, "gemini-2.5-flash", "chat", "region=eu", (), (), False)),
    ("vertex EU endpoint", (VX, "gemini-2.5-flash", "chat", "region=eu", ("vertex:region=eu",), (), True)),
    (
        "vertex search grounding: no residency promise",
        (VX, "gemini-2.5-flash", "chat", "region=eu", ("vertex:region=eu",), ("grounding_search",), False),
    ),
    ("vertex BAA", (VX, "gemini-2.5-flash", "chat", "hipaa_baa", ("vertex:baa",), (), True)),
    (
        "vertex search grounding: no source says a BAA covers it",
        (VX, "gemini-2.5-flash", "chat", "hipaa_baa", ("vertex:baa",), ("grounding_search",), False),
    ),
    # Maps grounding, like search grounding: no source gives it residency or BAA coverage (it was let through both).
    (
        "vertex maps grounding: no residency promise",
        (VX, "gemini-2.5-flash", "chat", "region=eu", ("vertex:region=eu",), ("grounding_maps",), False),
    ),
    (
        "vertex maps grounding: no source says a BAA covers it",
        (VX, "gemini-2.5-flash", "chat", "hipaa_baa", ("vertex:baa",), ("grounding_maps",), False),
    ),
    (
        "vertex partner models: sharing not stated",
        ("vertex.partner", "claude-3-5-sonnet", "chat", "no_provider_sharing", (), (), False),
    ),
    # Gemini Developer API: unpaid trains with human review; 55-day logs; no ZDR offered.
    ("gemini free tier trains", (GM, "gemini-2.5-flash", "chat", "no_training", (), (), False)),
    ("gemini paid does not train", (GM, "gemini-2.5-flash", "chat", "no_training", ("gemini:plan=paid",), (), True)),
    (
        "gemini keeps 55 days",
        (GM, "gemini-2.5-flash", "chat", "max_retention_days=30", ("gemini:plan=paid",), (), False),
    ),
    (
        "gemini paid: search grounding (30 days) stays within the 55-day log",
        (GM, "gemini-2.5-flash", "chat", "no_training", ("gemini:plan=paid",), ("grounding_search",), True),
    ),
    (
        "gemini paid: maps grounding meets a 60-day cap",
        (GM, "gemini-2.5-flash", "chat", "max_retention_days=60", ("gemini:plan=paid",), ("grounding_maps",), True),
    ),
    (
        "gemini 55 days meets a 60-day cap",
        (GM, "gemini-2.5-flash", "chat", "max_retention_days=60", ("gemini:plan=paid",), (), True),
    ),
    (
        "gemini unpaid: content used to improve products, no stated period",
        (GM, "gemini-2.5-flash", "chat", "max_retention_days=60", (), (), False),
    ),
    (
        "mistral experiment trains: no stated period",
        (MI, "mistral-small-latest", "chat", "max_retention_days=30", (), (), False),
    ),
    (
        "mistral opted out keeps abuse logs 30 days",
        (MI, "mistral-small-latest", "chat", "max_retention_days=30", ("mistral:training_opt_out",), (), True),
    ),
    (
        "mistral scale keeps abuse logs 30 days",
        (MI, "mistral-small-latest", "chat", "max_retention_days=30", ("mistral:plan=scale",), (), True),
    ),
    # Self-hosted: private by construction; what the server logs is the operator's to attest.
    ("vllm is a private deployment", ("selfhosted.vllm", "llama-3.1-8b", "chat", "private_deployment", (), (), True)),
    ("vllm logging unknown", ("selfhosted.vllm", "llama-3.1-8b", "chat", "zdr", (), (), False)),
    (
        "vllm logging off",
        ("selfhosted.vllm", "llama-3.1-8b", "chat", "zdr", ("selfhosted:no_request_logging",), (), True),
    ),
    ("ollama local model", ("selfhosted.ollama", "llama3.2", "chat", "private_deployment", (), (), True)),
    (
        "ollama cloud model leaves the host",
        ("selfhosted.ollama", "gpt-oss:120b-cloud", "chat", "private_deployment", (), (), False),
    ),
]


@pytest.mark.parametrize("row", [r for _, r in ROWS], ids=[i for i, _ in ROWS])
def test_vendor_claim(row: Row) -> None:
    offering, model, operation, requirement, attest, features, holds = row
    # A project with data residency is sent to its region's host ("eu.api.openai.com"): the target names the region
    # (one that names none goes to api.openai.com, where no residency holds).
    region = next((a.partition("=")[2] for a in attest if a.startswith(("openai:region=", "mistral:region="))), None)
    policy = one_target_policy(offering, model, [requirement], frozenset(attest), region=region)
    decision = decide(policy, "tgt", operation, features=features)
    assert decision.evaluation.reason is None, decision.reason
    assert decision.outcome == ("allow" if holds else "refuse")
    if not holds:
        (unmet,) = decision.unmet
        assert unmet.requirement == requirement
        assert unmet.source.startswith(("https://", "seeds/", "docs/"))


def test_a_refusal_cites_the_attested_fact_over_the_default_it_ties_with() -> None:
    """A paying Cohere tenant refused for no_training was shown the trial key's note; the paid plan's own fact (training
    stays on until an admin opts out) is what its refusal cites now."""
    policy = one_target_policy(CO, "command-r-plus", ["no_training"], frozenset({"cohere:plan=paid"}))
    decision = decide(policy, "tgt", "chat")
    (unmet,) = decision.unmet
    assert "Trial key" not in unmet.note and "training_opt_out" in unmet.note
