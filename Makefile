# The two commands a newcomer needs: `make demo` and `make test`. Both install first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system-packages
# Defined before the rules that list it: make expands a rule's prerequisites when it reads the rule.
CHROMIUM_STAMP := $(VENV)/.system-chromium

.PHONY: install demo test bench lint docs clean system-packages manifests console

install: $(STAMP) $(SYSTEM_STAMP) $(CHROMIUM_STAMP) console

# Optional system packages, tried once per venv: bubblewrap isolates the sandbox's Bash tool. Without
# it the sandbox refuses Bash with a clear error and the tests that need it skip, saying why.
system-packages: $(SYSTEM_STAMP) $(CHROMIUM_STAMP)
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

# Chromium (Debian's) runs the web console's browser tests (tests/console/); Playwright never downloads one.
$(CHROMIUM_STAMP):
	@mkdir -p $(VENV)
	@if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium (the web console's browser tests)"; \
	  ( timeout 600 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq chromium ) >/dev/null 2>&1 \
	    || echo "note: could not install chromium; the console's browser tests skip"; \
	else \
	  echo "note: chromium is not installed and this user cannot install it (needs root and apt-get)."; \
	  echo "      The console's browser tests skip. To enable: sudo apt-get install chromium"; \
	fi
	@touch $@

# The web console (console/, Next.js static export served under /ui): built when Node.js >= 20 and npm
# are present, rebuilt only when its sources change (the stamp). Never fails the install: without
# Node the platform serves a page saying how to build it.
CONSOLE_SRC := $(shell find console/src console/scripts -type f 2>/dev/null) console/package.json \
	console/package-lock.json console/next.config.mjs console/tsconfig.json
CONSOLE_STAMP := console/out/.build-stamp
console: $(CONSOLE_STAMP)
$(CONSOLE_STAMP): $(CONSOLE_SRC)
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  echo "note: Node.js/npm not found: the web console (/ui) is not built; the API works without it."; \
	  echo "      Install Node.js 20+ (apt-get install nodejs npm, or https://nodejs.org) and run make install again."; \
	elif [ "$$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then \
	  echo "note: Node.js $$(node --version) is too old for the web console (needs 20+); /ui explains how to build it."; \
	else \
	  echo "building the web console (console/ -> console/out, served at /ui)"; \
	  if ( cd console && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build ) >console/.build.log 2>&1; then \
	    touch $@; \
	  else \
	    echo "note: the web console build failed (see console/.build.log); /ui says it is not built"; tail -n 20 console/.build.log; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# the offline embedder's model for ONNX Runtime, made from the packaged weights (no download);
	@# without it the platform makes it on first use, or embeds with torch, saying why
	@$(BIN)/python -m incidentfox.knowledge.onnx_model >/dev/null 2>$(VENV)/onnx-export.log \
	  || { echo "note: could not make the offline embedder's ONNX model (see $(VENV)/onnx-export.log); it embeds with torch"; tail -n 3 $(VENV)/onnx-export.log; }
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
	rm -rf $(VENV) .incidentfox console/out console/.next console/node_modules

# The committed serveConfigV2 (cluster/base/serve-config.generated.yaml) from serve_apps/serve_config.yaml.
manifests: install
	$(BIN)/python -m cluster.render
