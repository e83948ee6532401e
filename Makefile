# millinet: `make demo` and `make test` work on a fresh clone (setup runs first).
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
export PYTHONHASHSEED := 0

.PHONY: setup demo test bench lint clean

setup: $(STAMP)

# torch is pinned and installed first: a looser requirement could pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/millinet demo

test: setup lint
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: setup
	$(VENV)/bin/millinet bench all

# ruff also bans bare `import envs` / `agents` / `scheduler` / `experiments` (pyproject.toml)
lint: setup
	$(VENV)/bin/ruff check envs agents scheduler experiments tests
	$(VENV)/bin/ruff format --check envs agents scheduler experiments tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
