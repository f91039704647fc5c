#!/usr/bin/env bash
# Feeds bin/skipgraph the bad numbers, checkpoints, images and operators that docs/reliability.md
# lists, and prints one markdown row per probe: the input, the exit code, the peak RSS and the
# first line of standard error. Needs `make build` and /usr/bin/time; works in a scratch folder.
#
#   bash scripts/probe-limits.sh [SCRATCH]
set -uo pipefail
cd "$(dirname "$0")/.."
S="$PWD/bin/skipgraph"
w="${1:-/tmp/skipgraph-probe-limits}"
rm -rf "$w" && mkdir -p "$w" && cd "$w"
"$S" demo -o demo >/dev/null 2>&1 || { echo "demo failed" >&2; exit 1; }
B=demo/bundle D=demo/data M=demo/model/model.onnx

probe() { # probe "what" CMD...
	local what=$1; shift
	/usr/bin/time -f "%M" -o rss.txt "$@" >out.txt 2>err.txt
	local code=$?
	local line
	line=$(grep -v '^  ' err.txt | head -1 | sed "s#$w/##g; s#|#/#g" | cut -c1-150)
	printf '| %s | %d | %.0f MiB | %s |\n' "$what" "$code" "$(( $(tail -1 rss.txt) / 1024 ))" "$line"
}
manifest() { # manifest NAME PYTHON-EXPR: a copy of the bundle with the manifest edited
	rm -rf "$1" && cp -r "$B" "$1"
	python3 -c "import json,sys; m=json.load(open('$1/manifest.json')); $2; json.dump(m, open('$1/manifest.json','w'))"
}

echo "| input | exit | peak RSS | message |"
echo "| --- | --- | --- | --- |"
probe "train --threads -5" "$S" train $B --data $D -o o1 --threads -5
probe "train --threads 100000" "$S" train $B --data $D -o o1 --threads 100000
probe "eval --threads 100000" "$S" eval $B --data $D --threads 100000 --confusion ""
probe "eval --batch 0" "$S" eval $B --data $D --batch 0 --confusion ""
probe "train --batch 100000000" "$S" train $B --data $D -o o1 --batch 100000000
probe "train --epochs 1000000000" "$S" train $B --data $D -o o1 --epochs 1000000000
probe "train --warmup-lr NaN" "$S" train $B --data $D -o o1 --warmup-lr NaN
probe "train --checkpoint-every often" "$S" train $B --data $D -o o1 --checkpoint-every often
probe "train --decode-memory 1KiB" "$S" train $B --data $D -o o1 --decode-memory 1KiB
probe "plan --classes 100000000" "$S" plan $M --classes 100000000
probe "plan --classes 1048576 (the bound)" "$S" plan $M --classes 1048576
probe "convert --weight-decay -0.1" "$S" convert $M -o o2 --weight-decay -0.1
probe "convert --weight-decay NaN" "$S" convert $M -o o2 --weight-decay NaN
probe "convert --momentum NaN" "$S" convert $M -o o2 --momentum NaN
python3 - <<'PY'
import struct
h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 32, 32), }"
h += " " * (63 - (10 + len(h)) % 64) + "\n"
open("x.npy", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + bytes(4 * 3 * 32 * 32))
PY
probe "run --input x=a.npy --input x=a.npy" "$S" run $M --input pixel_values=x.npy --input pixel_values=x.npy
manifest m1 "m['text']['context_length']=1<<40"
probe "manifest text.context_length 1<<40" "$S" train m1 --data $D -o o1
manifest m2 "m['vision']['image_size']=1<<30"
probe "manifest vision.image_size 1<<30" "$S" eval m2 --data $D --confusion ""
manifest m3 "m['parameters'][0]['shape']=[1<<30,1<<30]"
probe "manifest parameter shape [2^30, 2^30]" "$S" train m3 --data $D -o o1
manifest m4 "m['cskip']['max']=1<<40"
probe "manifest cskip.max 1<<40" "$S" train m4 --data $D -o o1
manifest m5 "m['lr_groups']['text']=-1"
probe "manifest lr_groups.text -1" "$S" train m5 --data $D -o o1

# checkpoints: a run stopped at step 9 of an epoch with --checkpoint-every 4
"$S" train $B --data $D -o run --epochs 2 --checkpoint-every 4 -q >/dev/null 2>&1
ck() { # ck NAME PYTHON-EXPR: a copy of the run with its newest step checkpoint edited
	rm -rf "$1" && cp -r run "$1" && rm -rf "$1/params" && python3 - "$1" "$2" <<'PY'
import json, os, sys, glob
d = sys.argv[1]
run = json.load(open(d + "/run.json")); run["finished"] = False; json.dump(run, open(d + "/run.json", "w"))
f = sorted(glob.glob(d + "/checkpoints/*/checkpoint.json"), key=lambda p: json.load(open(p))["step"])[-1]
m = json.load(open(f)); exec(sys.argv[2]); json.dump(m, open(f, "w"))
PY
}
ck c1 "m['epoch']=99"
probe "checkpoint.json epoch 99" "$S" train --resume c1
ck c2 "m['cursor']=500"
probe "checkpoint.json cursor 500" "$S" train --resume c2
ck c3 "m['seed']=12345"
probe "checkpoint.json of another seed" "$S" train --resume c3
rm -rf c4 && cp -r run c4 && rm -rf c4/params && sed -i 's/"finished": true/"finished": false/' c4/run.json && echo '{"epoch": 1,' >"$(ls -d c4/checkpoints/* | tail -1)/checkpoint.json"
probe "checkpoint.json not JSON" "$S" train --resume c4

# images
mkdir -p img/a img/b && cp "$(find $D -name '*.png' | head -1)" img/b/
(cd "$OLDPWD" && go run ./bench/bigimages -o "$w/big" -big 11000 -deep 11000 >/dev/null 2>&1)
cp big/a/big.png img/a/
probe "train, one 11000x11000 8-bit PNG (484 MB of pixels)" "$S" train $B --data img -o o3 --epochs 1 --no-augment -q
cp big/b/deep0.png img/a/
probe "train, one 11000x11000 16-bit PNG" "$S" train $B --data img -o o4 --epochs 1 --no-augment -q
probe "same, --decode-memory 2GiB" "$S" train $B --data img -o o5 --epochs 1 --no-augment -q --decode-memory 2GiB

# operators
python3 - "$M" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
open("evil.onnx", "wb").write(b.replace(b"\x22\x07Softmax", b"\x22\x07EvilOpX", 1))  # a node's op_type
PY
probe "convert, a Softmax renamed EvilOpX" "$S" convert evil.onnx -o o6 -q
