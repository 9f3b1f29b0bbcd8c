"""Training the distilled speech embedder (`speech_embedder` backend `whisper-tiny-distilled`):
one pipeline, run from the repository root; not part of the installed package (the runtime needs
only the head file, read in numpy by voicerag_cli/models/distilled/). README.md beside this file
gives the steps and the commands; MODEL_CARD.md of the head gives every run's.
"""
