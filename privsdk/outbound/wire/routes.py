"""Where a vendor's own route starts in a request path.

A gateway serves each vendor under a prefix of its own (``https://llm-proxy.corp/cohere/v2/chat``), declared
as that vendor's endpoint; the vendor sees only what follows the prefix. A wire reader whose routes start with
a few known segments (``v1``, ``v2``, ``model``) reads the path from the first of them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from privsdk.outbound.outgoing import Asks, Meter, Outgoing, UnknownRoute, WireReader


def after_prefix(parts: list[str], starts: Collection[str], found: Collection[str]) -> list[str]:
    """``parts`` (a path's segments) from the first segment in ``found``, unless the path already opens with one
    of ``starts``; as they are when no segment is in ``found`` (the reader then refuses the path it cannot read)."""
    if parts[0] in starts:
        return parts
    return next((parts[i:] for i, part in enumerate(parts) if part in found), parts)


class AfterDeclaredPrefix:
    """The reader for requests through a declared endpoint whose URL has a path (``https://gw.corp/v1/acc/openai``):
    a path it cannot read whole it reads after that prefix, which is what a gateway forwards to the vendor.

    Whole first: an endpoint's path may be the vendor's own route prefix (a vLLM server declared at ``/v1``), which
    its readers read as part of the route. A gateway's prefix that holds a segment like a route's own (Cloudflare AI
    Gateway's ``/v1/{account}/{gateway}/openai``) makes the whole path no route (:class:`UnknownRoute`); what follows
    it is the vendor's route. When neither reads, the error is the one about what follows the prefix: the route the
    gateway forwards, which is what the app can mend (and a prefix's own segments, an account's name say, are not
    quoted). A whole path that is a route, with a body that cannot be read, is refused for its body.
    """

    __slots__ = ("inner", "prefix")

    def __init__(self, inner: WireReader, prefix: str):
        self.inner, self.prefix = inner, prefix

    def _after(self, request: Outgoing) -> Outgoing | None:
        path = request.path
        if len(path) > len(self.prefix) and path.startswith(self.prefix) and path[len(self.prefix)] == "/":
            return request._replace(path=path[len(self.prefix) :])
        return None

    def read(self, request: Outgoing) -> Asks:
        try:
            return self.inner.read(request)
        except UnknownRoute:  # a route that reads whole and then fails (on its body) is that route's refusal
            after = self._after(request)
            if after is None:
                raise
        return self.inner.read(after)  # outside the except clause: its error chains nothing

    def meter(self, request: Outgoing, asks: Asks, status: int, headers: Mapping[str, str]) -> Meter | None:
        found = self.inner.meter(request, asks, status, headers)
        if found is None:  # a meter that reads the route (Bedrock's /model/...) sees it after the prefix
            after = self._after(request)
            if after is not None:
                found = self.inner.meter(after, asks, status, headers)
        return found
