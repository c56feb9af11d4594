# Two entry points (see README): `make run` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CORPUS ?= data/synthetic
VIDEOS ?= 48

.PHONY: install run test notebooks clean distclean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (glscl-lite)"
	touch $@

# Main job on the embedded default: synthetic corpus, then every notebook headlessly into runs/notebooks/.
run: install
	HF_HUB_OFFLINE=1 $(BIN)/glscl-lite synth --out $(CORPUS) --videos $(VIDEOS)
	HF_HUB_OFFLINE=1 $(BIN)/glscl-lite notebooks --out runs/notebooks --smoke

# Whole test suite (unit tests + papermill runs of every notebook). -v prints each test's name as it
# starts (the slow ones run for minutes); the 15 slowest are listed at the end.
test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -v --durations=15

# What `make run` and `make test` wrote: run folders and executed notebooks (runs/), the synthetic
# corpus and its frame cache ($(CORPUS)), pytest's cache. Never the venv, downloaded data/msrvtt or docs/.
clean:
	rm -rf runs $(CORPUS) .pytest_cache

# clean + the virtual environment (~6 GB) and the editable install's metadata: the next make reinstalls.
distclean: clean
	rm -rf $(VENV) *.egg-info
