"""Audio input/output: decoding, mixdown, resampling, checks, microphone capture."""
