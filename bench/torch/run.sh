#!/usr/bin/env bash
# Alternating step benchmark: skipgraph (bench/stepbench on ONNX Runtime) against PyTorch eager on
# CPU (bench/torch/torch_step.py) doing the same ViT-B/16 Skip Tuning step: LSkip omega 6, CSkip
# ratio 0.5 (K 50 of 100 classes, plus the tail positions skipgraph draws), batch 4, context 77,
# SGD momentum 0.9, weight decay 5e-4, fp32. Prints a markdown table, one row per round.
#
# usage: bash bench/torch/run.sh            (from the repository root)
#
# Settings (environment):
#   ROUNDS=3        rounds of (skipgraph step bench, torch step bench), alternated
#   STEPS=5         timed steps per measurement (after WARMUP=1 untimed)
#   THREADS=2       ORT intra-op threads and torch threads
#   FULL=0          1: afterwards, FULL_ROUNDS (1) rounds of full fine-tuning vs full fine-tuning,
#                   FULL_STEPS (2) timed steps each
#   WORK=/tmp/sg-torch-bench   binaries, model (made once), bundles and cached step inputs (remade
#                              every run, to match the code just built), results
#   LOCK=/tmp/bench.lock       every heavy command runs holding this lock (flock)
#   QUIET_WAIT=300  seconds to wait, holding the lock, for the machine to go idle before a measurement
#
# It installs nothing. It needs Go, ONNX Runtime as skipgraph finds it (make setup), and Debian's
# python3-torch and python3-numpy (+ libopenblas0-pthread, else torch uses the reference BLAS).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/torch
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-1}
THREADS=${THREADS:-2}
FULL=${FULL:-0}
FULL_ROUNDS=${FULL_ROUNDS:-1}
FULL_STEPS=${FULL_STEPS:-2}
WORK=${WORK:-/tmp/sg-torch-bench}
LOCK=${LOCK:-/tmp/bench.lock}
QUIET_WAIT=${QUIET_WAIT:-300}
CLIPREF=${CLIPREF:-$ROOT/../shared/tools}
PY=/usr/bin/python3
# OpenBLAS's own CPU detection can pick a slow generic kernel on virtual machines: the torch
# commands run with OPENBLAS_CORETYPE set to the core type whose 2048^3 sgemm was fastest here
# (pick_coretype, bench/torch/coretype.sh; CORETYPE=name skips the search).
CORETYPE=${CORETYPE:-}

if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
  echo "run.sh: PyTorch is not importable by $PY; install it with:" >&2
  echo "  apt-get update && apt-get install -y python3-torch python3-numpy libopenblas0-pthread" >&2
  exit 2
fi
if [ ! -f "$CLIPREF/clipref.py" ]; then
  echo "run.sh: $CLIPREF/clipref.py not found (the shared reference tool); set CLIPREF to its folder" >&2
  exit 2
fi

mkdir -p "$WORK/results"
exec 9>>"$LOCK"
locked() { flock 9; "$@"; local rc=$?; flock -u 9; return $rc; }

# shellcheck source=bench/torch/coretype.sh
. "$HERE/coretype.sh"
if [ -z "$CORETYPE" ]; then
  pick_coretype locked
else
  SGEMM_GFLOPS=$(jfield "$(sgemm_line "$CORETYPE" locked)" gflops)
fi
echo "torch sgemm peak: $SGEMM_GFLOPS GFLOP/s with OPENBLAS_CORETYPE=$CORETYPE" >&2
TORCH=(env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE="$CORETYPE" "$PY" "$HERE/torch_step.py" --clipref "$CLIPREF" --threads "$THREADS")

cd "$ROOT"
go build -o "$WORK/sg" ./cmd/skipgraph
go build -o "$WORK/stepbench" ./bench/stepbench
SG=$WORK/sg
SB=$WORK/stepbench

[ -f "$WORK/src/model.onnx" ] || locked "$SG" synth --size vit-b-16 --opset 17 -o "$WORK/src"
# bundles and cached step inputs are remade every run, so that they match the code just built
locked "$SG" convert "$WORK/src/model.onnx" -o "$WORK/lc" -q --force >&2 \
  --strategy lskip,cskip --lskip-start 6 --cskip-ratio 0.5
