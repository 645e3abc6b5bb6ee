# Two commands do all set-up on a fresh machine (Python and pip only):
#   make app    set up, then launch the dashboard on the built-in model
#   make test   set up, then run the whole test suite
# TORCH picks the torch wheel: the pinned CPU build by default, e.g. `make app TORCH=torch` for CUDA.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PORT ?= 8501
PY := $(VENV)/bin/python
STAMP := $(VENV)/.interp-installed

.PHONY: app test install benchmarks clean

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

app: $(STAMP)
	$(PY) -m streamlit run app/Home.py --server.headless true --server.port $(PORT) --browser.gatherUsageStats false

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest

benchmarks: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
