"""The two debugging switches read through privsdk.config.env_flag: the usual spellings work, a bad one is off."""

from __future__ import annotations

import logging

import pytest

from privsdk import sdklogs
from privsdk.vendor_errors import keep_chain


@pytest.mark.parametrize(("value", "on"), [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False),
                                           ("off", False), ("", False), ("maybe", False)])  # fmt: skip
def test_debug_chain_takes_the_usual_spellings(monkeypatch: pytest.MonkeyPatch, value: str, on: bool) -> None:
    monkeypatch.setenv("PRIVSDK_DEBUG_CHAIN", value)
    assert keep_chain() is on


@pytest.mark.parametrize(("value", "filtered"), [("on", False), ("true", False), ("0", True), ("bad", True)])
def test_sdk_debug_logs_takes_the_usual_spellings(monkeypatch: pytest.MonkeyPatch, value: str, filtered: bool) -> None:
    logger = logging.getLogger("botocore")
    monkeypatch.setattr(logger, "filters", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    monkeypatch.setenv("PRIVSDK_SDK_DEBUG_LOGS", value)
    sdklogs.install()
    assert (sdklogs._FILTER in logger.filters) is filtered


def test_a_level_the_app_sets_after_privsdk_raised_it_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    """privsdk raises each SDK logger's level the first time it guards a client; an app that then lowers one for
    its own traffic (DEBUG on urllib3) keeps it when the next client is guarded, and its records are still
    filtered. Before, every client guarded put it back to WARNING."""
    from privsdk import openai as dropin

    monkeypatch.setenv("PRIVSDK_ENDPOINTS", "http://levels.invalid=openai.api")
    logger = logging.getLogger("urllib3")
    monkeypatch.setattr(logger, "level", logger.level)  # restored after the test
    dropin.OpenAI(api_key="sk-x", base_url="http://levels.invalid/v1").close()
    assert "urllib3" in sdklogs._raised  # raised once, by the first client guarded in the process
    logger.setLevel(logging.DEBUG)
    dropin.OpenAI(api_key="sk-x", base_url="http://levels.invalid/v1").close()
    assert logger.level == logging.DEBUG and sdklogs._FILTER in logger.filters
