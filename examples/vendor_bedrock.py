"""Call Amazon Bedrock through the privsdk-bedrock adapter: a chat, a stream and an embedding.

Needs AWS credentials the usual way (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, an
instance role) or a Bedrock API key in AWS_BEARER_TOKEN_BEDROCK, and access to the models below in
the Region. Run:

    AWS_REGION=eu-central-1 python examples/vendor_bedrock.py

This talks to the adapter directly, without privsdk's client (which picks, reroutes and records). Its SDK
client is guarded all the same: the guard judges each request on the environment's policy (PRIVSDK_REQUIRE,
PRIVSDK_CONFIG, ...; none set: nothing is required), and refuses, naming why, before a byte is sent.
"""

from __future__ import annotations

import os

from privsdk.adapter import AdapterOptions, open_adapter
from privsdk.policy import Target
from privsdk.types import ChatRequest, EmbedRequest, Message, StreamEnd, TextDelta

REGION = os.environ.get("AWS_REGION", "eu-central-1")
#: An EU geographic cross-Region inference profile: requests stay in AWS's EU geography, which may include London
#: and Zurich (privsdk reads it as region eu|uk|ch; an in-Region model id is what meets region=eu).
CHAT_MODEL = "eu.anthropic.claude-3-7-sonnet-20250219-v1:0"
EMBED_MODEL = "amazon.titan-embed-text-v2:0"


def main() -> None:
    options = AdapterOptions(timeout=30.0)  # no credentials given: boto3's own chain finds them
    chat = open_adapter(Target("bedrock-eu-claude", "bedrock.runtime", CHAT_MODEL, region=REGION), options)
    request = ChatRequest(
        (Message("system", "Answer in one sentence."), Message("user", "Why do bees dance?")),
        max_tokens=200,
    )
    try:
        answer = chat.chat(request, timeout=30.0)
        usage = answer.usage
        print(f"{answer.text}\n  [{answer.finish_reason}, {usage.input_tokens} in / {usage.output_tokens} out]")

        for event in chat.stream(request._replace(messages=(Message("user", "Count to five."),)), timeout=30.0):
            if isinstance(event, TextDelta):
                print(event.text, end="", flush=True)
            elif isinstance(event, StreamEnd):
                print(f"\n  [{event.finish_reason}, {event.usage.output_tokens} tokens out]")
    finally:
        chat.close()

    embed = open_adapter(Target("bedrock-eu-titan", "bedrock.runtime", EMBED_MODEL, region=REGION), options)
    try:
        vectors = embed.embed(EmbedRequest(("bees", "honey"), dimensions=256), timeout=30.0)
        print(f"{len(vectors.vectors)} vectors of {len(vectors.vectors[0])}, {vectors.usage.input_tokens} tokens")
    finally:
        embed.close()


if __name__ == "__main__":
    main()