# the features phase once: the step phase of every round reads these cached inputs
rm -rf "$WORK/in_lc"
locked "$SB" -bundle "$WORK/lc" -batch 4 -classes 100 -threads "$THREADS" -features-out "$WORK/in_lc" >/dev/null
if [ "$FULL" = 1 ]; then
  locked "$SG" convert "$WORK/src/model.onnx" -o "$WORK/full" -q --force --strategy full >&2
  rm -rf "$WORK/in_full"
  locked "$SB" -bundle "$WORK/full" -batch 4 -classes 100 -threads "$THREADS" -features-out "$WORK/in_full" >/dev/null
fi

# busy and total jiffies of the whole machine
cpustat() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

# wait until the machine is (nearly) idle, at most QUIET_WAIT seconds; prints the busy share seen
wait_quiet() {
  local deadline=$((SECONDS + QUIET_WAIT)) b0 t0 b1 t1 share
  while :; do
    read -r b0 t0 < <(cpustat); sleep 3; read -r b1 t1 < <(cpustat)
    share=$(( (b1 - b0) * 100 / (t1 - t0 + 1) ))
    if [ "$share" -le 15 ] || [ "$SECONDS" -ge "$deadline" ]; then echo "$share"; return; fi
    sleep 10
  done
}

# measure NAME CMD...: runs CMD holding the lock, after waiting for quiet; writes NAME.json (the
# tool's JSON) and NAME.env (busy share before, CPU seconds of CMD and of the whole machine, wall)
measure() {
  local name=$1; shift
  flock 9
  local quiet b0 t0 b1 t1
  quiet=$(wait_quiet)  # busy share (%) seen last
  read -r b0 t0 < <(cpustat)
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/results/$name.time" "$@" >"$WORK/results/$name.json"
  read -r b1 t1 < <(cpustat)
  flock -u 9
  local hz; hz=$(getconf CLK_TCK)
  read -r wall usr sys maxrss <"$WORK/results/$name.time"
  awk -v q="$quiet" -v w="$wall" -v u="$usr" -v s="$sys" -v db=$((b1 - b0)) -v hz="$hz" -v m="$maxrss" 'BEGIN {
    printf "{\"busy_before_pct\": %s, \"wall_s\": %s, \"own_cpu_s\": %.2f, \"machine_cpu_s\": %.2f, \"maxrss_kib\": %s}\n", q, w, u + s, db / hz, m }' \
    >"$WORK/results/$name.env"
  echo "  $name: $(cut -c1-160 "$WORK/results/$name.json")" >&2
}

lc_sg()    { measure "$1" "$SB" -bundle "$WORK/lc" -inputs "$WORK/in_lc" -batch 4 -classes 100 -threads "$THREADS" -steps "$STEPS" -warmup "$WARMUP"; }
lc_torch() { measure "$1" "${TORCH[@]}" --mode lskip-cskip --size vit-b-16 --batch 4 --classes 100 --omega 6 --steps "$STEPS" --warmup "$WARMUP"; }
ft_sg()    { measure "$1" "$SB" -bundle "$WORK/full" -inputs "$WORK/in_full" -batch 4 -classes 100 -threads "$THREADS" -steps "$FULL_STEPS" -warmup 1; }
ft_torch() { measure "$1" "${TORCH[@]}" --mode full --size vit-b-16 --batch 4 --classes 100 --steps "$FULL_STEPS" --warmup 1; }

# step_gflop lc|full: the cost model's FLOPs of one step (skipgraph plan, whose JSON holds the
# full-FT estimate beside the chosen strategies'), in GFLOP
step_gflop() {
  "$SG" plan "$WORK/src/model.onnx" --strategy lskip,cskip --lskip-start 6 --cskip-ratio 0.5 --batch 4 --classes 100 --json |
    "$PY" -c 'import json,sys; j=json.load(sys.stdin); t=(j["full"] if sys.argv[1]=="full" else j["chosen"]["estimate"])["total"]; print((t["forward_flops"]+t["backward_flops"])/1e9)' "$1"
}

stamp=$(date +%Y%m%d-%H%M%S)
rows=()
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS (LSkip+CSkip)" >&2
  lc_sg "$stamp-lc-sg-$r"; lc_torch "$stamp-lc-torch-$r"
  rows+=("lc $r $stamp-lc-sg-$r $stamp-lc-torch-$r")
