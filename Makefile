# skipgraph: `make demo` runs the main job on an embedded default, `make test` runs the tests.
GO      ?= go
BIN     := bin/skipgraph
PKGS    := ./...

.PHONY: all setup setup-cuda build test vet demo bench bench-cuda fuzz clean fixtures

all: build

## setup: fetch ONNX Runtime 1.30.0 (from the npm package onnxruntime-node, sha256-checked, cached
## under ~/.cache/skipgraph) and the Go modules.
setup:
	@bash scripts/fetch-ort.sh >/dev/null
	@$(GO) mod download

## setup-cuda: put the CUDA provider libraries of the same ONNX Runtime release beside the cached
## core library (sha256-checked; from $$SKIPGRAPH_CUDA_PROVIDER_DIR or $$SKIPGRAPH_CUDA_ARCHIVE, else
## downloads the release archive). See docs/cuda.md.
setup-cuda: build
	./$(BIN) setup --cuda $(if $(SKIPGRAPH_CUDA_PROVIDER_DIR)$(SKIPGRAPH_CUDA_ARCHIVE),,--download)

build: setup
	$(GO) build -o $(BIN) ./cmd/skipgraph

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet $(PKGS)

## test: vet and run every test (needs the setup step).
test: setup vet
	$(GO) test -count=1 -timeout 30m $(PKGS)

## fixtures: rewrite the PyTorch reference fixture in testdata/clip-hf-tiny (python3-torch, python3-onnx).
fixtures:
	/usr/bin/python3 testdata/clip-hf-tiny/gen.py

## demo: make a tiny CLIP and an image data set, convert with LSkip+CSkip, train, evaluate, export.
demo: build
	./$(BIN) demo -o demo-out

## bench: run the benchmark suite and rewrite BENCHMARKS.md.
bench: build
	bash bench/run.sh

## bench-cuda: on a machine with an NVIDIA GPU: CUDA checks and the ViT-B/16 step benchmark
## against PyTorch CUDA (bench/cuda.sh; at most 8 minutes).
bench-cuda: build
	bash bench/cuda.sh

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 3m ./graph/onnxio

clean:
	rm -rf bin demo-out
