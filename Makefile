# Two commands on a fresh machine (needs only python3 >= 3.11 and make):
#   make demo   set everything up, then run the main job: examples/offline_demo.py, offline, end to end
#   make test   set everything up, then ruff, strict mypy and the whole test suite
#
# uv manages .venv (privsdk, editable, and the dev group: every vendor SDK, the linters, MkDocs) with the machine's
# own Python (it never downloads one).
# If uv is not on PATH, it is installed from PyPI into .tools/ inside the checkout. uv's cache and pip's are kept
# in .tools/cache/ too, never in the user's ~/.cache: nothing is installed or cached outside the checkout.

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR := $(CURDIR)/.tools/cache/uv
export PIP_CACHE_DIR := $(CURDIR)/.tools/cache/pip

.PHONY: demo test setup lint typecheck pytest docs docs-tables bench clean

demo: setup
	$(VENV)/bin/python examples/offline_demo.py

test: setup lint typecheck pytest

setup: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock $(UV)
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==0.13.9"

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy

pytest:
	$(VENV)/bin/pytest

# Regenerate the tables in docs/ that are generated from the catalogue (a test fails when they are stale),
# then build the documentation site into site/ with MkDocs; --strict makes every warning an error.
docs: docs-tables
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

docs-tables: setup
	$(VENV)/bin/python -m privsdk.docs_sync docs/guarantees.md docs/configuration.md

# Print the measured costs (figures, never asserted; see docs/performance.md). LiteLLM, which
# overhead.py compares against, joins only that run's environment: it is never a privsdk dependency.
bench: setup
	$(VENV)/bin/python bench/import_time.py
	$(VENV)/bin/python bench/decisions.py
	$(VENV)/bin/python bench/usage.py
	for vendor in openai cohere mistral bedrock vertex; do $(VENV)/bin/python bench/adapter_$$vendor.py || exit 1; done
	$(UV) run --locked --python $(PYTHON) --with litellm python bench/overhead.py

clean:
	rm -rf $(VENV) .tools .mypy_cache .pytest_cache .ruff_cache site dist

