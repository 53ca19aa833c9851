# The Go client's targets, included by the root Makefile (which defines BIN and STAMP first and
# keeps `install` as the default goal). Run them from the repository root:
#   make test-go         go test against the real server (installs .venv for it)
#   make lint-go         go vet, gofmt and go mod tidy checks
#   make protos-go       regenerate clients/go/modelruntime/v1 with buf and the pinned plugins
#   make check-go-stubs  fail when the committed stubs differ from what protos/ generates
# Every target installs what it needs: the Python venv through $(STAMP), the protoc plugins
# with `go install` into clients/go/.tools/bin (gitignored). Needs Go on PATH ($(GO)).

GO ?= go
GO_DIR := clients/go
GO_TOOLS := $(GO_DIR)/.tools/bin
GO_STUBS := $(GO_DIR)/modelruntime/v1
# protoc-gen-go comes from the google.golang.org/protobuf version in go.mod, so the generator
# and the runtime the stubs run on never drift apart; protoc-gen-go-grpc is its own module.
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GO_PLUGINS := $(GO_TOOLS)/protoc-gen-go $(GO_TOOLS)/protoc-gen-go-grpc
GO_TEST_FLAGS ?= -count=1

EXTRA_TESTS += test-go
EXTRA_LINTS += lint-go
EXTRA_PROTOS += protos-go
EXTRA_CHECKS += check-go-stubs

.PHONY: test-go lint-go protos-go check-go-stubs go-available

go-available:
	@command -v $(GO) >/dev/null || { echo "the Go client's targets need Go (https://go.dev/dl/) on PATH" >&2; exit 1; }

## Go client: go test against the real server, which the tests start on a free loopback port.
test-go: $(STAMP) go-available
	cd $(GO_DIR) && MODELRUNTIME_BIN=$(CURDIR)/$(BIN)/modelruntime $(GO) test $(GO_TEST_FLAGS) ./...

## Go client: go vet, gofmt, and go.mod/go.sum tidy.
lint-go: go-available
	cd $(GO_DIR) && $(GO) vet ./...
	@cd $(GO_DIR) && unformatted=$$(gofmt -l .) && if [ -n "$$unformatted" ]; then \
	  echo "gofmt would change these files (run 'gofmt -w clients/go'):" >&2; echo "$$unformatted" >&2; exit 1; fi
	@cd $(GO_DIR) && $(GO) mod tidy -diff >/dev/null || { \
	  echo "clients/go/go.mod or go.sum is not tidy: run 'cd clients/go && go mod tidy'" >&2; exit 1; }

$(GO_TOOLS)/protoc-gen-go: $(GO_DIR)/go.mod | go-available
	cd $(GO_DIR) && GOBIN=$(CURDIR)/$(GO_TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go

$(GO_TOOLS)/protoc-gen-go-grpc: $(GO_DIR)/client.mk | go-available
	GOBIN=$(CURDIR)/$(GO_TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

## Go client: regenerate the stubs from protos/.
protos-go: $(STAMP) $(GO_PLUGINS)
	rm -f $(GO_STUBS)/*.pb.go
	$(BIN)/buf generate --template $(GO_DIR)/buf.gen.yaml

## Go client: fail when the committed stubs differ from protos/.
check-go-stubs: $(STAMP) $(GO_PLUGINS)
	@tmp=$$(mktemp -d) && $(BIN)/buf generate --template $(GO_DIR)/buf.gen.yaml -o $$tmp && \
	  if diff -r $$tmp/$(GO_STUBS) $(GO_STUBS) >&2; then \
	    echo "Go stubs are up to date"; rm -rf $$tmp; \
	  else echo "Go stubs in $(GO_STUBS) differ from protos/: run 'make protos-go' and commit" >&2; \
	    rm -rf $$tmp; exit 1; fi
