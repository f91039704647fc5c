#!/usr/bin/env bash
# The benchmark suite: builds the tools, makes synthetic models, and measures each group with
# the commands BENCHMARKS.md quotes. Timings alternate the compared commands within one run and
# report medians, since a shared machine is noisy. Results go to bench/results/ (not tracked).
#
#   bash bench/run.sh            # everything (about 15-30 minutes on 2 cores)
#   bash bench/run.sh io convert # selected groups: io convert inspect build step plugin decode
#                                # features epoch (not in the default set: epoch takes ~25 min)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${SKIPGRAPH_BENCH_DIR:-/tmp/skipgraph-bench}"
out="bench/results"
mkdir -p "$work" "$out"
groups=("$@")
[[ ${#groups[@]} -gt 0 ]] || groups=(io convert inspect build step plugin decode)
want() { local g; for g in "${groups[@]}"; do [[ "$g" == "$1" ]] && return 0; done; return 1; }

go build -o "$work/skipgraph" ./cmd/skipgraph
go build -o "$work/stepbench" ./bench/stepbench
go build -o "$work/roundtrip" ./graph/onnxio/internal/roundtrip
SG="$work/skipgraph"

# timeit LABEL CMD...: wall seconds and peak RSS (KiB) of one run, appended to the results.
timeit() {
	local label=$1; shift
	/usr/bin/time -f "$label %e %M" -a -o "$out/times.txt" "$@" >/dev/null
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
report() { # report LABEL: median seconds and peak RSS MiB of LABEL's runs
	local s m
	s=$(awk -v l="$1" '$1==l {print $2}' "$out/times.txt" | median)
	m=$(awk -v l="$1" '$1==l {print $3}' "$out/times.txt" | sort -n | tail -1)
	printf '%-28s median %6.2f s   peak RSS %8.1f MiB\n' "$1" "$s" "$(echo "$m / 1024" | bc -l)"
}
: >"$out/times.txt"
{
echo "# skipgraph benchmarks, $(date -u +%Y-%m-%d), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"

if want io; then
	echo "## decode + encode of a ~600 MB model vs a plain copy (3 alternating runs, fresh processes)"
	[[ -f "$work/big.onnx" ]] || "$work/roundtrip" -gen 600 "$work/big.onnx" >/dev/null
	for i in 1 2 3; do
		rm -f "$work/copy.onnx" "$work/out.onnx"
		timeit copy-600MB "$work/roundtrip" -copy "$work/big.onnx" "$work/copy.onnx"
		timeit load+save-600MB "$work/roundtrip" "$work/big.onnx" "$work/out.onnx"
	done
	cmp "$work/big.onnx" "$work/out.onnx" && echo "(output byte-identical to the input)"
	report copy-600MB; report load+save-600MB
	ls -l "$work/big.onnx" | awk '{printf "file size %.1f MiB\n", $5/1048576}'
fi

if want convert || want inspect || want step || want features || want epoch; then
	for size in vit-b-32 vit-b-16; do
		[[ -f "$work/$size/model.onnx" ]] || "$SG" synth --size "$size" --opset 17 -o "$work/$size" >/dev/null
	done
fi

if want convert; then
	echo "## convert (load, discover, rewrite, backward, save) vs a plain copy of the bytes it writes (both durable: convert fsyncs, the copy is followed by sync)"
	for size in vit-b-32 vit-b-16; do
		for i in 1 2 3; do
			rm -rf "$work/b-$size" "$work/copy-$size"
			timeit "convert-$size" "$SG" convert "$work/$size/model.onnx" -o "$work/b-$size" --strategy lskip,cskip -q
			timeit "copy-$size" sh -c "cp -r '$work/b-$size' '$work/copy-$size' && sync '$work/copy-$size'/*"
		done
		report "convert-$size"; report "copy-$size"
		du -sm "$work/b-$size" | awk '{print "bundle size " $1 " MiB"}'
	done
fi

if want inspect; then
	echo "## inspect of a ViT-B/16 export"
	for i in 1 2 3 4 5; do timeit inspect-vit-b-16 "$SG" inspect "$work/vit-b-16/model.onnx"; done
	report inspect-vit-b-16
fi

if want build; then
	echo "## bundle graph build in memory (backward pass), ViT-B/16"
	go test -run '^$' -bench BuildViTB16 -benchtime 3x ./bundle | grep Benchmark
fi

if want step; then
	# Step figures as shares of the machine's limits, next to PyTorch eager, in one run: the
	# limits first (sgemm on ORT and on torch with the fastest OpenBLAS core type, vector-add
	# bandwidth), then STEP_ROUNDS rounds that alternate every case's skipgraph step and torch step
	# in fresh processes. bench/stepsummary turns the JSON lines into the table.
	THREADS=${THREADS:-2}
	PY=/usr/bin/python3
	rounds=${STEP_ROUNDS:-2}
	steps=${STEPS:-2}
	go build -o "$work/peak" ./bench/peak
	go build -o "$work/stepsummary" ./bench/stepsummary
	clipref=${CLIPREF:-$PWD/../shared/tools}
	jl="$out/step.jsonl"
	: >"$jl"
	echo "## one training step, batch 4, CPU, $THREADS threads: skipgraph (ORT) and PyTorch eager alternated, $rounds rounds of $steps timed steps (after 1 warm-up) per case"
	line=$("$work/peak" -threads "$THREADS")
	echo "{\"kind\":\"ort_peak\",${line#\{}" >>"$jl"
	torch=0
	if "$PY" -c 'import torch, numpy' 2>/dev/null && [[ -f "$clipref/clipref.py" ]]; then
		torch=1
		# shellcheck source=bench/torch/coretype.sh
		. bench/torch/coretype.sh
		pick_coretype
		echo "{\"kind\":\"torch_peak\",\"gflops\":$SGEMM_GFLOPS,\"coretype\":\"$CORETYPE\"}" >>"$jl"
		"$PY" -c 'import json, time, numpy as np
a = np.random.rand(1 << 24).astype(np.float32); b = np.random.rand(1 << 24).astype(np.float32); c = np.empty_like(a)
np.add(a, b, out=c); ts = []
for _ in range(5):
    t0 = time.perf_counter(); np.add(a, b, out=c); ts.append(time.perf_counter() - t0)
ts.sort(); print(json.dumps({"kind": "numpy_add", "gbs": 3 * a.nbytes / ts[2] / 1e9}))' >>"$jl"
	else
		echo "(PyTorch not importable by $PY, or $clipref/clipref.py missing: skipgraph figures only)"
	fi
	# case: LABEL SIZE CLASSES TORCH_MODE CONVERT_FLAGS...
	cases=(
		"b16-full vit-b-16 100 full --strategy full"
		"b16-lskip6-cskip vit-b-16 100 lskip-cskip --strategy lskip,cskip --lskip-start 6 --cskip-ratio 0.5"
		"b32-lskip6-cskip vit-b-32 10 lskip-cskip --strategy lskip,cskip --lskip-start 6 --cskip-ratio 0.5"
	)
	for c in "${cases[@]}"; do
		read -r label size classes mode flags <<<"$c"
		d="$work/step-$label"
		# bundles and step inputs are remade, so that they match the code just built
		rm -rf "$d" "$work/in-$label"
		# shellcheck disable=SC2086
		"$SG" convert "$work/$size/model.onnx" -o "$d" $flags -q >/dev/null
		"$work/stepbench" -bundle "$d" -batch 4 -classes "$classes" -threads "$THREADS" -features-out "$work/in-$label" >/dev/null
		# shellcheck disable=SC2086
		plan=$("$SG" plan "$work/$size/model.onnx" $flags --batch 4 --classes "$classes" --json | "$PY" -c 'import json, sys
j = json.load(sys.stdin); e = j["full"] if sys.argv[1] == "full" else j["chosen"]["estimate"]; t = e["total"]
print(json.dumps({"gflop": (t["forward_flops"] + t["backward_flops"]) / 1e9, "floor_mib": (2 * t["trainable_bytes"] + t["optimizer_bytes"] + t["activation_bytes"]) / 2**20,
  "trainable_mib": t["trainable_bytes"] / 2**20, "optimizer_mib": t["optimizer_bytes"] / 2**20, "activation_mib": t["activation_bytes"] / 2**20}))' "$mode")
		echo "{\"kind\":\"plan\",\"case\":\"$label\",${plan#\{}" >>"$jl"
		echo "{\"kind\":\"plan\",\"case\":\"$label-graphupdate\",${plan#\{}" >>"$jl"
		[[ $label == b32-* ]] && echo "{\"kind\":\"plan\",\"case\":\"$label-nospin\",${plan#\{}" >>"$jl"
	done
	for r in $(seq 1 "$rounds"); do
		# the limits again every round, so that the peak is sampled under the same load as the steps
		line=$("$work/peak" -threads "$THREADS")
		echo "{\"kind\":\"ort_peak\",${line#\{}" >>"$jl"
		if [[ $torch == 1 ]]; then
			echo "{\"kind\":\"torch_peak\",\"gflops\":$(jfield "$(sgemm_line "$CORETYPE")" gflops),\"coretype\":\"$CORETYPE\"}" >>"$jl"
		fi
		for c in "${cases[@]}"; do
			read -r label size classes mode flags <<<"$c"
			line=$("$work/stepbench" -bundle "$work/step-$label" -inputs "$work/in-$label" -threads "$THREADS" -steps "$steps" -warmup 1 | tail -n 1)
			echo "{\"kind\":\"skipgraph\",\"case\":\"$label\",\"round\":$r,${line#\{}" >>"$jl"
			# the same step with the optimizer update run by ORT inside the graph (train_step.onnx as written)
			line=$("$work/stepbench" -bundle "$work/step-$label" -inputs "$work/in-$label" -threads "$THREADS" -steps "$steps" -warmup 1 -update graph | tail -n 1)
			echo "{\"kind\":\"skipgraph\",\"case\":\"$label-graphupdate\",\"round\":$r,${line#\{}" >>"$jl"
			if [[ $label == b32-* ]]; then # the small step again, ORT's intra-op threads not spinning
				line=$("$work/stepbench" -bundle "$work/step-$label" -inputs "$work/in-$label" -threads "$THREADS" -steps "$steps" -warmup 1 \
					-config session.intra_op.allow_spinning=0 | tail -n 1)
				echo "{\"kind\":\"skipgraph\",\"case\":\"$label-nospin\",\"round\":$r,${line#\{}" >>"$jl"
			fi
			if [[ $torch == 1 ]]; then
				tail=$("$PY" -c 'import numpy, sys; print(",".join(str(int(x)) for x in numpy.load(sys.argv[1]).ravel()))' "$work/in-$label/cskip.tail.npy" 2>/dev/null || true)
				line=$(env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE="$CORETYPE" "$PY" bench/torch/torch_step.py --clipref "$clipref" --threads "$THREADS" \
					--mode "$mode" --size "$size" --batch 4 --classes "$classes" --omega 6 --cskip-tail "$tail" --steps "$steps" --warmup 1 | tail -n 1)
				echo "{\"kind\":\"torch\",\"case\":\"$label\",\"round\":$r,${line#\{}" >>"$jl"
			fi
		done
	done
	"$work/stepsummary" "$jl"
fi

if want features; then
	# Feature caching against the machine's limits, in one run: the ORT sgemm peak (bench/peak,
	# sampled again before each configuration), then the frozen image prefix of a ViT-B/16
	# LSkip+CSkip bundle over FEAT_IMAGES synthetic 224x224 PNG images under augmentation, each
	# configuration timing decoding alone, decoding and prefix in turn (sequential) and decoding
	# ahead of the prefix (pipelined), alternated within each of FEAT_ROUNDS rounds (medians).
	# The batch sizes alternate within each round too. The prefix's GFLOP come from the cost
	# model ('skipgraph plan'). Last, ORT's profile of one pipelined pass shows where the
	# prefix's time goes.
	THREADS=${THREADS:-2}
	PY=/usr/bin/python3
	n=${FEAT_IMAGES:-64}
	rounds=${FEAT_ROUNDS:-5}
	go build -o "$work/peak" ./bench/peak
	go build -o "$work/featbench" ./bench/featbench
	go build -o "$work/ortprof" ./bench/ortprof
	imgs="$work/feat-images-$n"
	[[ -d "$imgs" ]] || "$work/featbench" data -o "$imgs" -classes 4 -shots $(((n + 3) / 4)) -size 224
	d="$work/feat-vit-b-16"
	rm -rf "$d"
	"$SG" convert "$work/vit-b-16/model.onnx" -o "$d" --strategy lskip,cskip -q >/dev/null
	read -r gimg gtext < <("$SG" plan "$work/vit-b-16/model.onnx" --strategy lskip,cskip --classes 100 --json | "$PY" -c 'import json, sys
e = json.load(sys.stdin)["chosen"]["estimate"]; print(e["image_prefix_flops"] / 1e9, e["text_prefix_flops"] / 1e9)')
	jl="$out/features.jsonl"
	: >"$jl"
	echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "## feature cache, ViT-B/16 LSkip (omega 6) image prefix, $n images 224x224 PNG with augmentation, $THREADS ORT threads, $rounds rounds; cost model: $gimg GFLOP per image, $gtext GFLOP for 100 class prompts"
	# configuration: LABEL featbench flags
	# "trainer" decodes as the trainer does on a machine whose cores ORT's threads all take: one
	# decoder while the prefix runs (the trainer's batch is 8 on the CPU)
	configs=(
		"trainer -batch 8,16,32,64 -workers 1 -classes 100 -text-chunk 0,25"
		"all-cores -batch 8,32 -workers 0"
		"nospin -batch 8,32 -workers 1 -nospin"
	)
	# ORT's sgemm rate, sampled before each configuration and at the end
	sgemm() {
		local line
		line=$("$work/peak" -threads "$THREADS")
		echo "{\"kind\":\"ort_peak\",${line#\{}" >>"$jl"
		"$PY" -c 'import json, sys; print(json.loads(sys.argv[1])["ort_sgemm_gflops"])' "$line"
	}
	for c in "${configs[@]}"; do
		read -r label flags <<<"$c"
		peak=$(sgemm)
		# shellcheck disable=SC2086
		"$work/featbench" run -bundle "$d" -images "$imgs" -threads "$THREADS" -rounds "$rounds" -augment \
			-gflop-image "$gimg" -gflop-text "$gtext" -peak "$peak" $flags | sed "s/^{/{\"config\":\"$label\",/" >>"$jl"
	done
	sgemm >/dev/null
	# the shares are of the highest sgemm rate of the run: other load only lowers a sample
	samples=$("$PY" -c 'import json, sys
print(" ".join("%.0f" % json.loads(l)["ort_sgemm_gflops"] for l in open(sys.argv[1]) if "\"ort_peak\"" in l))' "$jl")
	best=$(tr ' ' '\n' <<<"$samples" | sort -n | tail -1)
	echo "ORT sgemm (2048^3) samples over the run, GFLOP/s: $samples; the shares are of the highest, $best"
	echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
	"$work/featbench" table -peak "$best" "$jl"
	for b in 8 32; do
		echo
		echo "ORT profile of one pipelined pass, batch $b, one decoder (first run left out):"
		rm -f "$work"/featprof_*.json
		"$work/featbench" run -bundle "$d" -images "$imgs" -threads "$THREADS" -rounds 1 -augment -batch "$b" -workers 1 \
			-profile "$work/featprof" >/dev/null
		"$work/ortprof" -top 8 "$work"/featprof_*.json
	done
fi

if want epoch; then
	# One LSkip+CSkip epoch at ViT-B/16 end to end, as a user runs it: CLASSES classes x SHOTS
	# synthetic 224x224 PNG images, 'skipgraph train' for 1 epoch with augmentation, batch 4.
	# Reports the process's wall time, the epoch's feature-cache time (decoding, augmentation,
	# image prefix) and its optimizer steps' time (both from the epoch record of metrics.jsonl),
	# and the epoch's time as a multiple of the step time alone.
	CLASSES=${CLASSES:-100}
	SHOTS=${SHOTS:-16}
	THREADS=${THREADS:-2}
	PY=/usr/bin/python3
	go build -o "$work/featbench" ./bench/featbench
	e="$work/epoch-$CLASSES-$SHOTS"
	if [[ ! -d "$e/data" ]]; then
		rm -rf "$e"
		mkdir -p "$e"
		"$work/featbench" data -o "$e/data" -classes "$CLASSES" -shots "$SHOTS" -size 224 -tokenizer "$e/tokenizer"
	fi
	d="$work/epoch-vit-b-16"
	rm -rf "$d" "$e/run"
	"$SG" convert "$work/vit-b-16/model.onnx" -o "$d" --strategy lskip,cskip -q >/dev/null
	echo "## one epoch, ViT-B/16 LSkip (omega 6) + CSkip (0.5), $CLASSES classes x $SHOTS shots, augmentation, batch 4, $THREADS ORT threads"
	/usr/bin/time -f "%e %M" -o "$e/time.txt" "$SG" train "$d" --data "$e/data" -o "$e/run" --epochs 1 --batch 4 --shots "$SHOTS" \
		--threads "$THREADS" --tokenizer "$e/tokenizer" -q >/dev/null
	"$PY" - "$e/time.txt" "$e/run/metrics.jsonl" "$CLASSES" "$SHOTS" <<'PY'
import json, sys
wall, rss = open(sys.argv[1]).read().split()[-2:]
wall, rss = float(wall), float(rss) / 1024
recs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
ep = [r for r in recs if r.get("type") == "epoch"][-1]
steps = sum(1 for r in recs if r.get("type") == "step")
c, s, t = ep["cache_time"], ep["step_time"], ep["time"]
print("| classes x shots | steps | process wall s | epoch s | feature cache s | steps s | other s | epoch / steps | process wall / steps | peak RSS MiB |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
print(f"| {sys.argv[3]} x {sys.argv[4]} | {steps} | {wall:.1f} | {t:.1f} | {c:.1f} | {s:.1f} | {t - c - s:.1f} | {t / s:.2f} | {wall / s:.2f} | {rss:.0f} |")
PY
fi

if want plugin; then
	echo "## plugin round trip (start, handshake, skeleton, plan) vs in-process, ViT-B/16"
	go test -run '^$' -bench RoundTrip -benchtime 10x ./plugin | grep Benchmark
fi

if want decode; then
	echo "## train on large images: peak RSS under the image-decoding budget (one 11000x11000 8-bit PNG, seven 6000x6000 16-bit ones; tiny model, 1 epoch, no augmentation)"
	[[ -f "$work/demo/bundle/manifest.json" ]] || "$SG" demo -o "$work/demo" >/dev/null 2>&1
	[[ -d "$work/bigimages" ]] || go run ./bench/bigimages -o "$work/bigimages"
	for i in 1 2; do
		for mem in 512MiB 1GiB 2GiB; do
			rm -rf "$work/bigrun"
			timeit "train-bigimages-$mem" "$SG" train "$work/demo/bundle" --data "$work/bigimages" -o "$work/bigrun" --epochs 1 --no-augment --threads 1 -q --decode-memory "$mem"
		done
		rm -rf "$work/smallrun"
		timeit train-small-images "$SG" train "$work/demo/bundle" --data "$work/demo/data" -o "$work/smallrun" --epochs 1 --no-augment --threads 1 -q
	done
	for mem in 512MiB 1GiB 2GiB; do report "train-bigimages-$mem"; done
	report train-small-images
fi
} | tee "$out/summary.txt"
