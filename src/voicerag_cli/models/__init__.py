"""Model backends. Each module imports its heavy libraries inside functions, so that
importing this package (and the CLI) stays cheap; the registry constructs them on demand."""
