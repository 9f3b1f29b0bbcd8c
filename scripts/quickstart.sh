#!/usr/bin/env bash
# One command from a fresh Debian/Ubuntu machine to a spoken question answered offline:
# installs system packages and voicerag (the base install: no torch), indexes a folder (default:
# the bundled demo docs), speaks a question with espeak-ng, and answers it from the index.
#   bash scripts/quickstart.sh [DOCS_FOLDER] ["question to speak"]
set -euo pipefail
cd "$(dirname "$0")/.."

docs="${1:-examples/docs}"
question="${2:-Who received a Nobel prize for decoding the honey bee dance?}"

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
missing=()
for package in espeak-ng libportaudio2 libsndfile1; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if command -v apt-get >/dev/null && [ "${#missing[@]}" -gt 0 ]; then
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
source scripts/setup_python.sh
python3 -m pip install -q -e .

export HF_HUB_OFFLINE=1  # proves it: nothing is downloaded at run time
voicerag index "$docs" --name quickstart
tmp="$(mktemp -d)"
espeak-ng -v en-us -s 160 -w "$tmp/question.wav" "$question"
voicerag ask "$tmp/question.wav" --index quickstart --rag asr --out "$tmp/answer"
echo "spoken answer: $tmp/answer/answer.wav"
