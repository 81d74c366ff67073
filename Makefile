# The two quick-start commands are `make run` and `make test`; both set themselves up.
# `make run DEMO="--units 10 --rate 20"` scales the demo district.
.PHONY: run test setup lint bench

run:
	@bash scripts/setup.sh --demo
	@HUB_LOG_JSON=false .venv/bin/sshub demo run $(DEMO)

test:
	@bash scripts/setup.sh
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/mypy
	@.venv/bin/pytest

setup:
	@bash scripts/setup.sh

lint:
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench:
	@bash scripts/setup.sh
	@for b in bench/*.py; do echo "== $$b"; .venv/bin/python $$b || exit 1; done
