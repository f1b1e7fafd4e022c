"""The packaged catalogue is complete, sourced and consistent; malformed files are rejected."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from privsdk.catalogue import DATA_DIR, Catalogue
from privsdk.catalogue.facts import FACT_NAMES, UNBOUNDED, at_least_as_protective
from privsdk.errors import CatalogueError
from tests.conftest import REPO, all_offerings

#: Where the seed documents are: beside the repository, or where ``SEEDS_DIR`` says (a worktree elsewhere).
SEEDS = Path(os.environ.get("SEEDS_DIR") or REPO.parent / "shared" / "seeds")

#: Offerings the policy-core issue asks the catalogue to cover.
REQUIRED_OFFERINGS = {
    "openai.api", "azure.openai", "azure.foundry", "cohere.saas", "cohere.bedrock", "cohere.sagemaker",
    "cohere.oci", "cohere.azure", "cohere.private", "mistral.api", "mistral.azure", "mistral.vertex",
    "bedrock.runtime", "vertex.gemini", "vertex.partner", "gemini.api", "selfhosted.openai_compatible",
    "selfhosted.vllm", "selfhosted.ollama",
}  # fmt: skip


def test_every_required_offering_is_present(catalogue: Catalogue) -> None:
    """Every offering an app can call through an API has an entry."""
    assert {o.id for o in all_offerings(catalogue)} >= REQUIRED_OFFERINGS


def test_every_fact_is_sourced_and_dated(catalogue: Catalogue) -> None:
    """Each fact, default or attested or limited, names a source, an as-of date no later than the review, and a note."""
    for vendor in catalogue.all_vendors():
        for offering in vendor.offerings.values():
            facts = [*offering.facts.values()]
            facts += [f for a in offering.attestations.values() for f in a.facts.values()]
            facts += [f for li in offering.limits for f in li.facts.values()]
            assert set(offering.facts) == set(FACT_NAMES), offering.id
            for fact in facts:
                where = f"{offering.id} {fact.name}"
                assert fact.note.strip(), f"{where}: no note"
                assert fact.as_of <= offering.reviewed or fact.as_of <= vendor.reviewed, where
                assert fact.as_of >= dt.date(2023, 1, 1), where
                ref = fact.source.ref
                assert ref.startswith(("https://", "seeds/", "docs/")), f"{where}: {ref}"


def test_seed_references_name_real_seed_files(catalogue: Catalogue) -> None:
    """A fact citing seeds/<file> cites a document that exists.

    The seeds live beside the repository: a checkout without them skips, but CI (``CI=true``) must have them.
    """
    if not SEEDS.is_dir():
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but the seed documents are missing at {SEEDS}: check them out beside the repository")
        pytest.skip("the seed documents live beside the repository")
    refs = {s.ref for v in catalogue.all_vendors() for s in v.sources.values() if s.ref.startswith("seeds/")}
    assert refs, "the catalogue cites no seed document"
    for ref in refs:
        assert (SEEDS / ref.removeprefix("seeds/")).is_file(), ref


@pytest.mark.parametrize(("ci", "expected", "status"), [("true", "FAILED", 1), ("", "SKIPPED", 0)])
def test_missing_seeds_fail_the_seed_check_in_ci(ci: str, expected: str, status: int, tmp_path: Path) -> None:
    """Without the seeds the check skips on a developer's machine, and fails in CI rather than pass unseen."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "SEEDS_DIR", "PYTEST_ADDOPTS")}
    env.update(CI=ci, SEEDS_DIR=str(tmp_path / "no-seeds"))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-rfs",
         f"{__file__}::test_seed_references_name_real_seed_files"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (run.returncode, expected in run.stdout) == (status, True), run.stdout[-2000:]


def test_docs_references_exist(catalogue: Catalogue) -> None:
    refs = {s.ref for v in catalogue.all_vendors() for s in v.sources.values() if s.ref.startswith("docs/")}
    for ref in refs:
        assert (REPO / ref).is_file(), ref


