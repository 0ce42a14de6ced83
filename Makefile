# govirtd — a libvirt-compatible virtualization daemon in Go.
#   make demo   start a daemon and drive it with virsh (installs what it needs)
#   make test   everything CI runs: unit tests, fuzz seeds and short fuzzing,
#               end-to-end tests with real virsh, python3-libvirt and QEMU
#   make fuzz   longer fuzzing (FUZZTIME per target, e.g. 60s or 1000000x)

GO       ?= go
FUZZTIME ?= 60s

.PHONY: all build deps demo test unit e2e fuzz-short fuzz generate vet clean bench

all: build

build:
	$(GO) build -o bin/govirtd ./cmd/govirtd

deps:
	scripts/deps.sh

demo: deps
	scripts/demo.sh

test: deps vet unit fuzz-short e2e

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

# Unit tests (with the race detector); fuzz targets run their seed corpora here.
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/compat)

fuzz-short:
	scripts/fuzz.sh 100000x

# The soak test runs on its own, verbose, so its figures (connections,
# calls, migrations, errors, goroutines, fds, RSS) are printed.
e2e:
	$(GO) test -count=1 -timeout 20m -skip TestSoak ./test/compat/...
	$(GO) test -count=1 -timeout 10m -v -run TestSoak ./test/compat/...

fuzz:
	scripts/fuzz.sh $(FUZZTIME)

# Regenerate the procedure tables from go-libvirt's sources.
generate:
	$(GO) generate ./rpc/ ./server/

clean:
	rm -rf bin test/guest/out

# govirtd vs a real libvirtd, side by side (bench/README.md); about 10 min.
# BENCHFLAGS, e.g. "-reps 5 -dur 3s" or "-no-libvirtd".
bench: deps
	$(GO) build -o bench/out/govirtd ./cmd/govirtd
	$(GO) build -o bench/out/bench ./bench
	bench/out/bench -govirtd bench/out/govirtd -out bench/out $(BENCHFLAGS)
	cp bench/out/latest.svg bench/latest.svg
