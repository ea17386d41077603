# make test: installs what the suites need (when it can) and runs every test with -race.
# make fuzz: runs every fuzz target for FUZZTIME (default 10s) each.
# make demo: records a synthetic three-party conference on the embedded defaults.
# make bench-load: the cost per recorded stream, side by side with a naive Pion receiver and
#   Janus (see BENCHMARKS.md); N=100,200 and LOAD_FLAGS (e.g. "-window 60s") choose the run.

GO ?= go
TEST_TIMEOUT ?= 40m

.PHONY: test deps vet unit bench bench-load fuzz demo build

test: deps vet
	PATH="$(CURDIR)/.tools/node_modules/.bin:$$PATH" $(GO) test -race -timeout $(TEST_TIMEOUT) ./...

deps:
	./scripts/test-deps.sh

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt: these files are not formatted (run gofmt -w):"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -short ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./media/... ./recorder/ ./storage/filestore

N ?= 100
LOAD_FLAGS ?=

bench-load: build
	$(GO) build -o bin/recorder-load ./cmd/recorder-load
	bin/recorder-load -recorder bin/recorder -pin -n $(N) $(LOAD_FLAGS)

fuzz:
	FUZZTIME=$${FUZZTIME:-10s} ./scripts/fuzz.sh

demo:
	$(GO) run ./cmd/recorder demo

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/recorder ./cmd/recorder