def test_attestations_only_strengthen_their_offering(catalogue: Catalogue) -> None:
    """No attested value is less protective than the default it replaces (the loader enforces it too)."""
    for offering in all_offerings(catalogue):
        for att in offering.attestations.values():
            assert att.facts, att.qualified
            for name, fact in att.facts.items():
                assert at_least_as_protective(fact, offering.facts[name]), (offering.id, att.qualified, name)
            assert all(r in offering.attestations for r in att.requires), att.qualified


def test_every_vendor_has_a_default_offering_or_says_why(catalogue: Catalogue) -> None:
    for vendor in catalogue.all_vendors():
        assert vendor.default_offering in vendor.offerings


def test_loading_one_vendor_reads_only_that_file_and_its_parents() -> None:
    """Files load lazily: a decision about OpenAI parses only openai.toml."""
    code = (
        "import privsdk, privsdk.catalogue as c;"
        "p = privsdk.load_policy({});"
        "privsdk.decide(p, 'openai/gpt-4o-mini');"
        "print(sorted(c.default_catalogue()._vendors))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "['openai']"


GOOD = """
vendor = "acme"
name = "Acme"
reviewed = 2026-01-01
default_offering = "acme.api"

[sources.S]
title = "t"
ref = "https://example.invalid/s"
date = "undated"

[[offerings]]
id = "acme.api"
name = "Acme API"
summary = "s"
operations = ["chat"]
models = ["a-*"]
""" + "".join(
    f'[offerings.facts.{n}]\nvalue = {v}\nhow = "default"\nsource = "S"\nas_of = 2026-01-01\nnote = "n"\n'
    for n, v in [
        ("no_training", "false"), ("retention_days", "30"), ("no_human_review", "false"),
        ("no_provider_sharing", "true"), ("private_deployment", "false"), ("regions", '"any"'), ("hipaa_baa", "false"),
    ]
)  # fmt: skip

ZDR = """
[[offerings.attestations]]
name = "zdr"
how = "approval"
note = "n"
[offerings.attestations.facts.retention_days]
value = VALUE
source = "S"
as_of = 2026-01-01
"""


def _limit(condition: str) -> str:
    facts = '[offerings.limits.facts.regions]\nvalue = "any"\nsource = "S"\nas_of = 2026-01-01\n'
    return f'[[offerings.limits]]\n{condition}note = "n"\n{facts}'


def _load(tmp_path: Path, text: str) -> Catalogue:
    (tmp_path / "acme.toml").write_text(text, encoding="utf-8")
    cat = Catalogue(tmp_path)
    cat.vendor("acme")
    return cat


def test_a_well_formed_file_loads(tmp_path: Path) -> None:
    cat = _load(tmp_path, GOOD + ZDR.replace("VALUE", "0"))
    offering = cat.offering("acme.api")
    assert offering is not None
    assert offering.facts["retention_days"].value == 30
    assert offering.attestations["acme:zdr"].facts["retention_days"].value == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('vendor = "acme"', 'vendor = "other"'), "does not match the file name"),
        (lambda t: t.replace("reviewed = 2026-01-01", 'reviewed = "yesterday"'), "reviewed must be a TOML date"),
        (lambda t: t.replace("value = 30", "value = -1"), "bad value -1"),
        (lambda t: t.replace("value = 30", 'value = "thirty"'), "bad value 'thirty'"),
        (lambda t: t.replace('value = "any"', 'value = ["mars"]'), "bad value ['mars']"),
        (
            lambda t: t.replace(
                'value = false\nhow = "default"\nsource = "S"', 'value = false\nhow = "default"\nsource = "NOPE"', 1
            ),
            "unknown source 'NOPE'",
        ),
        (lambda t: t.replace('how = "default"', 'how = "magic"', 1), "how must be one of"),
        (lambda t: t.replace("as_of = 2026-01-01\nnote", 'as_of = "2026"\nnote', 1), "as_of must be a TOML date"),
        (lambda t: t.replace("[offerings.facts.hipaa_baa]", "[offerings.facts.hipaa]"), "unknown fact"),
        (lambda t: t.split("[offerings.facts.hipaa_baa]")[0], "missing facts ['hipaa_baa']"),
        (lambda t: t.replace('operations = ["chat"]', 'operations = ["dance"]'), "bad operations ['dance']"),
        (lambda t: t.replace('models = ["a-*"]', "models = []"), "models must list at least one glob"),
        (lambda t: t.replace('id = "acme.api"', 'id = "other.api"'), "id must start with 'acme.'"),
        (lambda t: t.replace('default_offering = "acme.api"', 'default_offering = "acme.nope"'), "default_offering"),
        (lambda t: t.replace('summary = "s"', 'summary = "s"\ninherits = "nope.x"'), "inherits unknown offering"),
        (lambda t: t.replace('summary = "s"', 'summary = "s"\ncolour = "red"'), "unknown keys ['colour']"),
        (lambda t: t + ZDR.replace("VALUE", "60"), "would weaken retention_days"),
        (
            lambda t: t + ZDR.replace("VALUE", "0").replace('note = "n"', 'note = "n"\nrequires = ["plan=x"]'),
            "requires unknown acme:plan=x",
        ),
        (
            lambda t: t + _limit(""),
            "names no models, operations or features",
        ),
        (
            lambda t: t + _limit('features = ["teleport"]\n'),
            "unknown features ['teleport']",
        ),
        (
            lambda t: t + '[[offerings.attestations]]\nname = "empty"\nhow = "setting"\nnote = "n"\nfacts = {}\n',
            "changes no fact",
        ),
        (lambda t: t + "\n[broken", "acme.toml"),
    ],
)
def test_malformed_files_are_rejected(tmp_path: Path, change: object, message: str) -> None:
    """Each malformation a maintainer could make is a CatalogueError naming what is wrong."""
    assert callable(change)
    with pytest.raises(CatalogueError) as err:
        _load(tmp_path, change(GOOD))
    assert message in str(err.value)


