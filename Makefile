# zae-limiter-go: build, test and local-stack entry points. `make help` lists them.

SHELL       := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
NPM      ?= npm
PYTHON   ?= python3
MODULE   := github.com/zeroae/zae-limiter-go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X $(MODULE)/cli.Version=$(VERSION)

# NAME: stack name for local-up/local-down. PORT: port for local-up
# (empty: 8000, or a free port when 8000 is taken). FUZZTIME: per fuzz target.
NAME     ?= limiter
PORT     ?=
FUZZTIME ?= 20s
BENCH    ?= .
BENCH_REQUESTS ?= 3000
BENCH_WARMUP   ?= 1000

# ZAEL_REQUIRE_DYNAMODB=1 in the environment (as .ci/run sets it) turns every
# "no DynamoDB" test skip into a failure, and a missing java or npm in
# `make tools` into an error. The tests read it from the environment.
REQUIRED := $(filter 1 t T true TRUE True,$(ZAEL_REQUIRE_DYNAMODB))

# Go files outside tools/node_modules and .git.
FIND_GO := find . \( -path ./tools/node_modules -o -path ./.git \) -prune -o -name '*.go' -print0

TOOLS_STAMP := tools/node_modules/.package-lock.json
# The local stack's S3 server, pinned (shared/localstack/s3local pins the same).
VERSITYGW    := github.com/versity/versitygw/cmd/versitygw@v1.8.0
VERSITYGW_BIN := tools/bin/versitygw

.PHONY: help
help: ## Show this help
	@echo "Usage: make <target> [VAR=value]"
	@echo
	@grep -hE '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-13s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: NAME=$(NAME) PORT=$(PORT) FUZZTIME=$(FUZZTIME) BENCH=$(BENCH)"
	@echo "Environment: ZAEL_REQUIRE_DYNAMODB=1 makes tests fail (not skip) without DynamoDB;"
	@echo "             AWS_ENDPOINT_URL_DYNAMODB=URL makes tests use that DynamoDB instead of their own."

.PHONY: tools
tools: $(TOOLS_STAMP) java $(VERSITYGW_BIN) ## Install local tools: DynamoDB Local (npm ci in tools/), versitygw (go install into tools/bin), a JRE when missing (root + apt only)

# versitygw for the local stack's S3: built once (a minute or two on two
# cores), then kept in tools/bin.
$(VERSITYGW_BIN):
	@echo "go install $(VERSITYGW) into tools/bin (the local stack's S3 server; once)"
	GOBIN=$(CURDIR)/tools/bin CGO_ENABLED=0 GOFLAGS= $(GO) install -trimpath $(VERSITYGW)

# npm ci only when the lockfile changed since the last install.
$(TOOLS_STAMP): tools/package.json tools/package-lock.json
	@if ! command -v $(NPM) >/dev/null 2>&1; then \
		msg="npm is required to install DynamoDB Local (tools/package.json); install Node.js and npm"; \
		if [ -n "$(REQUIRED)" ]; then echo "error: $$msg" >&2; exit 1; fi; \
		echo "warning: $$msg; DynamoDB tests will be skipped" >&2; \
	else \
		cd tools && $(NPM) ci --no-audit --no-fund; \
	fi

.PHONY: java
java:
	@if command -v java >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "java not found: installing default-jre-headless with apt-get" >&2; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update && apt-get install -y --no-install-recommends default-jre-headless; \
		command -v java >/dev/null 2>&1 || { echo "error: java is still not on PATH after installing default-jre-headless" >&2; exit 1; }; \
	else \
		msg="java is required to run DynamoDB Local; install a JRE (e.g. sudo apt-get install default-jre-headless)"; \
		if [ -n "$(REQUIRED)" ]; then echo "error: $$msg" >&2; exit 1; fi; \
		echo "warning: $$msg; DynamoDB tests will be skipped" >&2; \
	fi

# The release CLI embeds every function's deployment zip (deploy and
# lambda-export need no Go toolchain then): lambda-export of a plain build
# writes them into FUNCTION_ZIPS, then -tags embedfunctions embeds them.
FUNCTION_ZIPS := cmd/zae-limiter/functions

.PHONY: build
build: ## Build every package and the CLI into bin/zae-limiter, every function's code (linux/arm64 zips) embedded
	$(GO) build ./...
	@rm -rf $(FUNCTION_ZIPS) && mkdir -p $(FUNCTION_ZIPS)
	@for fn in $(LAMBDA_FNS); do \
		echo "zae-limiter lambda-export --function $$fn --output $(FUNCTION_ZIPS)/$$fn.zip"; \
		$(GO) run ./cmd/zae-limiter lambda-export --function $$fn --output $(FUNCTION_ZIPS)/$$fn.zip; \
	done
	$(GO) build -trimpath -tags embedfunctions -ldflags "$(LDFLAGS)" -o bin/zae-limiter ./cmd/zae-limiter
	@ls -l bin/zae-limiter

