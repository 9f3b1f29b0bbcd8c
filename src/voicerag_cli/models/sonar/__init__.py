"""Meta SONAR text and speech encoders in plain PyTorch, loading the official fairseq2 checkpoints.

Why not the `sonar-space` package: it needs fairseq2, whose native part (fairseq2n) pins one exact
torch version (0.8.1: torch==2.9.1) and transformers~=4.57, so it cannot live beside this tool's
torch 2.13 / transformers 5 (see docs/sonar.md). The modules here re-implement only the inference
path of the two encoders, with parameter names equal to the fairseq2 checkpoints' keys so that
those load strictly. Nothing here is imported until a SONAR backend is configured.
"""
