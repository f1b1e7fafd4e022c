"""Features a vendor's service applies to a model whatever the request says.

OpenAI's API and Azure OpenAI cache prompts to their newest models for up to 24 hours (extended prompt caching),
and take no shorter retention for them. OpenAI: "For gpt-5.5, gpt-5.5-pro, and future models, only 24h is
supported" (the openai SDK's ``prompt_cache_retention``, 3.54); Azure: for models newer than gpt-5.4 "the default
is 24h and in_memory isn't supported" (Microsoft Learn, "Prompt caching"). Read as every GPT model but those known
to be older (``gpt-3.5``, ``gpt-4*``, ``gpt-5`` to ``gpt-5.4``), fine-tunes included: a GPT name without a
generation (``gpt-daybreak-red-latest``) may be a future model. ``gpt-oss`` is open-weight, served by others with
their own caches. (For older models OpenAI's default is 24 hours for an organisation without ZDR: no ZDR attestation
covers its requests, and the catalogue's ``modified_abuse_monitoring`` attestation, which is not ZDR, keeps them up
to a day for that reason.)

OpenAI's search models (``gpt-4o-search-preview``, ``gpt-4o-mini-search-preview``, ``gpt-5-search-api``) search the
web in Chat Completions whatever the request says: OpenAI's model pages call them "a specialized model for web search
in Chat Completions", "trained to understand and execute web search queries"; the web search guide offers search "in
some cases, Chat Completions" through them. A request that sets no ``web_search_options`` still asks for
``web_search``. Read as every GPT model whose name says ``search``, the stricter reading.

Applied in one place, the decision (``privsdk.decision.evaluate``), to the model and the Azure deployment a target
names: the guard's target is built from the request (an Azure deployment in the path decides what runs, whatever
the body names), the Client's and ``privsdk explain``'s from the configuration.
"""

from __future__ import annotations

import re

#: The offerings whose service does so: OpenAI's own (a self-hosted server's or a Foundry partner's models are their
#: own).
OPENAI_SERVED = frozenset({"openai.api", "azure.openai"})
_NONE: frozenset[str] = frozenset()
#: A GPT model and its generation, when its name gives one (``gpt-5.5-pro`` -> 5, 5; ``ft:gpt-6-...`` -> 6, None;
#: ``gpt-daybreak-red-latest`` -> None, None).
_GPT = re.compile(r"(?:ft:)?gpt-(?!oss)(?:(\d+)(?:\.(\d+))?)?")
#: A GPT search model: ``gpt-4o-search-preview``, ``gpt-5-search-api``, a dated or fine-tuned one.
_SEARCH = re.compile(r"(?:ft:)?gpt-[^:]*search", re.IGNORECASE)  # the family globs take any case after "gpt-"


def caches_prompts_a_day(model: str) -> bool:
    """Whether OpenAI and Azure cache prompts to ``model`` for up to a day, however the request asks."""
    found = _GPT.match(model)
    return found is not None and (found[1] is None or (int(found[1]), int(found[2] or 0)) >= (5, 5))


def searches_the_web(model: str) -> bool:
    """Whether ``model`` is one of OpenAI's search models, which search the web however the request asks."""
    return _SEARCH.match(model) is not None


def implied_features(offering: str, model: str | None) -> frozenset[str]:
    """The features ``offering`` gives every request to ``model``."""
    if offering not in OPENAI_SERVED or not model:
        return _NONE
    found = set()
    if caches_prompts_a_day(model):
        found.add("prompt_caching")
    if searches_the_web(model):
        found.add("web_search")
    return frozenset(found)
