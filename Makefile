# The two commands of the README: `make run` (the main job) and `make test`.
# Both create or reuse the local virtual environment .venv from the exact pins.
VENV := .venv
PY := $(VENV)/bin/python
export MUJOCO_GL ?= egl

.PHONY: run test lint venv plan container-test

venv: $(VENV)/.pins-installed

# ProcGen's two packages declare numpy<2 (and older glfw, filelock, imageio-ffmpeg), which the pin file
# cannot satisfy, but run with its pins (envs/tests/test_procgen.py): installed after it, without their
# declared dependencies (their real ones are in the pin file). containers/agent.def installs the same.
NO_DEPS_PINS := procgen-mirror==0.10.7 gym3==0.3.3

# Re-installs whenever the pins change. torch goes first and alone: any other torch
# spec would pull a multi-GB CUDA build where a CPU wheel is wanted.
$(VENV)/.pins-installed: requirements.txt Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps $(NO_DEPS_PINS)
	touch $@

# The published reference scores are downloaded into resources/; a machine without network
# access that keeps a copy beside the checkout (../shared/reference) uses that copy instead.
REFERENCE_DIR ?= $(wildcard ../shared/reference)

run: venv
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH snakemake --cores all \
		$(if $(REFERENCE_DIR),--config "reference={local_dir: $(abspath $(REFERENCE_DIR))}")

test: venv
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m ruff check .
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest

# What a grid will cost before it starts: make plan CONFIG=config/paper.yaml [DEVICE=cuda] [PARALLEL=100]
CONFIG ?= config/config.yaml
PARALLEL ?= 1
plan: venv
	$(PY) -m pipelines.plan --configfile $(CONFIG) --parallel $(PARALLEL) $(if $(DEVICE),--device $(DEVICE))

lint: venv
	$(PY) -m ruff check .

# The agent image's root filesystem built from containers/agent.def without Apptainer (containers/rootfs.py),
# with its %test and the project's smoke tests run inside. Root only; see README, "Containers".
container-test: venv
	command -v debootstrap >/dev/null || { apt-get update -q && apt-get install -y -q debootstrap; }
	$(PY) -m pytest -m container -s --durations=0 tests/test_containers.py