def test_packaged_files_load_from_a_copy(tmp_path: Path) -> None:
    """The packaged directory is self-contained: every inherits resolves within it."""
    for path in Path(DATA_DIR).glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    cat = Catalogue(tmp_path)
    assert [v.vendor for v in cat.all_vendors()] == sorted(p.stem for p in Path(DATA_DIR).glob("*.toml"))


FT_OPENAI = "ft:gpt-4o-mini-2024-07-18:acme::abc123"
FT_MISTRAL = "ft:open-mistral-7b:587a6b29:20240514:7e773925"


def test_openai_fine_tuned_models_are_judged_as_their_base_models_family(catalogue: Catalogue) -> None:
    """OpenAI serves an organisation's fine-tuned models under the API's own terms (SEED-OAI): the id names its base
    model, whose family and limits apply; a checkpoint of a fine-tuning job is the same model."""
    openai = catalogue.offering("openai.api")
    assert openai is not None and openai.fine_tuned is not None and openai.fine_tuned.served
    assert openai.fine_tuned.source.key == "SEED-OAI" and "fine-tuned" in openai.fine_tuned.note
    for model in (FT_OPENAI, "ft:gpt-4o-mini-2024-07-18:acme:weather:abc123:ckpt-step-88"):
        assert openai.serves_model(model) and openai.model_key(model) == "gpt-4o-mini-2024-07-18"
        assert openai.unserved(model) is None
        note = openai.model_note(model)
        assert note is not None and "fine-tuned from 'gpt-4o-mini-2024-07-18'" in note and "SEED-OAI" in note
    # A base family the offering does not serve, or an id that names no base model, stays unknown, with why.
    for model, why in [
        ("ft:davinci-002:acme::abc123", "fine-tuned from 'davinci-002', a model family openai.api does not serve"),
        ("ft:gpt-4o", "names no base model"),
        ("ft::acme::abc123", "names no base model"),
    ]:
        assert not openai.serves_model(model)
        assert why in (openai.unserved(model) or ""), model
    assert openai.model_note("gpt-4o-mini") is None and openai.unserved("gpt-4o-mini") is None


