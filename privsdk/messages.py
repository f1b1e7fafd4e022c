"""Turning what callers pass (strings, OpenAI-style dicts, privsdk types) into privsdk types.

The client accepts messages and tools in the shape most apps already have:
the OpenAI chat format. Anything else is a :class:`TypeError` naming the item
by position (and the fixed keys of the OpenAI format), never by its content.
Text that cannot be sent (a lone surrogate, which no JSON encoder or vendor
takes) and malformed tool calls are an :class:`~privsdk.errors.InvalidInput`,
raised before any network.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast, get_args

from privsdk.errors import InvalidInput
from privsdk.outbound.outgoing import MEDIA_TYPE, shown_name
from privsdk.types import Image, Message, Part, ResponseFormat, Role, Text, Tool, ToolCall

_ROLES = ("system", "developer", "user", "assistant", "tool")
#: The roles of a privsdk Message (``developer`` is read as ``system`` from a dict).
_MESSAGE_ROLES: tuple[str, ...] = get_args(Role)
_PLAIN = frozenset(("system", "user", "assistant"))
# to_messages builds plain messages positionally, in this field order.
assert Message._fields == ("role", "content", "tool_calls", "tool_call_id")

MessageLike = Message | Mapping[str, Any] | str
ToolLike = Tool | Mapping[str, Any]


def to_messages(messages: str | Iterable[MessageLike]) -> tuple[Message, ...]:
    """A string is one user message; dicts follow OpenAI's chat format (``developer`` is ``system``)."""
    if isinstance(messages, str):
        return (Message("user", check_text(messages, "messages")),)
    if isinstance(messages, (Mapping, Message)):
        # Iterating one message would send its keys (or fields) as messages and lose the prompt.
        raise InvalidInput("messages must be a str or a list of messages, not a single message")
    out = []
    for i, item in enumerate(messages):
        if type(item) is dict and len(item) == 2:  # the common case, kept cheap: {"role": ..., "content": "..."}
            role, content = item.get("role"), item.get("content")
            if type(content) is str and role in _PLAIN and content.isascii():
                # Built by tuple's own constructor (a named tuple's __new__ is a Python function), with
                # Message's defaults: no tool calls, no tool call id.
                out.append(tuple.__new__(Message, (role, content, (), None)))
                continue
        if isinstance(item, Message):
            out.append(_checked(i, item))
        elif isinstance(item, str):
            out.append(Message("user", check_text(item, f"messages[{i}]")))
        elif isinstance(item, Mapping):
            role, content = item.get("role"), item.get("content")
            if len(item) == 2 and type(content) is str and role in _PLAIN:
                out.append(Message(role, check_text(content, f"messages[{i}]['content']")))
            else:
                out.append(_checked(i, _message(i, item)))
        else:
            raise TypeError(f"messages[{i}] must be a privsdk Message, a dict or a str, not {type(item).__name__}")
    if not out:
        raise ValueError("messages is empty")
    return tuple(out)


def check_text(text: str, where: str) -> str:
    """``text``, when it can be encoded as UTF-8 (every vendor's wire format); else :class:`InvalidInput`."""
    if text.isascii():  # the common case: a C loop, no copy
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"{where} is not valid Unicode text: a lone surrogate at character {exc.start}",
            # The character is named by position only: the text is the caller's content.
        ) from None
    return text


def check_json(value: Any, where: str) -> None:
    """Every string in a JSON-like value (keys included) can be encoded as UTF-8."""
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, Mapping):
        # Entries are named by position: a key is the caller's data (a tool schema's property names can be content).
        for n, (key, item) in enumerate(value.items()):
            if isinstance(key, str):
                check_text(key, f"{where}[key {n}]")
            check_json(item, f"{where}[entry {n}]")
    elif isinstance(value, (list, tuple)):
        for j, item in enumerate(value):
            check_json(item, f"{where}[{j}]")


