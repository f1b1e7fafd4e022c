"""Switch an app from the openai package to privsdk by changing one import.

Before:  from openai import OpenAI
After:   from privsdk.openai import OpenAI

Everything else stays: the client IS openai's client class (every resource,
helper, raw-response wrapper and type), with privsdk's guard in its
transport. What changes: each request the SDK sends is judged first, on where
it really goes and what it really asks for; a request that the tenant's
requirements do not allow is refused before a byte leaves, and every request
leaves a usage record without content.

With ZDR required and attested for the OpenAI account, chat, streams and
embeddings go through; the file upload is refused, since OpenAI's ZDR does
not cover the Files API:

  OPENAI_API_KEY=sk-... PRIVSDK_REQUIRE=zdr PRIVSDK_ATTEST=openai:zdr python examples/swap_openai_import.py
"""

from __future__ import annotations

from privsdk.openai import OpenAI, PolicyViolation  # was: from openai import OpenAI


def main() -> None:
    client = OpenAI()
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What does zero data retention mean?"},
        ],
    )
    print(completion.choices[0].message.content)
    for chunk in client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Count to five."}],
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()
    vectors = client.embeddings.create(model="text-embedding-3-small", input=["privacy", "retention"])
    print(f"{len(vectors.data)} vectors of {len(vectors.data[0].embedding)} dimensions")
    try:
        client.files.create(file=("notes.jsonl", b"{}\n"), purpose="batch")
    except PolicyViolation as refusal:  # also an openai.OpenAIError: existing handlers catch it
        print(f"refused: {refusal}")
    client.close()


if __name__ == "__main__":
    main()
