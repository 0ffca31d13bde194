# irsa-policy: the Kubewarden targets (policy.wasm, annotated-policy.wasm, fmt,
# lint, test, e2e-tests, clean) plus `run`, which works without kwctl.

CARGO_GLOBAL_OPTIONS ?= --locked
TARGET_DIR ?= $(CURDIR)/target
HOST_DIR := $(CURDIR)/test-host
HOST := $(HOST_DIR)/target/release/irsa-test-host
RUST_SOURCES := $(shell find src -name '*.rs')
HOST_SOURCES := $(shell find test-host/src -name '*.rs')
SAMPLE := e2e-tests/cases/mutates-deployment-pod
KWCTL ?= $(shell command -v kwctl 2>/dev/null)
REGISTRY ?= ghcr.io/irsa-policy/policies/irsa-policy
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# Run as a module so it is found wherever pip put it (user or system site).
CHECK_JSONSCHEMA ?= python3 -m check_jsonschema
# Every shell script, bats files and bats helpers apart (below); none in build outputs.
SHELL_SCRIPTS := .ci/run e2e-tests/cluster/stand-in/kubectl $(shell find . \( -path ./.git -o -path ./target -o -path ./test-host/target \
	-o -path ./fuzz/target -o -path ./e2e-tests/helpers.bash \) -prune -o \( -name '*.sh' -o -name '*.bash' \) -print)
