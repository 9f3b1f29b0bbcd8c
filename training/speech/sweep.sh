#!/usr/bin/env bash
# Train several students side by side on one GPU, each for the same wall time on the same
# rendered clips; every run's head goes to OUT, the logs and summaries to OUT/logs.tgz (the
# device returns at most 8 files).
# On the GPU machine, with `training` and `src` importable (PYTHONPATH):
#   bash training/speech/sweep.sh CARRY WORK OUT MINUTES "name: train options" ...
# WORK must hold rendered features (python -m training.speech render).
set -euo pipefail
carry=$1 work=$2 out=$3 minutes=$4
shift 4
export PYTHONUNBUFFERED=1
[ -f "$work/features_meta.pt" ] || { echo "no features in $work: render first" >&2; exit 3; }
logs=$work/logs
rm -rf "$logs" && mkdir -p "$logs"
pids=()
for spec in "$@"; do
  name=${spec%%:*}
  rm -rf "${work:?}/runs/$name"
  # shellcheck disable=SC2206  # the options are words on purpose
  options=(${spec#*:})
  python3 -m training.speech train --carry "$carry" --work "$work" --minutes "$minutes" \
    --out "$work/runs/$name/$name.safetensors" "${options[@]}" > "$logs/$name.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for spec in "$@"; do
  name=${spec%%:*}
  cp "$work/runs/$name/"*.safetensors "$out/" 2>/dev/null || true
  cp "$work/runs/$name/$name.json" "$logs/" 2>/dev/null || true
  echo "$name: $(grep '"step"' "$logs/$name.log" | tail -1)"
done
tar czf "$out/logs.tgz" -C "$logs" .
exit $status
