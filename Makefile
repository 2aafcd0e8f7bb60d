# flowkey. `make demo` rotates a key on the local stack; `make test` runs every test.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BUILD     := .build
LDFLAGS   := -s -w
# The same source gives the same bytes, so the asset hash (and the deployed
# code) only change when the code does: -trimpath drops the paths, and
# -buildvcs=false the revision and dirty flag Go stamps in a git checkout.
# infra/build_test.go builds twice from two commits and compares.
BUILDFLAGS := -tags lambda.norpc -trimpath -buildvcs=false -ldflags='$(LDFLAGS)'
HOST_BIN  := $(BUILD)/host/rotator/bootstrap
ARM64_BIN := $(BUILD)/arm64/rotator/bootstrap
HOST_ENDPOINT_BIN  := $(BUILD)/host/endpoint/bootstrap
ARM64_ENDPOINT_BIN := $(BUILD)/arm64/endpoint/bootstrap
GO_SRC    := $(shell find functions internal -name '*.go' -not -name '*_test.go') go.mod go.sum

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(HOST_BIN): $(GO_SRC)
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o $@ ./functions/rotator

$(ARM64_BIN): $(GO_SRC)
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o $@ ./functions/rotator

$(HOST_ENDPOINT_BIN): $(GO_SRC)
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o $@ ./functions/endpoint

$(ARM64_ENDPOINT_BIN): $(GO_SRC)
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o $@ ./functions/endpoint

.PHONY: build build-arm64
build: $(HOST_BIN) $(HOST_ENDPOINT_BIN) ## build the bootstraps (rotator, endpoint) for this machine (local stack)
build-arm64: $(ARM64_BIN) $(ARM64_ENDPOINT_BIN) ## build the Lambda bootstraps (linux/arm64) that infra/ and template.yaml deploy

# --- the local stack: make demo, make local-up, make local-down (no AWS account) ---
DEMO_BIN  := $(BUILD)/host/flowkey-demo
LOCAL_BIN := $(BUILD)/host/flowkey-local
LOCAL_DIR := .local

$(DEMO_BIN): $(GO_SRC)
	$(GO) build -o $@ ./internal/local/cmd/flowkey-demo

$(LOCAL_BIN): $(GO_SRC)
	$(GO) build -o $@ ./internal/local/cmd/flowkey-local

.PHONY: demo local-up local-down
demo: $(DEMO_BIN) ## rotate a key twice on the local stack, no AWS account (DEMO_FLAGS=-v prints the function's logs)
	@$(DEMO_BIN) $(DEMO_FLAGS)

local-up: $(LOCAL_BIN) ## leave the local stack running in the background and print its endpoints and commands
	@$(LOCAL_BIN) -state $(LOCAL_DIR) -detach

local-down: $(LOCAL_BIN) ## stop the stack make local-up started and wait until it has exited
	@$(LOCAL_BIN) -state $(LOCAL_DIR) -down

