#!/usr/bin/env bash
# One device call: tokenise, train the 3-, 2- and 6-layer readers side by side on one GPU until a
# shared deadline, export + quantise each, bring back the 3/2-layer int8 models (split < 16 MiB).
# Expects (in the current folder): train.py, data/{train,val}.json.xz, init/{init.npz,config.json,tokenizer.json}.
set -uo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=4
T0=$(date +%s)
nvidia-smi -L
python3 -c "import torch, transformers, onnx, onnxruntime; print(torch.__version__, transformers.__version__, onnx.__version__, onnxruntime.__version__, torch.cuda.get_device_name())"
python3 train.py prepare data=data init=init out="$OUT/m" > "$OUT/log_prep.txt" 2>&1 || { tail -30 "$OUT/log_prep.txt"; exit 1; }
tail -3 "$OUT/log_prep.txt"
DL=$((T0 + ${TRAIN_SECONDS:-420}))
for L in ${LAYERS:-3 2 6}; do
  python3 train.py data=data init=init out="$OUT/m" layers=$L epochs=${EPOCHS:-2} deadline=$DL > "$OUT/log_L$L.txt" 2>&1 &
done
wait
cd "$OUT/m" || exit 1
python3 - <<'PY'
import json, glob
print(json.dumps({f: {k: json.load(open(f)).get(k) for k in ("steps", "epochs_done", "early_stop", "train_s", "int8_bytes")} for f in sorted(glob.glob("metrics_L*.json"))}, indent=1))
for f in sorted(glob.glob("metrics_L*.json")):
    m = json.load(open(f))
    for k in ("all", "squad", "docs"):
        print(f, k, "bf16", json.dumps(m["torch_bf16"].get(k)))
    print(f, "int8-sub", json.dumps(m["onnx_int8_sub"].get("all")), "bf16-sub", json.dumps(m["torch_bf16_sub"].get("all")))
json.dump({f: json.load(open(f)) for f in sorted(glob.glob("metrics_L*.json"))}, open("metrics_all.json", "w"), indent=1)
PY
rm -f metrics_L*.json reader_L6.int8.onnx
sha256sum reader_L*.int8.onnx | tee SHA256SUMS
for f in reader_L*.int8.onnx; do split -b 15000000 -d "$f" "$f.part"; rm "$f"; done
cd "$OUT" && cat log_prep.txt log_L*.txt | grep -v -i warn > m/logs.txt; rm -f log_*.txt
ls -la "$OUT/m"; echo "total $(( $(date +%s) - T0 ))s"
