"""The `llama` generator: llama.cpp in-process (xllamacpp) on any GGUF, or the packaged
Qwen2.5-Coder-1.5B-Instruct (voicerag[llama]). See docs/llama.md."""
