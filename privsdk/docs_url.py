"""Where the documentation site lives: messages and ``--help`` link its pages, never a path in the repository.

An installed privsdk has no docs/ folder, so a hint that names ``docs/configuration.md`` points a pip user
at nothing. mkdocs.yml's ``site_url`` and pyproject's ``[project.urls]`` carry the same address (a test checks).
"""

DOCS_URL = "https://privsdk.readthedocs.io/en/latest/"


def page(name: str, anchor: str = "") -> str:
    """The URL of the site's page built from docs/NAME.md (``page("configuration")``), with an optional anchor."""
    return f"{DOCS_URL}{name}/" + (f"#{anchor}" if anchor else "")
