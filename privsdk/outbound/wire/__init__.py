"""Wire readers, one module per protocol: what a request asks for, and its answer's tokens.

Each module defines ``READER``, a :class:`privsdk.outbound.outgoing.WireReader`.
The protocol of a request follows from the offering its host belongs to
(:data:`PROTOCOLS`); modules are imported on first use.
"""

from __future__ import annotations

import importlib

from privsdk.outbound.outgoing import WireReader

#: Offering (or vendor) -> the wire protocol its endpoints speak.
PROTOCOLS = {
    "openai": "openai",
    "azure.openai": "openai",
    "azure.foundry": "openai",
    "selfhosted": "selfhosted",  # OpenAI's protocol, with the servers' own fields let through (see its module)
    "mistral": "mistral",
    "cohere": "cohere",
    "cohere.bedrock": "bedrock",  # the cohere SDK's Bedrock client posts Bedrock's invoke API
    "bedrock": "bedrock",
    "vertex": "google",
    # Partner models on Vertex AI share its hosts and its path shape (publishers/{maker}/models/{m}:rawPredict):
    # the google reader reads them, whatever the maker's own API speaks elsewhere.
    "mistral.vertex": "google",
    "vertex.partner": "google",
    "gemini": "google",
}

#: The names the transport seams give the SDKs whose requests they judge (``Outgoing.sdk``); ``privsdk explain
#: --sdk`` takes the same.
SDKS = ("openai", "cohere", "mistralai", "genai", "boto3")

_readers: dict[str, WireReader] = {}


def reader(protocol: str) -> WireReader:
    """The reader for ``protocol``, imported on first use."""
    found = _readers.get(protocol)
    if found is None:
        found = _readers[protocol] = importlib.import_module(f"privsdk.outbound.wire.{protocol}").READER
    return found
