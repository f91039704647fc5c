# skipgraph: `make demo` runs the main job on an embedded default, `make test` runs the tests.
GO      ?= go
BIN     := bin/skipgraph
PKGS    := ./...

.PHONY: all setup build test vet demo bench fuzz clean

all: build

## setup: fetch ONNX Runtime 1.30.0 (from the npm package onnxruntime-node, sha256-checked, cached
## under ~/.cache/skipgraph) and the Go modules.
setup:
	@bash scripts/fetch-ort.sh >/dev/null
	@$(GO) mod download

build: setup
	$(GO) build -o $(BIN) ./cmd/skipgraph

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet $(PKGS)

## test: vet and run every test (needs the setup step; ../shared/fixtures is used when present).
test: setup vet
	$(GO) test -count=1 -timeout 30m $(PKGS)

## demo: make a tiny CLIP and an image data set, convert with LSkip+CSkip, train, evaluate, export.
demo: build
	./$(BIN) demo -o demo-out

## bench: run the benchmark suite and rewrite BENCHMARKS.md.
bench: build
	bash bench/run.sh

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 3m ./graph/onnxio

clean:
	rm -rf bin demo-out
