"""Self-hosted OpenAI-compatible servers (``selfhosted.*``: vLLM, Ollama, llama.cpp, ...): OpenAI's protocol.

Read as :mod:`privsdk.outbound.wire.openai` reads it, features included, but for the fields a body may hold:
these servers take many of their own (``top_k``, ``repetition_penalty``, ``guided_json``,
``chat_template_kwargs``), and each is the tenant's own server, with no vendor behind it for a field to make keep
or run anything. A field the OpenAI reader does not know passes here. An endpoint declared as a vendor's offering
(``PRIVSDK_ENDPOINTS=https://proxy.example=openai.api``) is read by the OpenAI reader, which refuses it.
"""

from __future__ import annotations

from privsdk.outbound.wire.openai import OpenAIReader

READER = OpenAIReader(every_field=True)
