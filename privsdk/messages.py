"""Turning what callers pass (strings, OpenAI-style dicts, privsdk types) into privsdk types.

The client accepts messages and tools in the shape most apps already have:
the OpenAI chat format. Anything else is a :class:`TypeError` naming the item
by position and key, never by its content.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from privsdk.types import Image, Message, Part, ResponseFormat, Role, Text, Tool, ToolCall

_ROLES = ("system", "developer", "user", "assistant", "tool")
_PLAIN = frozenset(("system", "user", "assistant"))

MessageLike = Message | Mapping[str, Any] | str
ToolLike = Tool | Mapping[str, Any]


def to_messages(messages: str | Iterable[MessageLike]) -> tuple[Message, ...]:
    """A string is one user message; dicts follow OpenAI's chat format (``developer`` is ``system``)."""
    if isinstance(messages, str):
        return (Message("user", messages),)
    out = []
    for i, item in enumerate(messages):
        if isinstance(item, Message):
            out.append(item)
        elif isinstance(item, str):
            out.append(Message("user", item))
        elif isinstance(item, Mapping):
            role, content = item.get("role"), item.get("content")
            if len(item) == 2 and type(content) is str and role in _PLAIN:  # the common case, kept cheap
                out.append(Message(role, content))
            else:
                out.append(_message(i, item))
        else:
            raise TypeError(f"messages[{i}] must be a privsdk Message, a dict or a str, not {type(item).__name__}")
    if not out:
        raise ValueError("messages is empty")
    return tuple(out)


def _message(i: int, item: Mapping[str, Any]) -> Message:
    role = item.get("role")
    if role not in _ROLES:
        raise ValueError(f"messages[{i}]['role'] must be one of {', '.join(_ROLES)}")
    content = item.get("content")
    parts: str | tuple[Part, ...]
    if content is None or isinstance(content, str):
        parts = content or ""
    elif isinstance(content, Sequence):
        parts = tuple(_part(i, j, p) for j, p in enumerate(content))
    else:
        raise TypeError(f"messages[{i}]['content'] must be a str or a list of parts")
    calls = tuple(
        ToolCall(str(c["id"]), str(c["function"]["name"]), str(c["function"].get("arguments") or "{}"))
        for c in item.get("tool_calls") or ()
    )
    return Message(cast(Role, "system" if role == "developer" else role), parts, calls, item.get("tool_call_id"))


def _part(i: int, j: int, part: Any) -> Part:
    if isinstance(part, (Text, Image)):
        return part
    kind = part.get("type") if isinstance(part, Mapping) else None
    if kind == "text":
        return Text(str(part["text"]))
    if kind == "image_url":
        url = str(part["image_url"]["url"])
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            return Image(data=base64.b64decode(data), media_type=header[5:].split(";")[0] or "image/png")
        return Image(url=url)
    raise ValueError(f"messages[{i}]['content'][{j}]: parts must be of type 'text' or 'image_url'")


def to_tools(tools: Iterable[ToolLike] | None) -> tuple[Tool, ...]:
    """privsdk Tools, or OpenAI-style ``{"type": "function", "function": {...}}`` dicts."""
    out = []
    for i, tool in enumerate(tools or ()):
        if isinstance(tool, Tool):
            out.append(tool)
            continue
        spec = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(spec, Mapping) or "name" not in spec:
            raise ValueError(
                f"tools[{i}] must be a privsdk Tool or {{'type': 'function', 'function': {{'name': ...}}}}"
            )
        params = spec.get("parameters") or {"type": "object", "properties": {}}
        out.append(Tool(str(spec["name"]), str(spec.get("description") or ""), params))
    return tuple(out)


def to_response_format(value: ResponseFormat | Mapping[str, Any] | None) -> ResponseFormat | None:
    """privsdk's ResponseFormat, or OpenAI's ``{"type": "json_object"}`` / ``{"type": "json_schema", ...}``."""
    if value is None or isinstance(value, ResponseFormat):
        return value
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat()
    if kind == "json_schema":
        spec = value.get("json_schema") or {}
        return ResponseFormat(spec.get("schema"), str(spec.get("name") or "response"))
    raise ValueError("response_format type must be 'text', 'json_object' or 'json_schema'")
