#!/usr/bin/env bash
# GPU check and benchmark, for a machine with an NVIDIA GPU and no network (at most ~8 minutes on
# one H200):
#
#   1. finds the CUDA provider libraries the machine has (site-packages/onnxruntime/capi of an
#      onnxruntime-gpu wheel of the pinned ONNX Runtime release, or $SKIPGRAPH_CUDA_PROVIDER_DIR),
#      installs them with `skipgraph setup --cuda`, and puts the CUDA, cuBLAS and cuDNN libraries
#      of site-packages/nvidia/*/lib on LD_LIBRARY_PATH; prints `skipgraph doctor`;
#   2. runs the CUDA tests (SKIPGRAPH_CUDA=1): loss and every gradient of the fixture's full FT,
#      LSkip and LSkip+CSkip steps on CUDA equal the CPU's within 1e-4 relative; the fp16 and
#      bf16 steps match the fp32 one within their stated tolerance; the fixture trains on CUDA
#      and its accuracy rises; the exported model runs on CUDA;
#   3. times one ViT-B/16 training step (100 classes, batch 4 and 32; full FT and LSkip omega 6 +
#      CSkip 0.5 in fp32, and LSkip+CSkip with bf16 compute) with bench/stepbench -device cuda,
#      and the same step in PyTorch CUDA eager (bench/torch/torch_step.py --device cuda, autocast
#      bf16 for the bf16 case), with each process's peak GPU memory;
#   4. writes the table into BENCHMARKS.md (between the "cuda-bench" markers) and bench/results/.
#
# usage (from anywhere):
#   bash bench/cuda.sh              # everything
#   bash bench/cuda.sh --dry-run    # say what would run and check the tools, without a GPU
#   bash bench/cuda.sh --prepare    # on a machine with Go and the modules: build the binaries and
#                                   # a copy of the core library into bin/cuda/ (used when present)
#                                   # for a GPU machine without Go, modules or network
#   bash bench/cuda.sh --table FILE [MD] # render the markdown table of a results file (JSON
#                                   # lines), or put it between the cuda-bench markers of MD
#
# Settings (environment): STEPS (5 timed steps), SKIP_TESTS=1, SKIP_TORCH=1, CLIPREF (folder of
# clipref.py; default shared/tools in or beside the repository), PYTHON (python3 with torch),
# TF32=1 (allow TF32 on both sides; default off, so both compute in IEEE fp32).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STEPS=${STEPS:-5}
TF32=${TF32:-0}
OUT=bench/results
WORK=${SKIPGRAPH_CUDA_WORK:-/tmp/skipgraph-cuda}
mode=run
case "${1:-}" in
--dry-run) mode=dry ;;
--prepare) mode=prepare ;;
--table) mode=table ;;
"") ;;
*) echo "cuda.sh: unknown argument $1 (want --dry-run, --prepare or --table FILE)" >&2; exit 2 ;;
esac

die() { echo "cuda.sh: $*" >&2; exit 2; }
note() { echo "== $*" >&2; }

# peak figures (dense, TFLOP/s) of the GPU named $1: fp32 on CUDA cores, and bf16 tensor cores.
# H200 SXM: 67 fp32, 989 bf16 dense (NVIDIA's H200 datasheet gives 1,979 with 2:4 sparsity);
# H200 NVL: 60 and 835; H100 SXM: 67 and 989; A100: 19.5 and 312.
gpu_peaks() {
	case "$1" in
	*H200*NVL*) echo "60 835" ;;
	*H200*) echo "67 989" ;;
	*H100*PCIe*) echo "51 756" ;;
	*H100*) echo "67 989" ;;
	*A100*) echo "19.5 312" ;;
	*) echo "0 0" ;;
	esac
}

