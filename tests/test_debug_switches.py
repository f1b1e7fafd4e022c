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
