"""Where a vendor's own route starts in a request path.

A gateway serves each vendor under a prefix of its own (``https://llm-proxy.corp/cohere/v2/chat``), declared
as that vendor's endpoint; the vendor sees only what follows the prefix. A wire reader whose routes start with
a few known segments (``v1``, ``v2``, ``model``) reads the path from the first of them.
"""

from __future__ import annotations

from collections.abc import Collection


def after_prefix(parts: list[str], starts: Collection[str], found: Collection[str]) -> list[str]:
    """``parts`` (a path's segments) from the first segment in ``found``, unless the path already opens with one
    of ``starts``; as they are when no segment is in ``found`` (the reader then refuses the path it cannot read)."""
    if parts[0] in starts:
        return parts
    return next((parts[i:] for i, part in enumerate(parts) if part in found), parts)
