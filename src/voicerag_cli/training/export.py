"""Write a trained head as safetensors with the metadata the backend checks on load."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from voicerag_cli.models.distilled.head import HEAD_FORMAT
from voicerag_cli.training.head import SpeechHead


def export_head(
    model: SpeechHead, path: Path, space_id: str, dim: int, frontend: str, training: dict[str, Any]
) -> Path:
    from safetensors.torch import save_file

    # float16 halves the file; the numpy head upcasts to float32 on load.
    # The CTC layer only served training: inference pools the frames and never transcribes.
    state = {name: t for name, t in model.state_dict().items() if not name.startswith("ctc.")}
    tensors = {name: t.detach().to("cpu").half().contiguous() for name, t in state.items()}
    metadata = {
        "format": HEAD_FORMAT,
        "target_space_id": space_id,
        "target_dim": str(dim),
        "frontend": frontend,
        "config": json.dumps(model.cfg.to_dict()),
        "training": json.dumps(training),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)
    return path
