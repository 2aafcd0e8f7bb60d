# flowkey. `make demo` rotates a key on the local stack; `make test` runs every test.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BUILD     := .build
LDFLAGS   := -s -w
HOST_BIN  := $(BUILD)/host/rotator/bootstrap
ARM64_BIN := $(BUILD)/arm64/rotator/bootstrap
GO_SRC    := $(shell find functions internal -name '*.go' -not -name '*_test.go') go.mod go.sum

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(HOST_BIN): $(GO_SRC)
	CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='$(LDFLAGS)' -o $@ ./functions/rotator

$(ARM64_BIN): $(GO_SRC)
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='$(LDFLAGS)' -o $@ ./functions/rotator

.PHONY: build build-arm64
build: $(HOST_BIN) ## build the bootstrap for this machine (local stack)
build-arm64: $(ARM64_BIN) ## build the Lambda bootstrap (linux/arm64) that infra/ and template.yaml deploy

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l functions internal infra); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

.PHONY: test
test: lint ## every test: unit, emulator, integration (real bootstrap under the RIE) and infra
	$(GO) test -count=1 ./...

.PHONY: bench
bench: ## speed and memory benchmarks
	$(GO) test -run='^$$' -bench=. -benchmem ./internal/...
