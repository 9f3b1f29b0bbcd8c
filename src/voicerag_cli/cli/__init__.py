"""Command-line interface: argument parsing and presentation only; work happens in pipeline/index/models."""
