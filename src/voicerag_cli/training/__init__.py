"""Training the distilled speech embedder (`speech_embedder` backend `whisper-tiny-distilled`).

Teacher-student distillation in the style of SONAR's speech encoders: a frozen Whisper tiny.en
encoder (CTranslate2, unpadded input) feeds a small trainable head whose output is pulled onto
the all-MiniLM-L6-v2 text embedding of what was said. Steps, each a module runnable with -m:

    python -m voicerag_cli.training.prepare --out CACHE   # texts -> espeak-ng audio -> encoder features
    python -m voicerag_cli.training.train --cache CACHE   # features + teacher vectors -> head.safetensors

`corpus` builds the sentences, `voices` the train/held-out voice split, `augment` the noise and
reverb, `head` the torch model, `export` its safetensors file. Nothing here runs at CLI import time.
"""
