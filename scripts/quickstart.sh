#!/usr/bin/env bash
# One command from a fresh Debian/Ubuntu machine to a spoken question answered offline:
# installs system and Python packages, indexes a folder (default: the bundled demo docs),
# speaks a question with espeak-ng, and answers it from the index.
#   bash scripts/quickstart.sh [DOCS_FOLDER] ["question to speak"]
set -euo pipefail
cd "$(dirname "$0")/.."

docs="${1:-examples/docs}"
question="${2:-Who received a Nobel prize for decoding the honey bee dance?}"

if command -v apt-get >/dev/null && ! command -v espeak-ng >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq espeak-ng libportaudio2 libsndfile1 >/dev/null
fi
# torch first, pinned: any other version pulls several GB of CUDA packages
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e .

export HF_HUB_OFFLINE=1  # proves it: nothing is downloaded at run time
voicerag index "$docs" --name quickstart
tmp="$(mktemp -d)"
espeak-ng -v en-us -s 160 -w "$tmp/question.wav" "$question"
voicerag ask "$tmp/question.wav" --index quickstart --rag asr --out "$tmp/answer"
echo "spoken answer: $tmp/answer/answer.wav"
