"""Requirement, operation and feature names: what parses, and what the errors say."""

from __future__ import annotations

import pytest

from privsdk.errors import ConfigError
from privsdk.vocabulary import (
    GEOGRAPHIES,
    REQUIREMENT_NAMES,
    MaxRetentionDays,
    NoTraining,
    Region,
    ZeroDataRetention,
    parse_feature,
    parse_operation,
    parse_requirement,
    parse_requirements,
)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no_training", NoTraining()),
        (" zdr ", ZeroDataRetention()),
        ("max_retention_days=30", MaxRetentionDays(30)),
        ("max_retention_days = 0", MaxRetentionDays(0)),
        ("region=eu", Region(frozenset({"eu"}))),
        ("region=eu|us", Region(frozenset({"eu", "us"}))),
    ],
)
def test_valid_requirements_parse(text: str, expected: object) -> None:
    req = parse_requirement(text)
    assert req == expected
    assert parse_requirement(str(req)) == req  # str() is the canonical spelling


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("zdrr", "unknown requirement 'zdrr'", "no_training, zdr, no_human_review"),
        ("no-training", "unknown requirement", "max_retention_days=N"),
        ("max_retention_days=thirty", "whole number of days", "max_retention_days=30"),
        ("max_retention_days=-1", "whole number of days", "max_retention_days=30"),
        ("max_retention_days", "unknown requirement", "max_retention_days=N"),
        ("region=mars", "unknown geography mars", ", ".join(GEOGRAPHIES)),
        ("region=", "unknown geography", "eu"),
        ("zdr=1", "takes no value", "write just zdr"),
    ],
)
def test_invalid_requirements_name_the_valid_ones(text: str, message: str, hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_requirement(text)
    assert message in err.value.message
    assert err.value.hint is not None and hint in err.value.hint


def test_every_documented_form_is_listed() -> None:
    assert set(REQUIREMENT_NAMES) == {
        "no_training", "zdr", "no_human_review", "no_provider_sharing", "private_deployment", "hipaa_baa",
        "max_retention_days=N", "region=GEO[|GEO...]",
    }  # fmt: skip


def test_repeats_are_dropped_in_order() -> None:
    assert [str(r) for r in parse_requirements(["zdr", "no_training", "zdr"])] == ["zdr", "no_training"]


def test_operations_and_features() -> None:
    assert parse_operation("fine_tune").value == "fine_tune"
    with pytest.raises(ConfigError, match="unknown operation 'finetune'"):
        parse_operation("finetune")
    assert parse_feature("stored_responses") == "stored_responses"
    with pytest.raises(ConfigError, match="valid features: stored_responses"):
        parse_feature("store")


def test_every_requirement_has_a_docstring() -> None:
    """Each requirement type documents precisely when it holds."""
    for name in ["no_training", "zdr", "max_retention_days=1", "no_human_review", "no_provider_sharing",
                 "private_deployment", "region=eu", "hipaa_baa"]:  # fmt: skip
        doc = type(parse_requirement(name)).__doc__ or ""
        assert name.split("=")[0] in doc and len(doc) > 80, name
