# pktdrop. Privileged targets (run, test, bench, vmtest) need root.
GO        ?= go
ARGS      ?= --proto icmp
FUZZTIME  ?= 5s
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/pktdrop/pktdrop/internal/cli.Version=$(VERSION)

.PHONY: image build run generate check-generate test unit fuzz bench soak vmtest k8stest deps clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o pktdrop ./cmd/pktdrop

# The README's first command: build, then watch (Ctrl-C to stop).
run: build
	./pktdrop watch $(ARGS)

deps:
	.ci/deps

# Regenerates gen/ from bpf/ (needs clang, llvm-strip; `GEN=1 .ci/deps`).
generate:
	cd gen && $(GO) generate ./...

# CI: the committed gen/ must be what bpf/ compiles to.
check-generate: generate
	@git diff --exit-code --stat -- gen/ || { echo "gen/ is stale: run 'make generate' and commit"; exit 1; }

# The README's test command: unit, golden, fuzz and privileged tests on
# this kernel. Privileged tests fail (not skip) when CI=true.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -p 1 ./...
	$(MAKE) fuzz

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./internal/event
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./internal/filter
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./internal/filterexpr
	$(GO) test -run '^$$' -fuzz FuzzJSON -fuzztime $(FUZZTIME) ./internal/output

bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./internal/event ./internal/output
	$(GO) run ./cmd/pktdrop-bench -pktdrop ./pktdrop

soak: deps build
	$(GO) run ./cmd/pktdrop-bench -pktdrop ./pktdrop -soak 10m

vmtest:
	./vmtest.sh

# The container image (Containerfile): FROM scratch, so nothing is pulled.
# PODMAN_GLOBAL passes podman's global flags (tests use their own storage).
IMAGE         ?= localhost/pktdrop:$(VERSION)
PODMAN_GLOBAL ?=
image:
	mkdir -p .cache/image
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS) -s -w" -o .cache/image/pktdrop ./cmd/pktdrop
	podman $(PODMAN_GLOBAL) build -f Containerfile -t $(IMAGE) .cache/image

# pktdrop on a real single-node Kubernetes 1.32 (built once into .cache/k8s).
k8stest:
	./k8stest.sh

clean:
	rm -f pktdrop