# --- operator commands: make status | rotate-now | resync [DRY_RUN=1] | set-config CONFIG='{...}' [DRY_RUN=1]
# | enroll TENANT=<id> CONFIG='{...}' [DRY_RUN=1] | unenroll TENANT=<id> [DRY_RUN=1] ---
# On AWS they invoke FUNCTION (the RotatorFunctionName output) with the AWS CLI;
# LOCAL=1 sends them to the stack that make local-up started.
FUNCTION ?=
CONFIG   ?=
rotate-now: PAYLOAD := {"command":"rotate"}
status:     PAYLOAD := {"command":"status"}
# Named first: the commas in the JSON would split $(if)'s arguments.
RESYNC_DRY_RUN := {"command":"resync","dry_run":true}
RESYNC_REPAIR  := {"command":"resync"}
resync:     PAYLOAD := $(if $(DRY_RUN),$(RESYNC_DRY_RUN),$(RESYNC_REPAIR))
SET_CONFIG_DRY_RUN := {"command":"set-config","dry_run":true,"config":$(CONFIG)}
SET_CONFIG_WRITE   := {"command":"set-config","config":$(CONFIG)}
set-config: PAYLOAD = $(if $(DRY_RUN),$(SET_CONFIG_DRY_RUN),$(SET_CONFIG_WRITE))
# A fleet's (FLEET_NAME set): TENANT=<id>, and enroll's CONFIG.
TENANT ?=
ENROLL_DRY_RUN   := {"command":"enroll","tenant":"$(TENANT)","dry_run":true,"config":$(CONFIG)}
ENROLL_WRITE     := {"command":"enroll","tenant":"$(TENANT)","config":$(CONFIG)}
enroll:     PAYLOAD = $(if $(DRY_RUN),$(ENROLL_DRY_RUN),$(ENROLL_WRITE))
UNENROLL_DRY_RUN := {"command":"unenroll","tenant":"$(TENANT)","dry_run":true}
UNENROLL_WRITE   := {"command":"unenroll","tenant":"$(TENANT)"}
unenroll:   PAYLOAD = $(if $(DRY_RUN),$(UNENROLL_DRY_RUN),$(UNENROLL_WRITE))
.PHONY: rotate-now status resync set-config enroll unenroll
rotate-now: ## start an emergency rotation now, or resume the incomplete one (returns at once)
status: ## per phone number: the key Meta holds, which secret version it matches, drift
resync: ## re-upload AWSCURRENT to drifted numbers and verify them (DRY_RUN=1: only report)
set-config: ## CONFIG='{"phone_number_ids":[...]}': new configuration, same key (DRY_RUN=1: only report)
enroll: ## fleet: TENANT=<id> CONFIG='{"waba_id":"<id>",...}': add a tenant and turn its rotation on (DRY_RUN=1)
unenroll: ## fleet: TENANT=<id>: turn a tenant's rotation off, keeping every key (DRY_RUN=1)
rotate-now status resync set-config enroll unenroll:
	@mkdir -p $(BUILD)
	@if { [ '$@' = set-config ] || [ '$@' = enroll ]; } && [ -z '$(CONFIG)' ]; then \
	  echo "set CONFIG='{\"phone_number_ids\":[\"<id>\",...]}' (or '{\"waba_id\":\"<id>\"}'): the new config object of the secret" >&2; exit 2; \
	fi
	@if { [ '$@' = enroll ] || [ '$@' = unenroll ]; } && [ -z '$(TENANT)' ]; then \
	  echo "set TENANT=<id>: the tenant's ID (lower-case letters, digits and hyphens)" >&2; exit 2; \
	fi
	@if [ -n "$(LOCAL)" ]; then \
	  url=$$(sed -n 's/.*"invoke_url": *"\([^"]*\)".*/\1/p' $(LOCAL_DIR)/stack.json 2>/dev/null); \
	  [ -n "$$url" ] || { echo "no local stack: run make local-up first" >&2; exit 1; }; \
	  curl -sS --fail-with-body -X POST "$$url" -d '$(PAYLOAD)' > $(BUILD)/invoke-out.json; \
	else \
	  [ -n "$(FUNCTION)" ] || { echo "set FUNCTION=<the stack's RotatorFunctionName output>, or LOCAL=1 for the local stack" >&2; exit 2; }; \
	  aws lambda invoke --function-name "$(FUNCTION)" --cli-binary-format raw-in-base64-out \
	    --payload '$(PAYLOAD)' $(BUILD)/invoke-out.json >&2; \
	fi; \
	cat $(BUILD)/invoke-out.json; echo; \
	! grep -q '"errorMessage"' $(BUILD)/invoke-out.json

.PHONY: lint
# boundary: what ships (functions/, infra/ and all they import) never imports
# internal/fake or internal/local; a violation prints its import chain.
lint: ## gofmt, go vet, staticcheck, go mod tidy -diff, and the import boundary of what ships
	@out=$$(gofmt -l $$(find functions internal infra -name '*.go' -not -path '*/node_modules/*')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) mod tidy -diff
	$(GO) run ./internal/local/cmd/boundary ./functions/... ./infra

.PHONY: test
test: lint ## every test: unit, emulator, integration (real bootstrap under the RIE) and infra
	$(GO) test -race -count=1 ./...