done
if [ "$FULL" = 1 ]; then
  for r in $(seq 1 "$FULL_ROUNDS"); do
    echo "round $r/$FULL_ROUNDS (full FT)" >&2
    ft_sg "$stamp-ft-sg-$r"; ft_torch "$stamp-ft-torch-$r"
    rows+=("full $r $stamp-ft-sg-$r $stamp-ft-torch-$r")
  done
fi

{
  echo "skipgraph $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '(no git)'), stepbench options: $("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["options"])' "$WORK/results/$(echo "${rows[0]}" | awk '{print $3}').json" 2>/dev/null || true)"
  echo "machine: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) CPUs, Linux $(uname -r)"
  echo "torch $("$PY" -c 'import torch; print(torch.__version__)'), ONNX Runtime $(ls -d ~/.cache/skipgraph/onnxruntime-* 2>/dev/null | sed 's/.*onnxruntime-//' | tr '\n' ' ')"
  echo "sgemm $SGEMM_GFLOPS $CORETYPE"
  echo "flops lc $(step_gflop lc) full $(step_gflop full)"
  printf '%s\n' "${rows[@]}"
} >"$WORK/results/$stamp.rows"

# the report: header lines, then "kind round skipgraph-result torch-result" lines
"$PY" - "$WORK/results" "$WORK/results/$stamp.rows" <<'EOF'
import json, os, statistics, sys

res, rowfile = sys.argv[1], sys.argv[2]
NAMES = {"lc": "LSkip+CSkip", "full": "full FT"}


def load(n):
    j = json.load(open(os.path.join(res, n + ".json")))
    e = json.load(open(os.path.join(res, n + ".env")))
    # CPU that other processes used while this one ran, as a share of the whole machine
    e["others_pct"] = max(0.0, (e["machine_cpu_s"] - e["own_cpu_s"]) / (os.cpu_count() * e["wall_s"]) * 100)
    return j, e


lines = open(rowfile).read().splitlines()
rows = [l.split() for l in lines if l.split()[0] in NAMES]
peak, gflop = 0.0, {}
for h in lines:
    f = h.split()
    if f[0] == "sgemm":
        peak = float(f[1])
        print("- torch sgemm 2048^3 peak: %.1f GFLOP/s (OPENBLAS_CORETYPE=%s); shares below are the cost model's FLOPs / step time / this peak" % (peak, f[2] if len(f) > 2 else ""))
    elif f[0] == "flops":
        gflop = {f[1]: float(f[2]), f[3]: float(f[4])}
        print("- cost model: LSkip+CSkip step %.1f GFLOP, full FT step %.1f GFLOP" % (gflop["lc"], gflop["full"]))
    elif f[0] not in NAMES:
        print("- " + h)


def share(kind, ms):
    if not peak or kind not in gflop:
        return "-"
    return "%.0f%%" % (gflop[kind] / (ms / 1000) / peak * 100)
print()
print("| step | round | skipgraph median ms (min) | torch median ms (min) | skipgraph/torch | "
      "skipgraph / torch share of sgemm peak | skipgraph peak RSS MiB | torch peak RSS MiB | others' CPU during sg / torch |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
agg = {}
for kind, r, a, b in rows:
    (sj, se), (tj, te) = load(a), load(b)
    ratio = sj["median_ms"] / tj["median_ms"]
    agg.setdefault(kind, []).append((sj["median_ms"], tj["median_ms"], ratio, sj["peak_rss_mib"], tj["peak_rss_mib"]))
    print("| %s | %s | %.0f (%.0f) | %.0f (%.0f) | %.2f | %s / %s | %.0f | %.0f | %.0f%% / %.0f%% |" % (
        NAMES[kind], r, sj["median_ms"], sj["min_ms"], tj["median_ms"], tj["min_ms"], ratio,
        share(kind, sj["median_ms"]), share(kind, tj["median_ms"]),
        sj["peak_rss_mib"], tj["peak_rss_mib"], se["others_pct"], te["others_pct"]))
for kind, v in agg.items():
    med = [statistics.median(x[i] for x in v) for i in range(5)]
    print("| %s | median of %d | %.0f | %.0f | %.2f | %s / %s | %.0f | %.0f | |" % (
        NAMES[kind], len(v), med[0], med[1], med[2], share(kind, med[0]), share(kind, med[1]), med[3], med[4]))
EOF
