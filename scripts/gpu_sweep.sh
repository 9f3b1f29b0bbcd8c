#!/usr/bin/env bash
# Render once, then train several speech-embedder configurations side by side on one GPU, each
# for the same wall time on the same clips, and keep the best head (by held-out R@5).
# Runs on the GPU machine, from the repository root, with the pack folder carried:
#   [RENDER_SEED=N] bash scripts/gpu_sweep.sh CARRY WORK OUT CLIPS MINUTES "name: train options" ...
# RENDER_SEED (default 0) picks other texts and voices: a second rendering to add with --extra-work.
# REAL_COPIES (default 0): each real utterance packed with --real-speech joins the clips that often.
# KEEP_MEL=1 saves log-mel frames instead of encoder states, for train --tune-layers N.
# Each run's log goes to OUT/name.log; the best run's head (in parts) to OUT/.
set -euo pipefail
carry=$1 work=$2 out=$3 clips=$4 minutes=$5
shift 5
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
train=(python3 -m voicerag_cli.training.gpu_train)
if [ ! -f "$work/features_meta.pt" ]; then  # features already there (a re-run, a local check): reuse
  "${train[@]}" render --carry "$carry" --work "$work" --clips "$clips" --dev 2000 \
    --workers "$(($(nproc) - 1))" --seed "${RENDER_SEED:-0}" --real-copies "${REAL_COPIES:-0}" ${KEEP_MEL:+--keep-mel} 2>&1 | grep --line-buffered -v "dict file" > "$out/render.log"
  tail -1 "$out/render.log"
fi
pids=()
names=()
for spec in "$@"; do
  name=${spec%%:*}
  names+=("$name")
  rm -rf "${work:?}/runs/$name"
  # shellcheck disable=SC2206  # the options are words on purpose
  options=(${spec#*:})
  "${train[@]}" train --carry "$carry" --work "$work" --minutes "$minutes" \
    --out "$work/runs/$name/head.safetensors" "${options[@]}" > "$out/$name.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
# the best of this invocation's runs (not of earlier ones left in WORK/runs)
best=$(python3 - "$work/runs" "${names[@]}" <<'PY'
import json, sys
from pathlib import Path
found = [Path(sys.argv[1], name, "head.json") for name in sys.argv[2:]]
runs = [(json.loads(p.read_text())["dev"]["r5"], p.parent.name) for p in found if p.exists()]
print(max(runs)[1] if runs else "")
PY
)
[ -n "$best" ] && cp "$work/runs/$best"/head*.safetensors "$out/" && echo "best: $best"
for spec in "$@"; do name=${spec%%:*}; echo "$name: $(grep '"step"' "$out/$name.log" | tail -1)"; done
exit $status
