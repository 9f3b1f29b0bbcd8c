"""Settings shared by backends that use Hugging Face libraries: never reach a hub, stay quiet."""

from __future__ import annotations

import os


def prepare_hf_offline() -> None:
    # Models load from local folders only; offline mode turns a missing file into an
    # immediate error instead of a network timeout.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # transformers comes with the extras that use it; the settings above still hold
        pass