.PHONY: fmt
fmt: ## Format the Go code (gofmt -w)
	$(FIND_GO) | xargs -0 gofmt -w

.PHONY: lint
lint: ## gofmt check, go.mod tidy (aws-lambda-go kept at v1.55.1 or later), go vet, cfn-lint template.yaml (when installed)
	@files=$$($(FIND_GO) | xargs -0 gofmt -l); \
	if [ -n "$$files" ]; then echo "gofmt needed on:" >&2; echo "$$files" >&2; exit 1; fi
	@if ! $(GO) mod tidy -diff >/dev/null 2>&1; then \
		echo "go.mod/go.sum are not tidy; run go mod tidy:" >&2; $(GO) mod tidy -diff >&2; exit 1; fi
	@v=$$($(GO) list -m -f '{{.Version}}' github.com/aws/aws-lambda-go); \
	if [ "$$(printf '%s\n' v1.55.1 "$$v" | sort -V | head -n1)" != v1.55.1 ]; then \
		echo "github.com/aws/aws-lambda-go is $$v: DECISIONS §1 pins v1.55.1 or later (tidy can downgrade it through aws-xray-sdk-go)" >&2; exit 1; fi
	$(GO) vet ./...
	@$(MAKE) --no-print-directory cfn-lint

.PHONY: cfn-lint
cfn-lint:
	@if [ ! -f template.yaml ]; then echo "cfn-lint: no template.yaml yet, skipped"; \
	elif ! command -v cfn-lint >/dev/null 2>&1; then echo "cfn-lint: not installed, skipped"; \
	else echo "cfn-lint template.yaml"; cfn-lint template.yaml; fi

# cfn-lint skips some checks (e.g. unknown IAM actions) on a SAM template, so
# validate also lints the translated one.
.PHONY: validate
validate: cfn-lint ## Check template.yaml: cfn-lint, offline SAM translation (scripts/sam-translate.py), cfn-lint of the result
	@if ! $(PYTHON) -c 'import samtranslator, cfnlint' >/dev/null 2>&1; then \
		echo "sam-translate: $(PYTHON) cannot import samtranslator and cfnlint, skipped"; \
	else \
		echo "$(PYTHON) scripts/sam-translate.py template.yaml"; \
		out=$$($(PYTHON) scripts/sam-translate.py template.yaml); \
		if command -v cfn-lint >/dev/null 2>&1; then \
			echo "cfn-lint <translated template>"; \
			printf '%s\n' "$$out" | cfn-lint; \
		fi; \
	fi

# deploy and cfn-template use the plain CloudFormation form of template.yaml,
# translated here (the CLI needs no Python) and embedded in shared/stack;
# tests/stack_template_test.go fails when it is stale.
CFN_TEMPLATE := shared/stack/template.cfn.json

.PHONY: template
template: ## Regenerate the embedded plain CloudFormation template (shared/stack/template.cfn.json) from template.yaml
	@$(PYTHON) -c 'import samtranslator, cfnlint' 2>/dev/null || { echo "template: $(PYTHON) cannot import samtranslator and cfnlint" >&2; exit 1; }
	$(PYTHON) scripts/sam-translate.py template.yaml > $(CFN_TEMPLATE).tmp
	mv $(CFN_TEMPLATE).tmp $(CFN_TEMPLATE)

.PHONY: test
test: tools lint ## Lint, then go test -race -count=1 ./... (each test process starts its own DynamoDB Local)
	$(GO) test -race -count=1 -timeout 25m ./...

.PHONY: test-deploy
test-deploy: ## Time a full deploy on moto_server with the real functions (built for linux/arm64): create, no changes, update, status, delete
	ZAEL_DEPLOY_TIMING=1 $(GO) test -count=1 -v -run '^TestDeployTiming$$' ./cli | grep -E '^\s+stack_db_test.go|^(ok|FAIL|---)'

.PHONY: test-local
test-local: tools ## The slow local stack tests: the whole stack through the CLI, make demo, the README's walkthrough in bash (ZAEL_TEST_LOCAL=1)
	ZAEL_TEST_LOCAL=1 $(GO) test -race -count=1 ./shared/localstack/... ./shared/proc/...
	ZAEL_TEST_LOCAL=1 $(GO) test -race -count=1 -run 'Local' ./cli/ ./tests/

