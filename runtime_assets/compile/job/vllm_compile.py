"""Compile by starting vLLM once: ``python vllm_compile.py '<engine arguments as JSON>'``.

vLLM on Neuron compiles the model for the engine arguments when it loads it and saves the
result where the environment points: ``NEURON_COMPILED_ARTIFACTS`` (the NxD Inference
plugin: ``neuron_config.json``, ``model.pt``, sharded weights) or ``VLLM_CACHE_ROOT`` (the
vllm-neuron plugin's compile cache). Serving starts the same engine with the same
arguments and the same variable pointing at a copy of that directory, so it loads instead
of compiling. Run by compile_job.py inside the serving image.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: vllm_compile.py '<engine arguments JSON>'", file=sys.stderr)
        return 2
    arguments = json.loads(argv[1])
    from vllm import LLM  # the serving image's own vLLM and Neuron plugin

    LLM(**arguments)
    print("vllm_compile: engine loaded; artifacts saved", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
