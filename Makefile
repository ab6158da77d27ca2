# imgen: every target sets up first (cached; seconds when nothing changed).
SHELL := /bin/bash
WITH_ENV := scripts/with-env
PYTEST_ARGS ?=
# make demo DEMO_SCALE=demo: the committed tables' scale (22.5k float32 steps per training, 20+ min on 2 cores)
DEMO_SCALE ?= fast

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
	@$(WITH_ENV) imgen experiment block_grasp --scale $(DEMO_SCALE) --out runs/block_grasp_$(DEMO_SCALE)

lock:
	@V=$$(mktemp -d)/venv && python3 -m venv $$V && $$V/bin/pip install -q -r requirements/base.txt \
	  && $$V/bin/pip freeze | grep -viE '^(robomimic|pip|wheel)==' > requirements/lock.txt.new \
	  && echo "review requirements/lock.txt.new"

clean:
	rm -rf build install log .venv
