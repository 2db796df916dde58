# Two commands for a newcomer: `make run` (set up and serve the dev gateway) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEV    := var/dev
DEMO   := demo@c4f.example

.PHONY: run test lint venv clean bench

venv: $(VENV)/.installed

# requirements.lock pins every dependency to the versions CI tested (see the README to
# refresh it); a dependency not in it yet installs unpinned until the lock is refreshed.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $@

# Run again, the setup is reused: its demo password was shown once and is kept nowhere.
run: venv
	@if test -f $(DEV)/gateway.toml; then \
	  echo "Reusing the dev setup in $(DEV)/. The demo account's password was shown when it"; \
	  echo "was created; to set a new one:"; \
	  echo "  $(BIN)/c4f-gateway staff passwd $(DEMO) --config $(DEV)/gateway.toml"; \
	else $(BIN)/c4f-gateway init --dir $(DEV) --demo; fi
	@# A dev database from an earlier version: backed up next to it, then upgraded.
	$(BIN)/c4f-gateway upgrade --config $(DEV)/gateway.toml
	$(BIN)/c4f-gateway serve --config $(DEV)/gateway.toml

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/pytest

bench: venv
	$(BIN)/python bench/relay_throughput.py

clean:
	rm -rf $(VENV) var build *.egg-info