# table FILE: markdown table of the results (one JSON object a line, written below).
table() {
	"${PYTHON:-python3}" - "$1" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
meta = next((r for r in rows if r.get("kind") == "meta"), {})
p32, p16 = meta.get("peak_fp32_tflops", 0), meta.get("peak_bf16_tflops", 0)
res = {(r["tool"], r["case"], r["batch"]): r for r in rows if r.get("kind") == "step"}
print(f"GPU: {meta.get('gpu', '?')}; peaks used: {p32} TFLOP/s dense fp32, {p16} TFLOP/s dense bf16; "
      f"TF32 {'on' if meta.get('tf32') else 'off'}; {meta.get('steps', '?')} timed steps after 1 warm-up, median.")
print()
print("| case | batch | skipgraph step ms | PyTorch step ms | x PyTorch | skipgraph peak GPU MiB | PyTorch peak GPU MiB | matmul GFLOP/step | skipgraph TFLOP/s (% fp32, % bf16 peak) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for (tool, case, batch), r in sorted(res.items(), key=lambda kv: (kv[0][1], kv[0][2])):
    if tool != "skipgraph":
        continue
    t = res.get(("torch", case, batch), {})
    ms, tms = r.get("median_ms"), t.get("median_ms")
    ratio = f"{ms / tms:.2f}" if ms and tms else "-"
    fl = r.get("step_flops", 0)
    tf = fl / (ms / 1000) / 1e12 if ms and fl else 0
    share = f"{tf:.1f} ({100 * tf / p32:.0f}%, {100 * tf / p16:.1f}%)" if p32 and p16 and tf else (f"{tf:.1f}" if tf else "-")
    fmt = lambda x: f"{x:.1f}" if isinstance(x, (int, float)) else "-"
    print(f"| {case} | {batch} | {fmt(ms)} | {fmt(tms)} | {ratio} | {fmt(r.get('peak_gpu_mib'))} | {fmt(t.get('peak_gpu_mib'))} | {fl / 1e9:.1f} | {share} |")
EOF
}

# into_markdown RESULTS MD LINE: puts LINE and the table of RESULTS between the cuda-bench
# markers of MD (appending a section when MD has none), through a temporary file.
into_markdown() {
	"${PYTHON:-python3}" - "$1" "$2" "$3" "$(table "$1")" <<'EOF'
import os, re, sys
new = "<!-- cuda-bench:begin -->\n" + sys.argv[3] + "\n\n" + sys.argv[4].strip() + "\n<!-- cuda-bench:end -->"
doc = open(sys.argv[2]).read()
pat = re.compile(r"<!-- cuda-bench:begin -->.*?<!-- cuda-bench:end -->", re.S)
if pat.search(doc):
    doc = pat.sub(lambda m: new, doc)
else:
    doc = doc.rstrip() + "\n\n## Training step on CUDA (bench/cuda.sh)\n\n" + new + "\n"
tmp = sys.argv[2] + ".tmp"
with open(tmp, "w") as f:
    f.write(doc)
os.replace(tmp, sys.argv[2])
EOF
}

if [[ $mode == table ]]; then
	[[ -f "${2:-}" ]] || die "--table needs a results file"
	if [[ -n "${3:-}" ]]; then
		into_markdown "$2" "$3" "Results of $2."
	else
		table "$2"
	fi
	exit 0
fi

BIN=$ROOT/bin/cuda
if [[ $mode == prepare ]]; then
	command -v go >/dev/null || die "--prepare needs Go"
	mkdir -p "$BIN"
	export CGO_ENABLED=1
	go build -trimpath -ldflags "-s -w" -o "$BIN/skipgraph" ./cmd/skipgraph
	go build -trimpath -ldflags "-s -w" -o "$BIN/stepbench" ./bench/stepbench
	go test -c -trimpath -ldflags "-s -w" -o "$BIN/bundle.test" ./bundle
	go test -c -trimpath -ldflags "-s -w" -o "$BIN/train.test" ./train
	lib=$(bash scripts/fetch-ort.sh)
	gzip -c "$lib" >"$BIN/libonnxruntime.so.1.gz"
	for f in skipgraph stepbench bundle.test train.test; do gzip -f "$BIN/$f"; done
	# the PyTorch reference model, which lives beside the repository (the fixture is in testdata)
	if [[ -f "$ROOT/../shared/tools/clipref.py" ]]; then
		mkdir -p "$BIN/shared/tools"
		cp "$ROOT/../shared/tools/clipref.py" "$BIN/shared/tools/"
	fi
	du -sh "$BIN" >&2
	echo "$BIN"
	exit 0
fi

# --- the GPU ---------------------------------------------------------------------------------
gpu=""
if command -v nvidia-smi >/dev/null 2>&1; then
	gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true)