.PHONY: bench bench-custody bench-fleet
bench: ## speed and memory benchmarks (not the fleet's: make bench-fleet)
	$(GO) test -run='^$$' -bench=. -skip='^BenchmarkFleet$$' -benchmem ./internal/...

# The chaos soak (internal/local/soak): SOAK_SEED (9), SOAK_ATTEMPTS (300),
# SOAK_TIMEOUT (10m); SOAK_FLAGS=-trace prints what each attempt did, -v the
# function's logs. make test runs its first 40 attempts.
SOAK_BIN      := $(BUILD)/host/flowkey-soak
SOAK_SEED     ?=
SOAK_ATTEMPTS ?=
SOAK_TIMEOUT  ?=
SOAK_FLAGS    ?=

$(SOAK_BIN): $(GO_SRC)
	$(GO) build -o $@ ./internal/local/cmd/flowkey-soak

.PHONY: soak
soak: $(SOAK_BIN) ## rotations on the local stack against random faults, recovered by flowkey's own commands; prints the table (SOAK_SEED, SOAK_ATTEMPTS)
	@SOAK_SEED='$(SOAK_SEED)' SOAK_ATTEMPTS='$(SOAK_ATTEMPTS)' SOAK_TIMEOUT='$(SOAK_TIMEOUT)' $(SOAK_BIN) $(SOAK_FLAGS)

# The custody benchmarks start local stacks (a few seconds each); make bench
# runs them too, once, at the default benchtime.
bench-custody: ## on the local stack: rotation time and endpoint requests/s, PEM custody beside KMS custody
	$(GO) test -run='^$$' -bench=Custody -benchtime=3s ./internal/local/stack

# The fleet at scale: FLEET_BENCH_TENANTS (1000) tenants of 2 numbers, one
# pass (a few minutes at 1,000 on 2 cores).
FLEET_BENCH_TENANTS ?= 1000
bench-fleet: ## on the local stack: enroll, rotate and a fleet status of 1,000 tenants, Graph and Secrets Manager calls a tenant, the endpoint's memory
	FLEET_BENCH_TENANTS=$(FLEET_BENCH_TENANTS) $(GO) test -run='^$$' -bench='^BenchmarkFleet$$' -benchtime=1x -timeout=60m ./internal/local/stack

# --- deploy: CDK (infra/) and SAM (template.yaml, events/) ---
CDK_DIR := infra
CDK     := $(CDK_DIR)/node_modules/.bin/cdk

# npm ci restores 1985 mtimes from the tarball; touch keeps make from reinstalling every time.
$(CDK): $(CDK_DIR)/package.json $(CDK_DIR)/package-lock.json
	cd $(CDK_DIR) && npm ci --no-audit --no-fund
	touch $@

.PHONY: synth synth-vpc synth-endpoint synth-kms deploy sam-invoke
# CDK_FLAGS go to every cdk command (--profile, -c flowkey:<setting>=..., --no-rollback);
# CDK_APPROVAL is deploy's --require-approval: broadening asks on a terminal,
# CI without one sets never (infra/README.md, "Deploying from CI").
CDK_FLAGS    ?=
CDK_APPROVAL ?= broadening
# Placeholders let `make synth` run without an AWS account or settings; set the
# FLOWKEY_* variables (README) to synthesize your own stack.
synth synth-vpc synth-endpoint synth-kms: export FLOWKEY_PHONE_NUMBER_IDS ?= 106540352242922
synth synth-vpc synth-endpoint synth-kms: export FLOWKEY_ACCESS_TOKEN_SECRET_ARN ?= arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/graph-token-AbCdEf
# Both bootstraps, whether or not the settings deploy the endpoint: the
# settings are read by the app, after make has decided.
synth: $(ARM64_BIN) $(ARM64_ENDPOINT_BIN) $(CDK) ## cdk synth with the pinned CLI into infra/cdk.out; cdk-nag findings fail it
	cd $(CDK_DIR) && ./node_modules/.bin/cdk synth --ci --no-notices --quiet --output cdk.out $(CDK_FLAGS)

