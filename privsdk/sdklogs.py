"""Keep the vendor SDKs' own log records out of the app's logs: they can hold prompts, outputs and headers.

With the root logger at DEBUG, botocore logs request and response bodies
(prompts, system text, tool definitions, answers, error bodies), and the HTTP
libraries under openai, cohere, mistralai and google-genai log headers. When
privsdk first sends through an SDK, it sets the SDK loggers below to WARNING
(so their children, made later, log no DEBUG or INFO either) and puts a filter
on each of them that drops DEBUG and INFO records and replaces the text of
warnings and errors with a notice naming the logger and level. Records an SDK
logs on the root logger itself (``logging.warning(...)``) are treated alike, told
by the SDK file they come from.

``PRIVSDK_SDK_DEBUG_LOGS=1`` turns this off, for local debugging: the SDKs then
log as they always do, content included.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from logging import LogRecord

#: Set to 1 to leave the vendor SDKs' loggers alone (their records can hold prompts and credentials' headers).
OPT_OUT_ENV = "PRIVSDK_SDK_DEBUG_LOGS"

#: The loggers of the SDKs and of the HTTP stacks under them; each name covers its children.
SDK_LOGGERS = (
    "botocore", "boto3", "aiobotocore", "s3transfer", "urllib3", "requests",
    "openai", "httpx", "httpx2", "httpcore", "httpcore2", "h2", "hpack", "h11", "aiohttp",
    "cohere", "mistralai", "mistralai_azure", "mistralai_gcp",
    "mcp",  # mistralai's connectors gateway (mcp_client) and agents: its DEBUG records hold tool calls
    "google_genai", "google.genai", "google.auth", "google_auth_httplib2", "google.api_core",
)  # fmt: skip

_NOTICE = "%s record of logger %s withheld by privsdk: it may hold call content (PRIVSDK_SDK_DEBUG_LOGS=1 shows it)"


_WARNING = 30  # logging.WARNING; logging itself is imported only when there is an SDK to guard


class WithholdContent:
    """A logging filter: drops a vendor SDK's DEBUG and INFO records; keeps that a warning or an error
    happened, not its text."""

    def filter(self, record: LogRecord) -> bool:
        if record.levelno < _WARNING:
            return False
        record.msg, record.args = _NOTICE, (record.levelname, record.name)
        record.exc_info = record.exc_text = record.stack_info = None
        return True


class WithholdSdkRecordsOnRoot(WithholdContent):
    """On the root logger: the same, for records an SDK logs there directly (cohere logs a stream event it cannot
    parse, with its text, through ``logging.warning``), told by the SDK file they come from."""

    def __init__(self) -> None:
        self.folders: tuple[str, ...] = ()

    def filter(self, record: LogRecord) -> bool:
        return not record.pathname.startswith(self.folders) or super().filter(record)


_FILTER = WithholdContent()
_ROOT_FILTER = WithholdSdkRecordsOnRoot()
_lock = threading.Lock()
#: The loggers whose level install() has raised: once each, so that an app that lowers one afterwards (DEBUG on
#: urllib3 for its own traffic) keeps its choice when the next client is guarded.
_raised: set[str] = set()


def install() -> None:
    """Guard the SDK loggers that exist now (called each time privsdk guards a client, after its SDK is imported):
    their level is raised once, the first time; their filters are added to every logger not filtered yet.

    ``PRIVSDK_SDK_DEBUG_LOGS`` is read from the process environment, as the SDKs' own logging settings are.
    """
    from privsdk.config import env_flag
    from privsdk.errors import ConfigError

    try:
        if env_flag(OPT_OUT_ENV):
            return
    except ConfigError:  # a bad value (loading the policy refuses it) keeps the filter: fail closed
        pass
    import logging

    with _lock:
        for name in SDK_LOGGERS:
            logger = logging.getLogger(name)
            if name not in _raised:
                _raised.add(name)
                if logger.level < logging.WARNING:  # NOTSET or DEBUG/INFO: children that inherit log no content
                    logger.setLevel(logging.WARNING)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
        # Children made so far: a logger's filters see only its own records, not its children's.
        for name, child in list(logging.Logger.manager.loggerDict.items()):
            if isinstance(child, logging.Logger) and name.startswith(_PREFIXES) and _FILTER not in child.filters:
                child.addFilter(_FILTER)
        _ROOT_FILTER.folders = _sdk_folders()
        root = logging.getLogger()
        if _ROOT_FILTER not in root.filters:
            root.addFilter(_ROOT_FILTER)


def withhold(logger: object) -> None:
    """Filter ``logger`` as the SDK loggers are: one an app hands an SDK for its debug output (mistralai's
    ``debug_logger=``), which logs each request and answer whole, bodies included, under the app's own name."""
    import logging

    from privsdk.config import env_flag
    from privsdk.errors import ConfigError

    try:
        if env_flag(OPT_OUT_ENV):
            return
    except ConfigError:  # as in install(): fail closed
        pass
    with _lock:
        if isinstance(logger, logging.Logger) and _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def _sdk_folders() -> tuple[str, ...]:
    """The folders of the SDK packages imported so far (a record's ``pathname`` is the file that logged it)."""
    import os
    import sys

    folders = []
    for name in SDK_LOGGERS:
        module = sys.modules.get(name)
        for folder in getattr(module, "__path__", ()) or ():
            folders.append(os.path.join(os.path.abspath(folder), ""))
    return tuple(folders)


_PREFIXES = tuple(f"{name}." for name in SDK_LOGGERS)
