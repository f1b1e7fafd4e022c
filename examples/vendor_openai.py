"""Chat, stream and embed through privsdk's openai adapter, with your own account or server.

The adapter alone, without the policy client: this is what privsdk runs once a
call has been allowed. Its SDK client is still guarded: each request is judged on
the environment's policy (PRIVSDK_REQUIRE, PRIVSDK_CONFIG, ...) before a byte is
sent, so a server of your own must be declared to the guard (PRIVSDK_ENDPOINTS).
Credentials come from each vendor's own variables.

  OPENAI_API_KEY=sk-...  python examples/vendor_openai.py openai
  AZURE_OPENAI_API_KEY=... python examples/vendor_openai.py azure \\
      --endpoint https://RESOURCE.openai.azure.com --model gpt-4o-mini --embed-model text-embedding-3-small
  PRIVSDK_ENDPOINTS=http://localhost:11434/v1=selfhosted.ollama \\
      python examples/vendor_openai.py ollama --endpoint http://localhost:11434/v1 \\
      --model llama3.2 --embed-model nomic-embed-text

On Azure the model names are your deployment names.
"""

from __future__ import annotations

import argparse

from privsdk.adapter import AdapterOptions, open_adapter
from privsdk.policy import Target
from privsdk.types import ChatRequest, EmbedRequest, Message, StreamEnd, TextDelta

#: Per choice: the offering, and default chat and embedding models.
OFFERINGS = {
    "openai": ("openai.api", "gpt-4o-mini", "text-embedding-3-small"),
    "azure": ("azure.openai", "gpt-4o-mini", "text-embedding-3-small"),
    "ollama": ("selfhosted.ollama", "llama3.2", "nomic-embed-text"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description="Chat, stream and embed through privsdk's openai adapter.")
    parser.add_argument("vendor", choices=sorted(OFFERINGS))
    parser.add_argument("--endpoint", help="Azure resource URL, or the server's OpenAI-compatible /v1 URL")
    parser.add_argument("--api-version", default="2024-10-21", help="Azure OpenAI API version")
    parser.add_argument("--model")
    parser.add_argument("--embed-model")
    args = parser.parse_args()

    offering, chat_model, embed_model = OFFERINGS[args.vendor]
    api_version = args.api_version if offering == "azure.openai" else None
    options = AdapterOptions(timeout=30.0)  # no credentials: the SDK reads the vendor's own variables

    def target(model: str) -> Target:
        return Target("example", offering, model, endpoint=args.endpoint, api_version=api_version)

    chat = open_adapter(target(args.model or chat_model), options)
    request = ChatRequest((Message("system", "Answer in one sentence."), Message("user", "Why is the sky blue?")))
    answer = chat.chat(request, timeout=30)
    print(f"chat ({answer.model}, {answer.usage.input_tokens} in / {answer.usage.output_tokens} out): {answer.text}")

    print("stream: ", end="", flush=True)
    for event in chat.stream(request, timeout=30):
        if isinstance(event, TextDelta):
            print(event.text, end="", flush=True)
        elif isinstance(event, StreamEnd):
            print(f"\n  finished: {event.finish_reason}, {event.usage.output_tokens} tokens out")
    chat.close()

    embedder = open_adapter(target(args.embed_model or embed_model), options)
    vectors = embedder.embed(EmbedRequest(("privacy", "policy")), timeout=30).vectors
    print(f"embed: {len(vectors)} vectors of {len(vectors[0])} floats")
    embedder.close()


if __name__ == "__main__":
    main()
