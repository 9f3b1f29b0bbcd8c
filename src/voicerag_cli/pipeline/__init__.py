"""Question answering pipelines: audio/text in, retrieved passages and an answer out."""