.PHONY: bench
bench: tools ## Benchmarks: go test -bench of shared/, then `zae-limiter bench` on a fresh local stack (BENCH_REQUESTS, results in dist/bench/)
	@mkdir -p dist/bench
	$(GO) test -run='^$$' -bench='$(BENCH)' -benchmem ./shared/...
	@# in-process vs serve vs the real bootstrap under the runner, alternated
	$(GO) test -run='^$$' -bench=AcquirePaths -benchtime=$(BENCH_REQUESTS)x ./functions/acquire | tee dist/bench/paths.txt
	@mkdir -p bin dist/bench
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/zae-limiter ./cmd/zae-limiter
	@# One fresh DynamoDB Local per run: its latency grows with the stream
	@# records it holds, so every run starts from the same state. The bench
	@# talks to DynamoDB Local directly, not through the one endpoint.
	@for run in "c1 --concurrency 1 --baseline" "c16 --concurrency 16 --baseline" \
	            "alone-c1 --concurrency 1" "alone-c16 --concurrency 16" \
	            "direct-c1 --concurrency 1 --baseline-only" "direct-c16 --concurrency 16 --baseline-only" \
	            "cascade-c1 --concurrency 1 --cascade" "cascade-c16 --concurrency 16 --cascade"; do \
		set -- $$run; name=$$1; shift; \
		trap 'bin/zae-limiter local down -n bench >/dev/null' EXIT; \
		bin/zae-limiter local up -n bench >/dev/null 2>&1; \
		endpoint=$$(bin/zae-limiter local status -n bench -o json | $(PYTHON) -c 'import json,sys; print("http://127.0.0.1:%d" % [p for p in json.load(sys.stdin)["parts"] if p["name"] == "dynamodb"][0]["port"])'); \
		echo "== bench $$name: $$*, $(BENCH_REQUESTS) acquires" >&2; \
		bin/zae-limiter bench -n bench --endpoint-url "$$endpoint" --requests $(BENCH_REQUESTS) --warmup $(BENCH_WARMUP) "$$@" -o json > dist/bench/$$name.json; \
		bin/zae-limiter local down -n bench >/dev/null; trap - EXIT; \
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("   first op: %d done, %d ok, p50 %.3f ms, p99 %.3f ms, %.0f/s, DynamoDB requests per acquire %s" % (d["acquires"], d["admitted"], d["p50_ms"], d["p99_ms"], d["acquires_per_second"], d.get("ddb_requests_per_acquire", "-"))); [print("   %-26s p50 %.3f ms p99 %.3f ms %.0f/s" % (b["name"], b["p50_ms"], b["p99_ms"], b["per_second"])) for b in d.get("baselines") or []]' dist/bench/$$name.json; \
	done

# The engine's model-based test: `make test` runs two seeds; this runs many
# more, longer (MODEL_SEED picks the first seed, printed for each run).
MODEL_SEEDS  ?= 150
MODEL_ROUNDS ?= 300
.PHONY: model
model: tools ## The long form of the engine's model-based test (MODEL_SEEDS=150 MODEL_ROUNDS=300: half an hour or more)
	ZAEL_REQUIRE_DYNAMODB=1 MODEL_SEEDS=$(MODEL_SEEDS) MODEL_ROUNDS=$(MODEL_ROUNDS) \
		$(GO) test -count=1 -timeout 4h -run '^TestModel$$' -v ./shared/limiter

.PHONY: fuzz
fuzz: ## Run each fuzz target in shared/bucket for FUZZTIME (default 20s)
	@targets=$$($(GO) test -list '^Fuzz' ./shared/bucket | grep '^Fuzz' || true); \
	if [ -z "$$targets" ]; then echo "no fuzz targets in shared/bucket"; exit 0; fi; \
	for f in $$targets; do \
		echo "== $$f ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(FUZZTIME) ./shared/bucket; \
	done

.PHONY: local-up
local-up: tools ## Start the local stack (one endpoint; DynamoDB Local, S3, every function): prints the endpoint (NAME, PORT)
	@mkdir -p bin
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/zae-limiter ./cmd/zae-limiter
	bin/zae-limiter local up -n $(NAME) $(if $(PORT),--port $(PORT))

.PHONY: local-down
local-down: ## Stop the local stack started by local-up (NAME)
	$(GO) run ./cmd/zae-limiter local down -n $(NAME)

.PHONY: local-status
local-status: ## Show the local stack (NAME)
	$(GO) run ./cmd/zae-limiter local status -n $(NAME)

