"""Call Cohere's platform through the privsdk adapter: a chat, a stream, an embedding and a rerank.

Run:  CO_API_KEY=... python examples/vendor_cohere.py [--endpoint URL]

The adapter is what privsdk's client calls once the policy allowed a target. Used on its own like this, its
SDK client is still guarded: each request is judged on the environment's policy (PRIVSDK_REQUIRE,
PRIVSDK_CONFIG, ...) before a byte is sent. ``--endpoint`` points the same calls at another Cohere API (a
proxy, or, with ``--offering cohere.private``, your own deployment), which the guard must know: declare it
with ``PRIVSDK_ENDPOINTS=URL=OFFERING``.
"""

from __future__ import annotations

import argparse

from privsdk.adapter import AdapterOptions, open_adapter
from privsdk.policy import Target
from privsdk.types import ChatRequest, EmbedRequest, FinishReason, Message, RerankRequest, StreamEnd, TextDelta, Usage


def summary(finish_reason: FinishReason, usage: Usage) -> str:
    return f"  finish={finish_reason} tokens in/out={usage.input_tokens}/{usage.output_tokens}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--offering", default="cohere.saas", choices=["cohere.saas", "cohere.private"])
    parser.add_argument("--endpoint", help="the API's base URL (required for cohere.private)")
    parser.add_argument("--model", default="command-a-03-2025")
    args = parser.parse_args()

    def target(name: str, model: str) -> Target:
        return Target(name, args.offering, model, endpoint=args.endpoint)

    # No credentials given: the key comes from CO_API_KEY (cohere.saas); a private deployment gets none.
    chat = open_adapter(target("cohere-chat", args.model), AdapterOptions(timeout=60))
    question = ChatRequest((Message("user", "Name three Canadian cities, comma-separated."),), max_tokens=60)
    answer = chat.chat(question, timeout=60)
    print(f"chat ({answer.model}): {answer.text!r}")
    print(summary(answer.finish_reason, answer.usage))

    print("stream: ", end="", flush=True)
    for event in chat.stream(question, timeout=60):
        if isinstance(event, TextDelta):
            print(event.text, end="", flush=True)
        elif isinstance(event, StreamEnd):
            print("\n" + summary(event.finish_reason, event.usage))
    chat.close()

    embedder = open_adapter(target("cohere-embed", "embed-v4.0"))
    vectors = embedder.embed(EmbedRequest(("Toronto", "Montréal"), input_type="search_document"), timeout=60)
    print(f"embed ({vectors.model}): {len(vectors.vectors)} vectors of {len(vectors.vectors[0])} floats")
    embedder.close()

    reranker = open_adapter(target("cohere-rerank", "rerank-v3.5"))
    ranked = reranker.rerank(RerankRequest("capital of Canada", ("Toronto", "Ottawa", "Vancouver")), timeout=60)
    best = ranked.results[0]
    print(
        f"rerank ({ranked.model}): best #{best.document} ({best.score:.2f}), search units {ranked.usage.search_units}"
    )
    reranker.close()


if __name__ == "__main__":
    main()
