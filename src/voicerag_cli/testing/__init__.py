"""Tiny random-weight checkpoints in each backend's true file layout, for tests and benchmarks.

One module per backend (`glm4voice`, `sonar`): they write real files that the real loaders read,
so tests exercise the loading code, never mocks. Nothing here is imported by the CLI.
"""
