# The TypeScript/Node client (clients/typescript), included by the root Makefile. Its targets
# join `make test`, `make lint`, `make protos` and `make check-protos` through the EXTRA_* lists.
#
# Each target installs what it needs: the Python venv through $(STAMP) (the tests start the real
# server, and buf generates the stubs), node_modules through `npm ci` when it is missing or older
# than package-lock.json. Node.js 20+ and npm are needed; only test-ts skips (exit 0, with the
# reason) where Node.js is absent.

TS_DIR := clients/typescript
TS_BIN := $(TS_DIR)/node_modules/.bin
TS_MODULES := $(TS_DIR)/node_modules/.installed-stamp
TS_NODE := $(shell command -v node 2>/dev/null)

.PHONY: test-ts lint-ts protos-ts check-ts-stubs build-ts ts-node

EXTRA_TESTS += test-ts
EXTRA_LINTS += lint-ts
EXTRA_PROTOS += protos-ts
EXTRA_CHECKS += check-ts-stubs

# Node.js 20+ and npm, or a failure that says so.
ts-node:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || \
	  { echo "the TypeScript client needs Node.js 20+ and npm, and they are not installed" >&2; exit 1; }
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || \
	  { echo "the TypeScript client needs Node.js 20 or newer, not $$(node --version)" >&2; exit 1; }

$(TS_MODULES): $(TS_DIR)/package-lock.json $(TS_DIR)/package.json | ts-node
	cd $(TS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Compile the TypeScript client, its tests and examples to clients/typescript/dist.
build-ts: ts-node $(TS_MODULES)
	rm -rf $(TS_DIR)/dist
	$(TS_BIN)/tsc -p $(TS_DIR)

## The TypeScript client's tests, against the real server (skipped only where Node.js is absent).
ifeq ($(TS_NODE),)
test-ts:
	@echo "test-ts: skipped: Node.js is not installed (the TypeScript client needs Node.js 20+)"
else
test-ts: $(STAMP) build-ts
	cd $(TS_DIR) && MODELRUNTIME_REPO=$(CURDIR) MODELRUNTIME_SERVER=$(CURDIR)/$(BIN)/modelruntime \
	  node --test dist/test/*.test.js
endif

## Type-check (tsc --noEmit, strict) and format-check (prettier) the TypeScript client.
lint-ts: ts-node $(TS_MODULES)
	$(TS_BIN)/tsc --noEmit -p $(TS_DIR)
	cd $(TS_DIR) && node_modules/.bin/prettier --check --log-level warn . && echo "prettier: formatted"

## Regenerate the TypeScript stubs (clients/typescript/src/gen) from protos/ and google/rpc.
protos-ts: ts-node $(STAMP) $(TS_MODULES)
	$(BIN)/buf generate --template $(TS_DIR)/buf.gen.yaml

## Fail when the committed TypeScript stubs differ from what the protos generate.
check-ts-stubs: ts-node $(STAMP) $(TS_MODULES)
	@tmp=$$(mktemp -d) && $(BIN)/buf generate --template $(TS_DIR)/buf.gen.yaml -o $$tmp && \
	  if diff -r -q $$tmp/$(TS_DIR)/src/gen $(TS_DIR)/src/gen; then \
	    echo "TypeScript stubs are up to date"; rm -rf $$tmp; \
	  else echo "TypeScript stubs differ from protos/: run 'make protos-ts' and commit $(TS_DIR)/src/gen" >&2; \
	    rm -rf $$tmp; exit 1; fi
