"""Benchmark evaluation: datasets, spoken questions, metrics, the run loop and its report."""
