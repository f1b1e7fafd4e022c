"""Switch an app from the openai package to privsdk by changing one import.

Before:  from openai import OpenAI
After:   from privsdk.openai import OpenAI

Everything else stays: the same calls, openai's own return types and errors.
What changes: each call is checked against the tenant's policy first, retried
by privsdk, and leaves a usage record without content.

  OPENAI_API_KEY=sk-... PRIVSDK_REQUIRE=no_training .venv/bin/python examples/swap_openai_import.py
"""

from __future__ import annotations

from privsdk.openai import OpenAI  # was: from openai import OpenAI


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
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Count to five."}], stream=True
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()
    vectors = client.embeddings.create(model="text-embedding-3-small", input=["privacy", "retention"])
    print(f"{len(vectors.data)} vectors of {len(vectors.data[0].embedding)} dimensions")
    client.close()


if __name__ == "__main__":
    main()
