"""Call Gemini on Vertex AI (or the Gemini Developer API) through the privsdk adapter: a chat, a stream, embeddings.

Run:  gcloud auth application-default login
      python examples/vendor_vertex.py --project my-project --location europe-west4
or:   GOOGLE_API_KEY=... python examples/vendor_vertex.py --gemini-api

The adapter is what privsdk's client calls once the policy allowed a target. Used on its own like this, its
SDK client is still guarded: each request is judged on the environment's policy (PRIVSDK_REQUIRE,
PRIVSDK_CONFIG, ...) before a byte is sent. On Vertex AI no credentials are given, so google-genai finds
Application Default Credentials at the first call; ``--access-token`` (e.g. ``$(gcloud auth print-access-token)``)
sends one as is.
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
    parser.add_argument("--gemini-api", action="store_true", help="the Gemini Developer API instead of Vertex AI")
    parser.add_argument("--project", help="Google Cloud project (else GOOGLE_CLOUD_PROJECT)")
    parser.add_argument("--location", help="Vertex location: a region, eu, us or global (else GOOGLE_CLOUD_LOCATION)")
    parser.add_argument("--access-token", help="an OAuth access token (else Application Default Credentials)")
    parser.add_argument("--model", default="gemini-2.5-flash")
    parser.add_argument("--embedding-model", default="gemini-embedding-001")
    args = parser.parse_args()

    if args.gemini_api:
        offering, place, credentials = "gemini.api", {}, {}  # the SDK reads GOOGLE_API_KEY or GEMINI_API_KEY
    else:
        offering, place = "vertex.gemini", {"project": args.project, "region": args.location}
        credentials = {"access_token": args.access_token} if args.access_token else {}
    options = AdapterOptions(timeout=60, credentials=credentials)

    chat = open_adapter(Target("gemini-chat", offering, args.model, **place), options)
    question = ChatRequest(
        (Message("system", "Answer in one line."), Message("user", "Name three French cheeses, comma-separated.")),
        max_tokens=200,
    )
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

    embedder = open_adapter(Target("gemini-embed", offering, args.embedding_model, **place), options)
    vectors = embedder.embed(EmbedRequest(("brie", "camembert"), input_type="search_document"), timeout=60)
    print(f"embed ({vectors.model}): {len(vectors.vectors)} vectors of {len(vectors.vectors[0])} floats")
    print(f"  tokens in={vectors.usage.input_tokens}")
    embedder.close()


if __name__ == "__main__":
    main()