fi
if [[ -z "$gpu" ]]; then
	if [[ $mode == dry ]]; then
		note "no NVIDIA GPU found (dry run goes on)"
	else
		die "no NVIDIA GPU found (nvidia-smi lists none); run this on a machine with one, or use --dry-run"
	fi
fi
read -r peak32 peak16 < <(gpu_peaks "$gpu")

# --- tools: Go, or the binaries --prepare made ------------------------------------------------
mkdir -p "$WORK" "$OUT"
# Prepared binaries win: a GPU machine without network may have Go but not the modules.
if [[ -f "$BIN/skipgraph.gz" ]]; then
	have_go=0
	note "using the binaries prepared in $BIN"
elif command -v go >/dev/null 2>&1; then
	have_go=1
else
	die "Go is not installed and $BIN has no prepared binaries; run 'bash bench/cuda.sh --prepare' on a machine with Go first"
fi
# tool NAME: path of a built tool
tool() {
	if [[ $have_go == 1 ]]; then
		echo "$WORK/$1"
	else
		echo "$WORK/prepared/$1"
	fi
}

# --- Python site-packages: onnxruntime-gpu's providers, NVIDIA's CUDA libraries ----------------
PYTHON=${PYTHON:-python3}
sites=()
if command -v "$PYTHON" >/dev/null 2>&1; then
	while IFS= read -r d; do [[ -d "$d" ]] && sites+=("$d"); done < <("$PYTHON" -c 'import site, sys
for d in site.getsitepackages() + [site.getusersitepackages()] + sys.path: print(d)' 2>/dev/null | sort -u)
fi
capi=${SKIPGRAPH_CUDA_PROVIDER_DIR:-}
libdirs=()
for d in "${sites[@]}"; do
	if [[ -z "$capi" && -f "$d/onnxruntime/capi/libonnxruntime_providers_cuda.so" ]]; then
		capi="$d/onnxruntime/capi"
	fi
	for l in "$d"/nvidia/*/lib; do [[ -d "$l" ]] && libdirs+=("$l"); done
done
ldpath=$(IFS=:; echo "${libdirs[*]:-}")
note "gpu: ${gpu:-none}; peaks fp32 $peak32, bf16 $peak16 TFLOP/s (dense)"
note "provider folder: ${capi:-none found}"
note "CUDA library folders: ${ldpath:-none found}"
torch_ok=0
if [[ ${SKIP_TORCH:-0} != 1 ]] && "$PYTHON" -c 'import torch' >/dev/null 2>&1; then torch_ok=1; fi
note "PyTorch: $([[ $torch_ok == 1 ]] && "$PYTHON" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)' || echo "not used")"
clipref=${CLIPREF:-}
for c in "$ROOT/shared/tools" "$ROOT/../shared/tools" "$BIN/shared/tools"; do
	[[ -z "$clipref" && -f "$c/clipref.py" ]] && clipref=$c
done
fixture=""
c="$ROOT/testdata/clip-hf-tiny/model.onnx"
[[ -f "$c" ]] && fixture=$c
note "clipref: ${clipref:-not found}; fixture: ${fixture:-not found}"

plan="setup --cuda, doctor"
[[ ${SKIP_TESTS:-0} == 1 ]] || plan+=", CUDA tests (bundle, train)"
plan+=", ViT-B/16 steps (full, lskip_cskip, lskip_cskip_bf16) x batch 4, 32 with stepbench -device cuda"
[[ $torch_ok == 1 && -n "$clipref" ]] && plan+=" and torch_step.py --device cuda"
note "plan: $plan"
if [[ $mode == dry ]]; then
	[[ -n "$capi" ]] || note "would stop here: no onnxruntime/capi with libonnxruntime_providers_cuda.so (pip install onnxruntime-gpu==1.30.0, or set SKIPGRAPH_CUDA_PROVIDER_DIR)"
	exit 0
fi
[[ -n "$capi" ]] || die "no CUDA provider libraries: no site-packages/onnxruntime/capi/libonnxruntime_providers_cuda.so and SKIPGRAPH_CUDA_PROVIDER_DIR unset; install onnxruntime-gpu==1.30.0 or point SKIPGRAPH_CUDA_PROVIDER_DIR at the providers"
export LD_LIBRARY_PATH="${ldpath}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# --- build (or unpack) ----------------------------------------------------------------------
if [[ $have_go == 1 ]]; then
	go build -o "$WORK/skipgraph" ./cmd/skipgraph
	go build -o "$WORK/stepbench" ./bench/stepbench
	lib=$(bash scripts/fetch-ort.sh 2>/dev/null || true)
	if [[ -z "$lib" ]]; then
		die "ONNX Runtime's core library is not cached and cannot be fetched here; run 'bash bench/cuda.sh --prepare' where it can be, and carry bin/cuda"
	fi
else
	mkdir -p "$WORK/prepared"
	for f in skipgraph stepbench bundle.test train.test; do
		gunzip -c "$BIN/$f.gz" >"$WORK/prepared/$f"
		chmod +x "$WORK/prepared/$f"
	done
	lib=""
fi
# the providers go beside a private copy of the core library, so nothing else is touched
ortdir="$WORK/ort"
mkdir -p "$ortdir"
if [[ -n "$lib" ]]; then cp -f "$lib" "$ortdir/libonnxruntime.so.1"; else gunzip -c "$BIN/libonnxruntime.so.1.gz" >"$ortdir/libonnxruntime.so.1"; fi
export ONNXRUNTIME_LIB="$ortdir/libonnxruntime.so.1"
SG=$(tool skipgraph)
SKIPGRAPH_CUDA_PROVIDER_DIR="$capi" "$SG" setup --cuda --dir "$ortdir"
"$SG" doctor | tee "$OUT/cuda-doctor.txt"

# --- CUDA tests -------------------------------------------------------------------------------
status=0
if [[ ${SKIP_TESTS:-0} != 1 ]]; then
	[[ -n "$fixture" ]] || die "the fixture testdata/clip-hf-tiny is missing (make fixtures writes it)"
	note "CUDA tests"
	if [[ $have_go == 1 ]]; then
		SKIPGRAPH_CUDA=1 go test -count=1 -v -run 'TestCUDA' ./bundle ./train 2>&1 | tee "$OUT/cuda-tests.txt" | grep -E '^(=== RUN|--- |    |ok|FAIL|PASS)' || true
		grep -q -- '--- FAIL\|^FAIL' "$OUT/cuda-tests.txt" && status=1
	else
		for p in bundle train; do
			(cd "$ROOT/$p" && SKIPGRAPH_CUDA=1 "$(tool $p.test)" -test.count=1 -test.v -test.run 'TestCUDA') 2>&1 | tee -a "$OUT/cuda-tests.txt" | grep -E '^(=== RUN|--- |    |ok|FAIL|PASS)' || true
		done
		grep -q -- '--- FAIL\|^FAIL' "$OUT/cuda-tests.txt" && status=1
	fi
fi

# --- ViT-B/16 step benchmark ------------------------------------------------------------------
# gpu_peak_mib CMD...: runs CMD while sampling GPU 0's used memory every 50 ms; prints CMD's
# last output line with "peak_gpu_mib" (peak minus the idle level before the start) added.
gpu_peak_mib() {
	local base samples pid line peak
	base=$(nvidia-smi -i 0 --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1)
	samples=$(mktemp)
	nvidia-smi -i 0 --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 >"$samples" 2>/dev/null &
	pid=$!
	line=$("$@" | tail -n 1) || { kill "$pid" 2>/dev/null; rm -f "$samples"; return 1; }
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	peak=$(awk -v b="$base" 'BEGIN{m=b} $1+0>m{m=$1+0} END{print m-b}' "$samples")
	rm -f "$samples"
	echo "${line%\}},\"peak_gpu_mib\":$peak}"
}
SB=$(tool stepbench)
results="$OUT/cuda-step.jsonl"
echo "{\"kind\":\"meta\",\"gpu\":\"$gpu\",\"peak_fp32_tflops\":$peak32,\"peak_bf16_tflops\":$peak16,\"tf32\":$([[ $TF32 == 1 ]] && echo true || echo false),\"steps\":$STEPS}" >"$results"
[[ -f "$WORK/vb16/model.onnx" ]] || "$SG" synth --size vit-b-16 --opset 17 -o "$WORK/vb16" >/dev/null
for case in full lskip_cskip lskip_cskip_bf16; do
	# shellcheck disable=SC2054 # lskip,cskip is one argument
	case $case in
	full) flags=(--strategy full) ;;
	lskip_cskip) flags=(--strategy lskip,cskip --lskip-start 6 --cskip-ratio 0.5) ;;
	lskip_cskip_bf16) flags=(--strategy lskip,cskip --lskip-start 6 --cskip-ratio 0.5 --precision bf16) ;;
	esac
	d="$WORK/b-$case"
	rm -rf "$d"
	"$SG" convert "$WORK/vb16/model.onnx" -o "$d" "${flags[@]}" -q >/dev/null
	for batch in 4 32; do
		# matmul FLOPs of one step from skipgraph's cost model (same work on both sides)
		flops=$("$SG" plan "$WORK/vb16/model.onnx" --json --batch "$batch" --classes 100 | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
e = d["full"] if sys.argv[1] == "full" else d["chosen"]["estimate"]
t = e.get("total", e)
print(int(t["forward_flops"] + t["backward_flops"]))' "${case%_bf16}")
		in="$WORK/in-$case-$batch"
		rm -rf "$in"
		"$SB" -bundle "$d" -batch "$batch" -classes 100 -features-out "$in" >/dev/null
		note "skipgraph $case batch $batch"
		tf=()
		[[ $TF32 == 1 ]] && tf=(-tf32)
		line=$(gpu_peak_mib "$SB" -bundle "$d" -inputs "$in" -batch "$batch" -classes 100 -steps "$STEPS" -device cuda "${tf[@]}") || { status=1; continue; }
		echo "{\"kind\":\"step\",\"tool\":\"skipgraph\",\"case\":\"$case\",\"batch\":$batch,\"step_flops\":$flops,${line#\{}" | tee -a "$results"
		if [[ $torch_ok == 1 && -n "$clipref" ]]; then
			note "torch $case batch $batch"
			mode_t=lskip-cskip
			[[ $case == full ]] && mode_t=full
			tt=()
			[[ $TF32 == 1 ]] && tt=(--tf32)
			[[ $case == *_bf16 ]] && tt+=(--precision bf16)
			line=$(gpu_peak_mib "$PYTHON" bench/torch/torch_step.py --device cuda --mode "$mode_t" --batch "$batch" --classes 100 --omega 6 --steps "$STEPS" --clipref "$clipref" "${tt[@]}") || { status=1; continue; }
			echo "{\"kind\":\"step\",\"tool\":\"torch\",\"case\":\"$case\",\"batch\":$batch,\"step_flops\":$flops,${line#\{}" | tee -a "$results"
		fi
	done
done

# --- BENCHMARKS.md ----------------------------------------------------------------------------
table "$results"
if ! grep -q '"kind":"step"' "$results"; then
	die "no step was measured (see the errors above); BENCHMARKS.md is left as it was"
fi
into_markdown "$results" BENCHMARKS.md "Run of \`bash bench/cuda.sh\` on $(date -u +%Y-%m-%d), $gpu, $(nproc) CPU cores; ONNX Runtime $("$SG" version | sed -n 's/^onnxruntime *\([0-9.]*\).*/\1/p') with the CUDA provider from $capi."
note "table written into BENCHMARKS.md; raw results in $results"
exit "$status"
