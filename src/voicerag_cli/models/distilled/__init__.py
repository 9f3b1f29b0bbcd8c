"""The distilled speech embedder: Whisper encoder front-end + a trained head, numpy at inference."""
