"""Call Mistral's la Plateforme through the privsdk adapter: a chat, a stream and an embedding.

Run:  MISTRAL_API_KEY=... python examples/vendor_mistral.py [--region eu|us]

The adapter is what privsdk's client calls once the policy allowed a target. Used on its own like this, its
SDK client is still guarded: each request is judged on the environment's policy (PRIVSDK_REQUIRE,
PRIVSDK_CONFIG, ...) before a byte is sent. With no ``--region`` the SDK's default server (api.mistral.ai)
answers.
"""

from __future__ import annotations

import argparse

from privsdk.adapter import AdapterOptions, open_adapter
from privsdk.policy import Target
from privsdk.types import ChatRequest, EmbedRequest, FinishReason, Message, StreamEnd, TextDelta, Usage


def summary(finish_reason: FinishReason, usage: Usage) -> str:
    return f"  finish={finish_reason} tokens in/out={usage.input_tokens}/{usage.output_tokens}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--region", choices=["eu", "us"], help="la Plateforme's EU or US server")
    parser.add_argument("--model", default="mistral-small-latest")
    args = parser.parse_args()

    # No credentials given: the SDK reads MISTRAL_API_KEY itself.
    chat = open_adapter(Target("mistral-chat", "mistral.api", args.model, region=args.region), AdapterOptions())
    question = ChatRequest((Message("user", "Name three French cheeses, comma-separated."),), max_tokens=60)
    answer = chat.chat(question, timeout=30)
    print(f"chat ({answer.model}): {answer.text!r}")
    print(summary(answer.finish_reason, answer.usage))

    print("stream: ", end="", flush=True)
    for event in chat.stream(question, timeout=30):
        if isinstance(event, TextDelta):
            print(event.text, end="", flush=True)
        elif isinstance(event, StreamEnd):
            print("\n" + summary(event.finish_reason, event.usage))
    chat.close()

    embedder = open_adapter(Target("mistral-embed", "mistral.api", "mistral-embed", region=args.region))
    vectors = embedder.embed(EmbedRequest(("brie", "camembert")), timeout=30)
    print(f"embed ({vectors.model}): {len(vectors.vectors)} vectors of {len(vectors.vectors[0])} floats")
    embedder.close()


if __name__ == "__main__":
    main()