# e2e.bats is generated (and ignored by git): lint-scripts builds it first.
BATS_FILES := e2e-tests/e2e.bats $(wildcard e2e-tests/*.bash)
WORKFLOWS := $(wildcard .github/workflows/*.yml)

.PHONY: all
all: policy.wasm

# Installs what the build and the tests need; safe to run again. shellcheck
# (Debian) and check-jsonschema (PyPI) are for `make lint`; pip refuses to
# install into Debian's own Python unless told to (PEP 668), and a user without
# write access to it gets a user install.
# A minimal rustup profile lacks rustfmt and clippy, and the fuzz targets'
# libfuzzer-sys compiles C++ even under `cargo check`; apt-get runs through
# sudo when make is not run as root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := bats jq shellcheck binaryen g++ python3-pip
.PHONY: deps
deps:
	rustup target add wasm32-wasip1
	@rustup component list --installed | grep -q '^rustfmt' && rustup component list --installed | grep -q '^clippy' || \
		rustup component add rustfmt clippy
	@command -v jq >/dev/null && command -v bats >/dev/null && command -v shellcheck >/dev/null && command -v wasm-opt >/dev/null && \
		command -v c++ >/dev/null && python3 -m pip --version >/dev/null 2>&1 || \
		($(SUDO) apt-get install -y $(APT_PACKAGES) || ($(SUDO) apt-get update && $(SUDO) apt-get install -y $(APT_PACKAGES)))
	@$(CHECK_JSONSCHEMA) --version >/dev/null 2>&1 || python3 -m pip install --quiet check-jsonschema 2>/dev/null || \
		python3 -m pip install --quiet --break-system-packages check-jsonschema

# binaryen's wasm-opt after rustc and LLVM: -O2 makes the module smaller and
# each fresh instance quicker (figures: docs/performance.md). The release profile
# strips the target_features section, so the features the wasm32-wasip1 target
# enables are named here; without them wasm-opt refuses bulk-memory operations.
WASM_OPT_FLAGS ?= -O2 --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
	--enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types

policy.wasm: Cargo.toml Cargo.lock $(RUST_SOURCES)
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
	@command -v wasm-opt >/dev/null || \
		($(SUDO) apt-get install -y binaryen || ($(SUDO) apt-get update && $(SUDO) apt-get install -y binaryen))
	cargo $(CARGO_GLOBAL_OPTIONS) build --target=wasm32-wasip1 --target-dir=$(TARGET_DIR) --release
	wasm-opt $(WASM_OPT_FLAGS) $(TARGET_DIR)/wasm32-wasip1/release/irsa_policy.wasm -o $(CURDIR)/policy.wasm

annotated-policy.wasm: policy.wasm metadata.yml README.md
	@test -n "$(KWCTL)" || (echo "kwctl is not installed: see https://github.com/kubewarden/kwctl/releases" >&2; exit 1)
	$(KWCTL) annotate -m metadata.yml -u README.md -o $(CURDIR)/annotated-policy.wasm $(CURDIR)/policy.wasm

# Regenerates the Artifact Hub package from metadata.yml (its version included)
# and questions-ui.yml, then puts our own install text in place of kwctl's, whose
# `kwctl scaffold manifest` lacks --allow-context-aware. tests/packaging.rs checks
# that the file agrees with them, with Cargo.toml and with the install text.
artifacthub-pkg.yml: metadata.yml questions-ui.yml deploy/artifacthub-install.md
	@test -n "$(KWCTL)" || (echo "kwctl is not installed" >&2; exit 1)
	$(KWCTL) scaffold artifacthub --metadata-path metadata.yml --questions-path questions-ui.yml \
		--output artifacthub-pkg.yml
	$(MAKE) --no-print-directory artifacthub-install

# Replaces the `install:` block of artifacthub-pkg.yml with
# deploy/artifacthub-install.md, @VERSION@ being the version in Cargo.toml.
.PHONY: artifacthub-install
artifacthub-install:
	awk -v version=$(VERSION) -v text=deploy/artifacthub-install.md ' \
		/^install:/ { print "install: |"; \
			while ((getline line < text) > 0) { gsub(/@VERSION@/, version, line); print (line == "" ? "" : "  " line) }; \
			skip = 1; next } \
		skip && /^[^ ]/ { skip = 0 } \
		!skip { print }' artifacthub-pkg.yml > artifacthub-pkg.yml.new
	mv artifacthub-pkg.yml.new artifacthub-pkg.yml

# Publishes the annotated module to $(REGISTRY):v$(VERSION) (log in first, e.g.
# `docker login ghcr.io`); releases do this from .github/workflows/release.yml.
.PHONY: push
push: annotated-policy.wasm
	$(KWCTL) push annotated-policy.wasm registry://$(REGISTRY):v$(VERSION)

# The waPC test host: wasmtime takes several minutes to build the first time.
# The host links the policy natively too (the audit invariant, the bench's
# native decision), so a change in src/ rebuilds it.
$(HOST): test-host/Cargo.toml test-host/Cargo.lock $(HOST_SOURCES) Cargo.toml $(RUST_SOURCES)
	cd $(HOST_DIR) && cargo $(CARGO_GLOBAL_OPTIONS) build --release

# Builds the policy and runs it on a sample request: with kwctl when it is
# installed, otherwise with the project's waPC test host, which takes the same
# flags and prints the same AdmissionResponse line; then the patch in that line,
# decoded, and the containers it changed (e2e-tests/explain.jq).
RUN_RESPONSE := $(TARGET_DIR)/run-response.json
.PHONY: run
run: policy.wasm
	@mkdir -p $(TARGET_DIR)
ifneq ($(KWCTL),)
	$(MAKE) annotated-policy.wasm
	$(KWCTL) run --request-path $(SAMPLE)/request.json --allow-context-aware \
		--replay-host-capabilities-interactions $(SAMPLE)/session.yml annotated-policy.wasm \
		| tee $(RUN_RESPONSE)
else
	$(MAKE) $(HOST)
	$(HOST) run --request-path $(SAMPLE)/request.json --allow-context-aware \
		--replay-host-capabilities-interactions $(SAMPLE)/session.yml policy.wasm \
		| tee $(RUN_RESPONSE)
endif
	@echo
	@grep '^{"uid"' $(RUN_RESPONSE) | jq -r --slurpfile request $(SAMPLE)/request.json -f e2e-tests/explain.jq

# The cost of one admission as policy-server pays it (fresh instance per
# evaluation), against a reused instance and the same decision compiled
# natively. One JSON line per scenario on stdout; a summary on stderr.
.PHONY: bench
bench: policy.wasm $(HOST)
	$(HOST) bench policy.wasm

# Fuzzing (libFuzzer through cargo-fuzz, on the nightly toolchain): every
# target for FUZZ_SECONDS, seeded with the e2e fixtures. Crashes land in
# fuzz/artifacts/<target>/; each one found so far is a file in tests/fuzz-regressions/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := payload structured_pod settings

.PHONY: fuzz-corpus
fuzz-corpus:
	@mkdir -p fuzz/corpus/payload fuzz/corpus/settings fuzz/corpus/structured_pod
	@for dir in e2e-tests/cases/*/; do \
		name=$$(basename $$dir); \
		settings=$$(cat $$dir/settings.json 2>/dev/null || echo '{}'); \
		jq -c --argjson settings "$$settings" \
			'{request: (if .kind == "AdmissionReview" then .request else . end), settings: $$settings}' \
			$$dir/request.json > fuzz/corpus/payload/$$name.json; \
	done
	@jq -c '.[].settings' e2e-tests/settings-matrix.json | split -l 1 - fuzz/corpus/settings/matrix-

.PHONY: fuzz
fuzz: fuzz-corpus
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	@for target in $(FUZZ_TARGETS); do \
		echo "== $$target for $(FUZZ_SECONDS)s"; \
		(cd fuzz && cargo +nightly fuzz run $$target -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1) || exit 1; \
	done

# The fuzz targets compile, so a change to the policy's API that breaks them
# shows in `make test`, not at the next `make fuzz`. A check needs no nightly
# (only running them under cargo-fuzz does); it builds libFuzzer's C++ sources
# once, with the system's C++ compiler.
.PHONY: fuzz-check
fuzz-check:
	cd fuzz && cargo $(CARGO_GLOBAL_OPTIONS) check --bins

.PHONY: fmt
fmt:
	cargo fmt --all -- --check
	cd $(HOST_DIR) && cargo fmt --all -- --check
	cd fuzz && cargo fmt --all -- --check

.PHONY: lint
lint: lint-rust lint-docs lint-scripts lint-workflows

# Cargo.toml's [lints] deny unwrap, expect and panic in library code. The fuzz
# targets are checked with a stable clippy, as fuzz-check builds them.
.PHONY: lint-rust
lint-rust:
	cargo $(CARGO_GLOBAL_OPTIONS) clippy --all-targets -- -D warnings
	cd $(HOST_DIR) && cargo $(CARGO_GLOBAL_OPTIONS) clippy --all-targets -- -D warnings
	cd fuzz && cargo $(CARGO_GLOBAL_OPTIONS) clippy --bins -- -D warnings

# The contributors' documentation of the code (private items included), warnings denied.
.PHONY: lint-docs
lint-docs:
	RUSTDOCFLAGS="-D warnings" cargo $(CARGO_GLOBAL_OPTIONS) doc --no-deps --document-private-items

# Bats files are bash with bats' own syntax; bats' `run` sets $$output and
# $$status, which shellcheck cannot see being assigned (SC2154).
.PHONY: lint-scripts
lint-scripts: e2e-tests/e2e.bats
	shellcheck $(SHELL_SCRIPTS)
	shellcheck -s bash -e SC2154 $(BATS_FILES)

# Every workflow against the GitHub workflow schema, and renovate.json against
# Renovate's, both as check-jsonschema ships them (no network needed).
.PHONY: lint-workflows
lint-workflows:
	$(CHECK_JSONSCHEMA) --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(CHECK_JSONSCHEMA) --builtin-schema vendor.renovate renovate.json

.PHONY: unit-tests
unit-tests:
	cargo $(CARGO_GLOBAL_OPTIONS) test
	cd $(HOST_DIR) && cargo $(CARGO_GLOBAL_OPTIONS) test --release

# The bats suite: one @test per folder of e2e-tests/cases, named by its
# expect.json description (e2e-tests/bats.jq); generated, not committed. The
# folder's own time stamp changes when a case is added or removed.
E2E_EXPECTS := $(wildcard e2e-tests/cases/*/expect.json)
e2e-tests/e2e.bats: e2e-tests/bats.jq e2e-tests/cases $(E2E_EXPECTS)
	@echo "jq -rn -f e2e-tests/bats.jq e2e-tests/cases/*/expect.json > $@ ($(words $(E2E_EXPECTS)) cases)"
	@jq -rn -f e2e-tests/bats.jq $(E2E_EXPECTS) > $@.tmp || { rm -f $@.tmp; exit 1; }
	@mv $@.tmp $@

# Every e2e case through the release policy.wasm in the waPC test host (the
# full check), then the bats suite with the test host standing in for kwctl, so
# e2e.bats is exercised on machines without kwctl too.
.PHONY: e2e-host
e2e-host: policy.wasm $(HOST) e2e-tests/e2e.bats
	$(HOST) e2e policy.wasm
	KWCTL=$(HOST) POLICY=policy.wasm bats e2e-tests/e2e.bats

# The check phase of the cluster script (e2e-tests/cluster/run.sh check), against a
# stand-in kubectl that the test host answers with policy.wasm: a cluster with
# deploy/rbac.yaml and deploy/policy.yaml applied. Its jq filters and greps fail here,
# not first on GitHub; only cluster plumbing is left for the cluster workflow.
STAND_IN_STATE ?= $(CURDIR)/target/stand-in
.PHONY: cluster-check
cluster-check: policy.wasm $(HOST)
	rm -rf $(STAND_IN_STATE)
	PATH=$(CURDIR)/e2e-tests/cluster/stand-in:$$PATH IRSA_TEST_HOST=$(HOST) \
		STAND_IN_STATE=$(STAND_IN_STATE) STAND_IN_POLICY=$(CURDIR)/policy.wasm \
		LOOKUP_CACHE_SECONDS=0 RETRY_SECONDS=0 \
		sh -c 'kubectl apply -f deploy/rbac.yaml -f deploy/policy.yaml && e2e-tests/cluster/run.sh check'

# The full suite: what .ci/run runs. It ends with `make run`, the README's first
# command, so a clean clone proves both.
.PHONY: test
test: deps fmt lint unit-tests fuzz-check e2e-host cluster-check run

# The bats suite through the real kwctl.
.PHONY: e2e-tests
e2e-tests: e2e-tests/e2e.bats
	@test -n "$(KWCTL)" || (echo "e2e-tests needs kwctl (https://github.com/kubewarden/kwctl/releases); 'make e2e-host' runs the same cases without it" >&2; exit 1)
	$(MAKE) annotated-policy.wasm
	bats e2e-tests/e2e.bats

.PHONY: clean
clean:
	cargo clean
	cd $(HOST_DIR) && cargo clean
	rm -f policy.wasm annotated-policy.wasm e2e-tests/e2e.bats

# Mutation testing over src/ with the native suite (cargo-mutants; about 50
# minutes on two cores). Results in mutants.out/.
.PHONY: mutants
mutants:
	@command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked
	cargo mutants --jobs 2

# The same over the audit alone (src/audit.rs and the findings in
# src/error.rs; about 10 minutes on two cores).
.PHONY: mutants-audit
mutants-audit:
	@command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked
	cargo mutants --jobs 2 --file src/audit.rs --file src/error.rs \
		--re '^src/audit\.rs|Finding::|replace refused' -- --lib --test behaviour