.PHONY: local-logs
local-logs: ## Follow the functions' logs of the local stack (NAME, FN)
	$(GO) run ./cmd/zae-limiter local logs -n $(NAME) $(if $(filter command line,$(origin FN)),$(FN)) -f

.PHONY: demo
demo: tools ## Demo on a local stack named demo, stopped afterwards: limits from a manifest, ~20s of LLM-style load through the acquire Function URL, usage, the audit archive (DEMO_ARGS="--duration 30s --seed 7")
	@mkdir -p bin
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/zae-limiter ./cmd/zae-limiter
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/zael-demo ./cmd/zael-demo
	@start=$$SECONDS; \
	trap 'bin/zae-limiter local down -n demo; echo "make demo: $$((SECONDS - start)) s from local up to local down" >&2' EXIT; \
	trap 'exit 130' INT TERM; \
	endpoint=$$(bin/zae-limiter local up -n demo); \
	bin/zael-demo --endpoint-url "$$endpoint" -n demo --manifest cmd/zael-demo/limits.yaml $(DEMO_ARGS)

# Lambda functions: every directory of functions/. FN and EVENT pick what
# `make invoke` runs; an EVENT with {{PLACEHOLDERS}} (adjust, release) first
# runs INVOKE_PRIME (the admitted acquire) and is filled from its response.
# INVOKE_UP adds flags to the `local up` of the invoke stack (e.g.
# --parameter K=V).
LAMBDA_FNS    := $(notdir $(wildcard functions/*))
LAMBDA_FLAGS  := -tags lambda.norpc -trimpath -ldflags '-s -w'
FN            ?= acquire
EVENT         ?= events/$(FN)/admitted.json
INVOKE_PRIME  ?= events/$(FN)/admitted.json
INVOKE_UP     ?=

.PHONY: lambda
lambda: ## Build each function's deployable bootstrap: dist/<fn>/bootstrap (linux/arm64, stripped, lambda.norpc)
	@for fn in $(LAMBDA_FNS); do \
		echo "GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o dist/$$fn/bootstrap ./functions/$$fn"; \
		GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o dist/$$fn/bootstrap ./functions/$$fn; \
		ls -l dist/$$fn/bootstrap; \
	done

.PHONY: sam-build
# SAM's Go builder (Metadata BuildMethod go1.x) runs `go build` in each
# CodeUri with GOOS/GOARCH from the template and takes its flags from the
# environment: GOFLAGS (STYLE 4.8) and CGO_ENABLED=0 for a static binary.
# Native build only: no --use-container (the module root is above CodeUri).
sam-build: export GOFLAGS := -tags=lambda.norpc -trimpath "-ldflags=-s -w -X=main.version=$(VERSION)"
sam-build: export CGO_ENABLED := 0
sam-build: ## sam build with the Lambda GOFLAGS (-tags=lambda.norpc -trimpath, stripped): .aws-sam/build/
	@command -v sam >/dev/null 2>&1 || { echo "sam-build: the AWS SAM CLI (sam) is not on PATH" >&2; exit 1; }
	sam build

.PHONY: invoke
invoke: tools ## Run EVENT through FN's real bootstrap on the local stack named invoke, via its Lambda Invoke API (FN=acquire EVENT=events/acquire/admitted.json)
	@test -d functions/$(FN) || { echo "invoke: no function functions/$(FN) (FN=$(FN))" >&2; exit 2; }
	@test -f "$(EVENT)" || { echo "invoke: no event file $(EVENT) (EVENT=...)" >&2; exit 2; }
	@mkdir -p bin
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/zae-limiter ./cmd/zae-limiter
	@events=("$(EVENT)"); \
	if grep -q '{{[A-Za-z0-9_]*}}' "$(EVENT)"; then events=("$(INVOKE_PRIME)" "$(EVENT)"); fi; \
	args=(); for e in "$${events[@]}"; do args+=(-e "$$e"); done; \
	if bin/zae-limiter local status -n invoke -o json 2>/dev/null | grep -q '"running": *true'; then \
		echo "invoke: using the running local stack 'invoke' (its functions were built when it started)" >&2; \
	else \
		trap 'bin/zae-limiter local down -n invoke >/dev/null' EXIT; trap 'exit 130' INT TERM; \
		bin/zae-limiter local up -n invoke $(INVOKE_UP) >/dev/null; \
	fi; \
	bin/zae-limiter local invoke -n invoke $(FN) --pretty "$${args[@]}"

.PHONY: clean
clean: ## Remove build output (bin/, dist/)
	rm -rf bin dist
