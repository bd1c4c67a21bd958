# Familieportal. The two commands: `make run` (the demo) and `make test` (everything).
GO ?= go
export CGO_ENABLED := 1

.PHONY: run test test-deps vet build clean

## run: the demo on the embedded SQLite default at http://localhost:8080
run:
	$(GO) run ./cmd/portal demo

## test: vet, then every test with the race detector, browser tests included
# (test-deps installs Debian chromium and npm axe-core when they are missing),
# on SQLite and on a throwaway PostgreSQL server (.ci/with-postgres installs
# Debian's postgresql when it is missing, and exports PORTAL_TEST_POSTGRES).
PORTAL_CHROMIUM ?= /usr/bin/chromium
PORTAL_AXE ?= $(CURDIR)/.cache/node/node_modules/axe-core/axe.min.js
test: vet test-deps
	PORTAL_CHROMIUM=$(PORTAL_CHROMIUM) PORTAL_AXE=$(PORTAL_AXE) .ci/with-postgres $(GO) test -race -count=1 -timeout 20m ./...

test-deps:
	PORTAL_CHROMIUM=$(PORTAL_CHROMIUM) .ci/test-deps

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet ./...

build:
	$(GO) build -o bin/portal ./cmd/portal

## bench: the portal next to reference hubs under load, in one run (about 3 minutes
# on 2 cores once the dataset is cached; BENCH_FLAGS=--quick for about one minute).
.PHONY: bench
BENCH_FLAGS ?=
bench:
	$(GO) run ./cmd/portal-bench $(BENCH_FLAGS)

clean:
	rm -rf bin portal.db portal.db-wal portal.db-shm
