# One way to install, run, test, lint and regenerate stubs. Every target installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=
.DEFAULT_GOAL := install

.PHONY: install run test test-python lint lint-python protos protos-python check-protos \
	check-python-stubs check-docs docs release-contract fmt clean

# Each client library outside Python brings its own make fragment (clients/<lang>/client.mk).
# A fragment adds its targets to these lists, so `make test`, `make lint`, `make protos` and
# `make check-protos` cover every language without this file naming them.
# Go-built tools (protoc plugins, grpcurl) are installed here by the targets that need them.
TOOLS := $(CURDIR)/.tools/bin
PROTOC_GEN_DOC := $(TOOLS)/protoc-gen-doc
GRPCURL := $(TOOLS)/grpcurl
RELEASED_CONTRACT := protos/released/modelruntime-v1.binpb

EXTRA_TESTS :=
EXTRA_LINTS :=
EXTRA_PROTOS :=
EXTRA_CHECKS :=
-include $(wildcard clients/*/client.mk)

$(STAMP): pyproject.toml clients/python/pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e clients/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the server on 127.0.0.1:50051 (MODELRUNTIME_ADDRESS or --config to change it).
run: $(STAMP)
	$(BIN)/modelruntime serve $(ARGS)

## Run the whole test suite (Python, then every other client's).
test: test-python $(EXTRA_TESTS)

# grpcurl is there so the tests can call the service the way a person poking at it would.
test-python: $(STAMP) $(GRPCURL)
	$(BIN)/python -m pytest $(ARGS)

$(GRPCURL):
	GOBIN=$(TOOLS) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3

## The performance benchmark (bench/run.py, docs/performance.md): about 15 minutes on 2 cores;
## `make bench BENCH_ARGS=--quick` takes about a minute. Not part of `make test`.
BENCH_ARGS ?=
.PHONY: bench
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## buf lint on the contract, ruff (lint and format check), mypy --strict.
lint: lint-python $(EXTRA_LINTS)

lint-python: $(STAMP)
	$(BIN)/buf lint
	$(BIN)/buf breaking --against $(RELEASED_CONTRACT)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Regenerate the stubs of every client from protos/.
protos: protos-python $(EXTRA_PROTOS)

protos-python: $(STAMP)
	PYTHON=$(CURDIR)/$(BIN)/python tools/gen_protos.sh

## Fail when any committed stubs differ from what protos/ generates.
check-protos: check-python-stubs check-docs $(EXTRA_CHECKS)

check-python-stubs: $(STAMP)
	@tmp=$$(mktemp -d) && PYTHON=$(CURDIR)/$(BIN)/python tools/gen_protos.sh $$tmp && \
	  if diff -r -q -x '__init__.py' -x 'py.typed' -x '__pycache__' $$tmp/modelruntime/v1 clients/python/src/modelruntime/v1; then \
	    echo "stubs are up to date"; rm -rf $$tmp; \
	  else echo "stubs differ from protos/: run 'make protos' and commit" >&2; rm -rf $$tmp; exit 1; fi

## The Markdown reference of every RPC, message, field and error reason, from the proto comments.
docs: $(STAMP) $(PROTOC_GEN_DOC)
	$(BIN)/buf generate --template docs/buf.gen.yaml

check-docs: $(STAMP) $(PROTOC_GEN_DOC)
	@tmp=$$(mktemp -d) && $(BIN)/buf generate --template docs/buf.gen.yaml -o $$tmp && \
	  if diff -q $$tmp/docs/reference.md docs/reference.md >/dev/null; then \
	    echo "docs/reference.md is up to date"; rm -rf $$tmp; \
	  else echo "docs/reference.md differs from protos/: run 'make docs' and commit" >&2; \
	    rm -rf $$tmp; exit 1; fi

$(PROTOC_GEN_DOC):
	GOBIN=$(TOOLS) go install github.com/pseudomuto/protoc-gen-doc/cmd/protoc-gen-doc@v1.5.1

## Record the contract as released: `make lint` then fails on any breaking change against it.
release-contract: $(STAMP)
	$(BIN)/buf build -o $(RELEASED_CONTRACT)

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache \
	  clients/typescript/node_modules clients/typescript/dist clients/go/.tools
