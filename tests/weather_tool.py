"""The one function tool the drop-in suites pass, in the OpenAI chat shape that openai, Cohere v2 and Mistral take."""

from __future__ import annotations

from typing import Any

TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
