# regionsync — build, lint and test.
#   make test       vet + staticcheck + unit tests (-race) + lab acceptance tests
#   make test-unit  vet + staticcheck + unit tests only
#   make test-lab   the acceptance tests against the real lab (brings it up)
#   make lab-up / lab-status / lab-down   the local multi-region lab
#   make loadtest   the load and benchmark programs (long; needs the lab)

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin
LAB         := deploy/lab/lab.sh
# Unit tests use the race detector; packages with lab-only tests need the lab tag.
UNIT_FLAGS  ?= -race -count=1 -timeout 15m
LAB_FLAGS   ?= -tags lab -p 1 -count=1 -timeout 40m -run '^TestLab'

.PHONY: all build test test-unit test-lab vet staticcheck fmt-check lab-up lab-status lab-down loadtest clean

all: build

build:
	$(GO) build -o $(BIN)/regionsync ./cmd/regionsync

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags lab ./...
	$(GO) vet -tags loadtest ./loadtests/...

staticcheck:
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags lab ./...
	$(GO) run $(STATICCHECK) -tags loadtest ./loadtests/...

test-unit: fmt-check vet staticcheck
	$(GO) test $(UNIT_FLAGS) ./...

test-lab:
	$(GO) test $(LAB_FLAGS) ./...

test: test-unit test-lab

lab-up:
	$(LAB) up

lab-status:
	$(LAB) status

lab-down:
	$(LAB) down

# Each loadtests/ program prints a Markdown table; see loadtests/README.md.
loadtest:
	$(GO) run ./loadtests/mirrorbench
	$(GO) test -tags loadtest -count=1 -run TestReadinessDrill -v -timeout 60m ./loadtests/readinessdrill
	$(GO) test -tags loadtest -count=1 -run TestAuditBench -v -timeout 30m ./loadtests/auditbench
	$(GO) test -tags loadtest -count=1 -run TestCassDiffBench -v -timeout 30m ./loadtests/cassdiffbench

clean:
	rm -rf $(BIN)