def _checked(i: int, message: Message) -> Message:
    """``message`` when its role is one and all its text can be sent."""
    if message.role not in _MESSAGE_ROLES:  # never quoted: a Message built by the app may hold any text there
        raise ValueError(f"messages[{i}] role must be one of {', '.join(_MESSAGE_ROLES)}")
    if isinstance(message.content, str):
        check_text(message.content, f"messages[{i}]['content']")
    else:
        for j, part in enumerate(message.content):
            if isinstance(part, Text):
                check_text(part.text, f"messages[{i}]['content'][{j}]")
            elif isinstance(part, Image) and part.url is not None:
                check_text(part.url, f"messages[{i}]['content'][{j}]['image_url']")
    for k, call in enumerate(message.tool_calls):
        for field in ("id", "name", "arguments"):
            check_text(getattr(call, field), f"messages[{i}]['tool_calls'][{k}] {field}")
    if message.tool_call_id is not None:
        check_text(message.tool_call_id, f"messages[{i}]['tool_call_id']")
    return message


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
    calls = tuple(_tool_call(i, k, c) for k, c in enumerate(item.get("tool_calls") or ()))
    answers = item.get("tool_call_id")
    if answers is not None and not isinstance(answers, str):
        raise InvalidInput(f"messages[{i}]['tool_call_id'] must be a str")
    return Message(cast(Role, "system" if role == "developer" else role), parts, calls, answers)


def _tool_call(i: int, k: int, call: Any) -> ToolCall:
    """One OpenAI-style ``{"id": ..., "function": {"name": ..., "arguments": "..."}}``."""
    function = call.get("function") if isinstance(call, Mapping) else None
    if (
        not isinstance(function, Mapping)
        or not isinstance(call.get("id"), str)
        or not isinstance(function.get("name"), str)
        or not isinstance(function.get("arguments") or "", str)
    ):
        raise InvalidInput(
            f"messages[{i}]['tool_calls'][{k}] must be "
            "{'id': str, 'type': 'function', 'function': {'name': str, 'arguments': str}}"
        )
    return ToolCall(call["id"], function["name"], function.get("arguments") or "{}")


def _part(i: int, j: int, part: Any) -> Part:
    if isinstance(part, (Text, Image)):
        return part
    kind = part.get("type") if isinstance(part, Mapping) else None
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise InvalidInput(f"messages[{i}]['content'][{j}]: a text part must be {{'type': 'text', 'text': str}}")
        return Text(part["text"])
    if kind == "image_url":
        image = part.get("image_url")
        if not isinstance(image, Mapping) or not isinstance(image.get("url"), str):
            raise InvalidInput(
                f"messages[{i}]['content'][{j}]: an image part must be "
                "{'type': 'image_url', 'image_url': {'url': str}}"
            )
        url = image["url"]
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            media_type = header[5:].split(";")[0] or "image/png"
            if not MEDIA_TYPE.fullmatch(media_type):  # an adapter that cannot send it names it: only a media type
                raise InvalidInput(
                    f"messages[{i}]['content'][{j}]: an image data URL whose media type is "
                    f"{shown_name(media_type, 'media type', MEDIA_TYPE)} (write data:image/png;base64,...)"
                )
            return Image(data=base64.b64decode(data), media_type=media_type)
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
        strict = _strict(spec, f"tools[{i}]['function']")
        out.append(Tool(str(spec["name"]), str(spec.get("description") or ""), params, strict))
    for i, tool in enumerate(out):
        check_text(tool.name, f"tools[{i}] name")
        check_text(tool.description, f"tools[{i}] description")
        check_json(tool.parameters, f"tools[{i}] parameters")
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
        spec = value.get("json_schema")
        if not isinstance(spec, Mapping) or spec.get("schema") is None:
            # Without a schema the caller would get any JSON object where they asked for one shape.
            raise InvalidInput("response_format json_schema needs a schema: {'name': str, 'schema': {...}}")
        strict = _strict(spec, "response_format['json_schema']")
        return ResponseFormat(spec["schema"], str(spec.get("name") or "response"), strict)
    raise ValueError("response_format type must be 'text', 'json_object' or 'json_schema'")


def _strict(spec: Mapping[str, Any], where: str) -> bool | None:
    """A spec's ``strict`` as given (absent is None: the vendor's default); anything but a bool is refused."""
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise InvalidInput(f"{where}['strict'] must be True or False")
    return strict


def named_tool(choice: Any) -> str:
    """The function a ``tool_choice`` in OpenAI's chat shape names: ``{"type": "function", "function": {"name": ...}}``.

    Each adapter sends that name in its own API's shape, or raises Unsupported.
    """
    named = isinstance(choice, Mapping) and choice.get("type") == "function"
    function = choice.get("function") if named else None
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str):
        raise InvalidInput("tool_choice naming a function must be {'type': 'function', 'function': {'name': str}}")
    return name