# The VPC variant with placeholder subnets, security group and endpoints.
synth-vpc: export FLOWKEY_VPC_SUBNET_IDS ?= subnet-0a1b2c3d4e5f60718,subnet-08f7e6d5c4b3a2910
synth-vpc: export FLOWKEY_VPC_SECURITY_GROUP_IDS ?= sg-0123456789abcdef0
synth-vpc: export FLOWKEY_VPC_ID ?= vpc-0a1b2c3d4e5f60718
synth-vpc: export FLOWKEY_VPC_ENDPOINTS ?= true
synth-vpc: $(ARM64_BIN) $(ARM64_ENDPOINT_BIN) $(CDK) ## make synth for the VPC variant (placeholder subnets, endpoints) into infra/cdk.out.vpc
	cd $(CDK_DIR) && ./node_modules/.bin/cdk synth --ci --no-notices --quiet --output cdk.out.vpc $(CDK_FLAGS)

# The Flows endpoint on, with a placeholder backend function and app secret;
# synth-kms seeds KMS custody too, with one more placeholder decrypting role.
synth-endpoint synth-kms: export FLOWKEY_ENDPOINT_BACKEND_FUNCTION_ARN ?= arn:aws:lambda:us-east-1:111122223333:function:flows-backend
synth-endpoint synth-kms: export FLOWKEY_APP_SECRET_ARN ?= arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/meta-app-secret-AbCdEf
synth-kms: export FLOWKEY_KEY_CUSTODY ?= kms
synth-kms: export FLOWKEY_CUSTODY_KEY_DECRYPT_ROLE_ARNS ?= arn:aws:iam::111122223333:role/flows-consumer
synth-endpoint: $(ARM64_BIN) $(ARM64_ENDPOINT_BIN) $(CDK) ## make synth with the Flows endpoint (placeholder backend and app secret) into infra/cdk.out.endpoint
	cd $(CDK_DIR) && ./node_modules/.bin/cdk synth --ci --no-notices --quiet --output cdk.out.endpoint $(CDK_FLAGS)

synth-kms: $(ARM64_BIN) $(ARM64_ENDPOINT_BIN) $(CDK) ## make synth-endpoint with KMS custody (key_custody kms, a placeholder decrypting role) into infra/cdk.out.kms
	cd $(CDK_DIR) && ./node_modules/.bin/cdk synth --ci --no-notices --quiet --output cdk.out.kms $(CDK_FLAGS)

deploy: $(ARM64_BIN) $(ARM64_ENDPOINT_BIN) $(CDK) ## cdk deploy: needs AWS credentials, cdk bootstrap and the FLOWKEY_* settings (README); CDK_FLAGS, CDK_APPROVAL
	cd $(CDK_DIR) && ./node_modules/.bin/cdk deploy --no-notices --require-approval $(CDK_APPROVAL) $(CDK_FLAGS)

STEP ?= createSecret
SAM_ENV_VARS ?= events/env.json
# The rotator's steps and commands go to RotatorFunction, the endpoint-*
# Function URL events to EndpointFunction.
sam-invoke: $(ARM64_BIN) $(ARM64_ENDPOINT_BIN) ## one event of events/ under sam local (SAM and Docker): make sam-invoke STEP=createSecret|...|status|endpoint-ping
	@case '$(STEP)' in createSecret|setSecret|testSecret|finishSecret|status|rotate-now|resync|set-config) fn=RotatorFunction ;; \
	  endpoint-ping|endpoint-get) fn=EndpointFunction ;; \
	  *) echo "STEP must be createSecret, setSecret, testSecret, finishSecret, status, rotate-now, resync, set-config, endpoint-ping or endpoint-get, not '$(STEP)'" >&2; exit 2 ;; esac; \
	echo "sam local invoke $$fn --template template.yaml --event events/$(STEP).json --env-vars $(SAM_ENV_VARS)"; \
	sam local invoke $$fn --template template.yaml --event events/$(STEP).json --env-vars $(SAM_ENV_VARS)
