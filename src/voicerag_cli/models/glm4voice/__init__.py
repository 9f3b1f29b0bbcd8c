"""GLM-4-Voice backend: speech tokenizer, interleaved text/speech LM, streaming speech decoder.

Every submodule imports torch at module level, so nothing here is imported until the
`glm4voice` generator is actually constructed (see `registry.py`)."""
