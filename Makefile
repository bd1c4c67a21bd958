# Familieportal. The two commands: `make run` (the demo) and `make test` (everything).
GO ?= go
export CGO_ENABLED := 1

.PHONY: run test vet build clean

## run: the demo on the embedded SQLite default at http://localhost:8080
run:
	$(GO) run ./cmd/portal demo

## test: vet, then every test with the race detector
test: vet
	$(GO) test -race -count=1 ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet ./...

build:
	$(GO) build -o bin/portal ./cmd/portal

clean:
	rm -rf bin portal.db portal.db-wal portal.db-shm
