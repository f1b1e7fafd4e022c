"""Caller tags: a few short labels an app attaches to its calls' usage records (``team=search``).

Tags are the one part of a record the app writes freely, so they are held to
a narrow shape: at most :data:`MAX_TAGS`, keys of lowercase letters, digits
and ``_ . -``, values of one token without spaces. A tag that breaks a rule is
an error at the call, never a silent drop, and the error names the key's
position or the key, never the value: a wrong value may be content.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from privsdk.errors import TagError

MAX_TAGS = 8
KEY = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
VALUE = re.compile(r"[A-Za-z0-9_.:/@+-]{1,64}")
KEY_RULE = "a key is a lowercase letter then up to 31 of a-z 0-9 _ . -"
VALUE_RULE = "a value is 1 to 64 of A-Z a-z 0-9 _ . : / @ + -, with no spaces"

Tags = tuple[tuple[str, str], ...]


def check_tags(tags: Mapping[str, str] | None) -> Tags:
    """``tags`` as sorted (key, value) pairs, or :class:`~privsdk.errors.TagError` naming what is wrong."""
    if not tags:
        return ()
    if len(tags) > MAX_TAGS:
        raise TagError(f"{len(tags)} usage tags given; at most {MAX_TAGS} are allowed")
    pairs = []
    for number, (key, value) in enumerate(tags.items(), 1):
        if not isinstance(key, str) or not KEY.fullmatch(key):
            # The key itself is not shown either: a key that breaks the rule may be text the app did not mean as one.
            size = f"{len(key)} characters" if isinstance(key, str) else f"a {type(key).__name__}"
            raise TagError(f"usage tag #{number} has an invalid key ({size}): {KEY_RULE}")
        key = str.__str__(key)  # a str enum member as its plain characters
        if not isinstance(value, str):
            raise TagError(f"usage tag {key!r} has a {type(value).__name__} value: values are strings; {VALUE_RULE}")
        if not VALUE.fullmatch(value):
            raise TagError(f"usage tag {key!r} has an invalid value (not shown, it may be content): {VALUE_RULE}")
        pairs.append((key, str.__str__(value)))
    return tuple(sorted(pairs))


def valid_pair(pair: object) -> bool:
    """Whether ``pair`` is one (key, value) tag that :func:`check_tags` would accept."""
    return (
        type(pair) is tuple
        and len(pair) == 2
        and type(pair[0]) is str
        and type(pair[1]) is str
        and KEY.fullmatch(pair[0]) is not None
        and VALUE.fullmatch(pair[1]) is not None
    )
