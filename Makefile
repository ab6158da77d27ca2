# imgen: every target sets up first (cached; seconds when nothing changed).
SHELL := /bin/bash
WITH_ENV := scripts/with-env
PYTEST_ARGS ?=

.PHONY: setup test test-graph lint bench demo lock clean

setup:
	@scripts/setup

test:
	@$(WITH_ENV) scripts/netns-run python -m pytest $(PYTEST_ARGS)

test-graph:
	@$(WITH_ENV) scripts/netns-run python -m pytest -m graph_timing $(PYTEST_ARGS)

lint:
	@$(WITH_ENV) ruff check src tests bench

bench:
	@$(WITH_ENV) scripts/netns-run python -m bench

demo:
	@$(WITH_ENV) imgen experiment block_grasp --scale demo --out runs/block_grasp_demo

lock:
	@V=$$(mktemp -d)/venv && python3 -m venv $$V && $$V/bin/pip install -q -r requirements/base.txt \
	  && $$V/bin/pip freeze | grep -viE '^(robomimic|pip|wheel)==' > requirements/lock.txt.new \
	  && echo "review requirements/lock.txt.new"

clean:
	rm -rf build install log .venv
