#!/usr/bin/env bash
# One command from a fresh Debian/Ubuntu machine to a spoken question answered offline:
# installs system packages and voicerag (the base install: no torch), indexes a folder (default:
# the bundled demo docs), speaks a question with espeak-ng, and answers it from the index.
# Every step says what it does and about how long it takes, so a quiet minute is never a hang.
#   bash scripts/quickstart.sh [DOCS_FOLDER] ["question to speak"]
set -euo pipefail
cd "$(dirname "$0")/.."

docs="${1:-examples/docs}"
question="${2:-Who received a Nobel prize for decoding the honey bee dance?}"
started=$SECONDS
step() { printf '\n[%s/5] %s\n' "$1" "$2"; }
done_in() { printf '      done in %ss (%ss so far)\n' "$(( SECONDS - $1 ))" "$(( SECONDS - started ))"; }

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
# shellcheck source=apt_wait.sh
source scripts/apt_wait.sh

t=$SECONDS
step 1 "system packages: espeak-ng (speech), libportaudio2 (microphone), libsndfile1 (audio files)"
missing=()
for package in espeak-ng libportaudio2 libsndfile1; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "      already installed"
elif command -v apt-get >/dev/null; then
  echo "      installing ${missing[*]} with apt (under a minute)"
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "      missing ${missing[*]}: install them with your package manager" >&2
fi
done_in "$t"

t=$SECONDS
step 2 "voicerag and its Python packages, models included (about 750 MB; 2-3 minutes on a fast link)"
source scripts/setup_python.sh
# pip's own lines, one per package as it is fetched, instead of minutes of silence
python3 -m pip install --root-user-action=ignore --progress-bar off -e . 2>&1 \
  | { grep --line-buffered -E '^(Collecting|Downloading|Installing collected|Successfully installed|ERROR|error)' || true; } \
  | sed -u -E 's/^Successfully installed (.{0,100}).*/Successfully installed \1…/; s/^/      /'
test "${PIPESTATUS[0]}" -eq 0
done_in "$t"

export HF_HUB_OFFLINE=1  # proves it: nothing is downloaded at run time
t=$SECONDS
step 3 "index $docs (seconds for the demo documents)"
voicerag index "$docs" --name quickstart
done_in "$t"

t=$SECONDS
tmp="$(mktemp -d)"
step 4 "speak a question with espeak-ng: \"$question\""
espeak-ng -v en-us -s 160 -w "$tmp/question.wav" "$question"
echo "      $tmp/question.wav"
done_in "$t"

t=$SECONDS
step 5 "answer it: speech recognition, search, answer, spoken answer (a few seconds)"
voicerag ask "$tmp/question.wav" --index quickstart --rag asr --out "$tmp/answer"
done_in "$t"
printf '\nReady in %ss. Next: voicerag index YOUR_FOLDER, then voicerag ask --text "a question" or voicerag chat\n' "$(( SECONDS - started ))"
