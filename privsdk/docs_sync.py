"""Keep the generated parts of the docs equal to the catalogue.

Sections between ``<!-- BEGIN generated: NAME -->`` and
``<!-- END generated: NAME -->`` are rewritten from the catalogue data.
``python -m privsdk.docs_sync FILE...`` rewrites them (``make docs``);
``--check`` only reports, and the test suite fails when a section is stale.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from privsdk.catalogue import Catalogue, default_catalogue
from privsdk.report import catalogue_markdown, table_text

_SECTION = re.compile(r"(<!-- BEGIN generated: (\w+) -->\n)(.*?)(<!-- END generated: \2 -->)", re.S)


def attestations_markdown(cat: Catalogue) -> str:
    """Every attestation per vendor, as written in PRIVSDK_ATTEST or a policy file."""
    out = ["| write | offerings | how | requires | what must be true |", "|---|---|---|---|---|"]
    for v in cat.all_vendors():
        seen: dict[str, list[str]] = {}
        for o in v.offerings.values():
            for a in o.attestations.values():
                if a.vendor == v.vendor:
                    seen.setdefault(a.key, []).append(o.id)
        for key, offerings in seen.items():
            a = next(
                o.attestations[f"{v.vendor}:{key}"]
                for o in v.offerings.values()
                if f"{v.vendor}:{key}" in o.attestations
            )
            out.append(
                f"| `{v.vendor}:{key}` | {', '.join(offerings)} | {a.how.value} | "
                f"{', '.join(a.requires) or '-'} | {table_text(a.note)} |"
            )
    return "\n".join(out) + "\n"


GENERATORS: dict[str, Callable[[Catalogue], str]] = {
    "catalogue": lambda cat: catalogue_markdown(cat.all_vendors()),
    "attestations": attestations_markdown,
}


def render(text: str, cat: Catalogue) -> str:
    """``text`` with every generated section rewritten."""

    def fill(m: re.Match[str]) -> str:
        return m.group(1) + GENERATORS[m.group(2)](cat) + m.group(4)

    return _SECTION.sub(fill, text)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name in (a for a in argv if a != "--check"):
        path = Path(name)
        text = path.read_text(encoding="utf-8")
        new = render(text, default_catalogue())
        if new != text:
            stale.append(name)
            if not check:
                path.write_text(new, encoding="utf-8")
    if stale:
        print(("stale: " if check else "rewrote: ") + ", ".join(stale))
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
