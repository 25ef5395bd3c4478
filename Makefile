# The two commands a newcomer needs: `make demo` and `make test`. Both install first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system-packages

.PHONY: install demo test bench lint docs clean system-packages manifests

install: $(STAMP) $(SYSTEM_STAMP)

# Optional system packages, tried once per venv: bubblewrap isolates the sandbox's Bash tool. Without
# it the sandbox refuses Bash with a clear error and the tests that need it skip, saying why.
system-packages: $(SYSTEM_STAMP)
$(SYSTEM_STAMP):
	@mkdir -p $(VENV)
	@if command -v bwrap >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing bubblewrap (isolates the sandbox's Bash tool)"; \
	  ( timeout 600 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq bubblewrap ) >/dev/null 2>&1 \
	    || echo "note: could not install bubblewrap; the sandbox refuses Bash and its isolation tests skip"; \
	else \
	  echo "note: bubblewrap is not installed and this user cannot install it (needs root and apt-get)."; \
	  echo "      The sandbox refuses Bash and its isolation tests skip. To enable: sudo apt-get install bubblewrap"; \
	fi
	@touch $@

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(BIN)/incidentfox demo

# Two workers: the platform tests (each starts its own Ray and Serve in a subprocess) beside the rest
# (tests/conftest.py groups them). `make test XDIST=` runs everything in one process.
XDIST ?= -n 2 --dist loadgroup
test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15 $(XDIST) $(PYTEST_ARGS)

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: install
	$(BIN)/ruff check .

docs: install
	$(BIN)/incidentfox docs tools --out docs/tools.md
	$(BIN)/incidentfox docs config --out docs/configuration.md
	$(BIN)/incidentfox docs openapi --out docs/openapi.json

clean:
	rm -rf $(VENV) .incidentfox

# The committed serveConfigV2 (cluster/base/serve-config.generated.yaml) from serve_apps/serve_config.yaml.
manifests: install
	$(BIN)/python -m cluster.render