def test_mistral_fine_tuned_models_are_refused_saying_why_and_what_to_do(catalogue: Catalogue) -> None:
    """Mistral's documents read say nothing of the terms its fine-tuned models are served under: still refused,
    now with the reason, its source, and what to do."""
    mistral = catalogue.offering("mistral.api")
    assert mistral is not None and mistral.fine_tuned is not None and not mistral.fine_tuned.served
    assert not mistral.serves_model(FT_MISTRAL) and mistral.model_key(FT_MISTRAL) == FT_MISTRAL
    why = mistral.unserved(FT_MISTRAL)
    assert why is not None and "fine-tuned from 'open-mistral-7b'" in why
    assert "MIS-ZDR" in why and "call the base model" in why and mistral.model_note(FT_MISTRAL) == why
    # Offerings with no fine-tuned entry know no fine-tuned ids.
    azure = catalogue.offering("mistral.azure")
    assert azure is not None and azure.fine_tuned is None and azure.unserved(FT_MISTRAL) is None


def test_every_fine_tuned_entry_is_sourced_and_dated(catalogue: Catalogue) -> None:
    for vendor in catalogue.all_vendors():
        for offering in vendor.offerings.values():
            tuned = offering.fine_tuned
            if tuned is None:
                continue
            assert tuned.source.key in vendor.sources or offering.inherits, offering.id
            assert tuned.note and tuned.as_of >= dt.date(2023, 1, 1) and tuned.prefix.endswith(":"), offering.id


FINE_TUNED = """
[offerings.fine_tuned]
prefix = "ft:"
served = true
source = "S"
as_of = 2026-01-01
note = "n"
"""


def test_a_fine_tuned_entry_loads_and_its_models_meet_the_base_models_limits(tmp_path: Path) -> None:
    from privsdk.decision import effective_facts

    limit = '[[offerings.limits]]\nmodels = ["a-1*"]\nnote = "n"\n[offerings.limits.facts.retention_days]\n'
    cat = _load(tmp_path, GOOD + FINE_TUNED + limit + 'value = "unbounded"\nsource = "S"\nas_of = 2026-01-01\n')
    offering = cat.offering("acme.api")
    assert offering is not None and offering.fine_tuned is not None
    assert offering.serves_model("ft:a-1x:org::id") and not offering.serves_model("ft:b-1:org::id")
    # A limit that names the base model's family applies to the models fine-tuned from it.
    for model in ("a-1x", "ft:a-1x:org::id"):
        assert effective_facts(offering, (), model, "chat", frozenset())["retention_days"].value is UNBOUNDED
    assert effective_facts(offering, (), "a-2", "chat", frozenset())["retention_days"].value == 30
    refused = _load(tmp_path, GOOD + FINE_TUNED.replace("served = true", "served = false"))
    offering = refused.offering("acme.api")
    assert offering is not None and not offering.serves_model("ft:a-1x:org::id")
    assert "fine-tuned from 'a-1x' on acme.api: n (S)" in (offering.unserved("ft:a-1x:org::id") or "")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace("served = true", 'served = "yes"'), "fine_tuned: served must be true or false"),
        (lambda t: t.replace('source = "S"', 'source = "NOPE"'), "fine_tuned: unknown source 'NOPE'"),
        (lambda t: t.replace('prefix = "ft:"', 'prefix = "ft"'), "fine_tuned: prefix must end with the separator"),
        (lambda t: t.replace('note = "n"\n', 'note = "n"\ncolour = "red"\n'), "fine_tuned: unknown keys ['colour']"),
        (lambda t: t.replace("as_of = 2026-01-01", 'as_of = "2026"'), "fine_tuned: as_of must be a TOML date"),
    ],
)
def test_malformed_fine_tuned_entries_are_rejected(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(CatalogueError) as err:
        _load(tmp_path, GOOD + change(FINE_TUNED))
    assert message in str(err.value)
