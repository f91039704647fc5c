#!/bin/sh
# Times training steps of several bundles side by side: each round runs every case once, in a
# fresh stepbench process (so each peak RSS belongs to that step alone), and the rounds
# alternate the cases so that a noisy machine slows them alike. Prints one JSON line per run and,
# at the end, the median step time and median peak RSS of each case.
#
#   bench/step.sh ROUNDS OUT.jsonl CASE...
#
# CASE is LABEL=BUNDLE_DIR,INPUTS_DIR[,stepbench flags separated by commas]; INPUTS_DIR holds the
# step inputs a features phase wrote (stepbench -bundle DIR -features-out INPUTS_DIR). Example:
#
#   go build -o /tmp/stepbench ./bench/stepbench
#   bench/step.sh 3 /tmp/step.jsonl full=/tmp/vb16/full,/tmp/in_full \
#       lskip_cskip=/tmp/vb16/lskip_cskip,/tmp/in_lc
set -eu
STEPBENCH=${STEPBENCH:-/tmp/stepbench}
STEPS=${STEPS:-3}
rounds=$1
out=$2
shift 2
: > "$out"
r=1
while [ "$r" -le "$rounds" ]; do
	for c in "$@"; do
		label=${c%%=*}
		rest=${c#*=}
		bundle=$(echo "$rest" | cut -d, -f1)
		inputs=$(echo "$rest" | cut -d, -f2)
		flags=$(echo "$rest" | cut -s -d, -f3- | tr ',' ' ')
		# shellcheck disable=SC2086
		line=$("$STEPBENCH" -bundle "$bundle" -inputs "$inputs" -steps "$STEPS" $flags | tail -n 1)
		echo "{\"case\":\"$label\",\"round\":$r,${line#\{}" | tee -a "$out"
	done
	r=$((r + 1))
done
echo
echo "case                 runs  median step ms  median peak RSS MiB"
# median prints the median of the numbers on stdin, one per line.
median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
for c in "$@"; do
	label=${c%%=*}
	runs=$(grep -c "\"case\":\"$label\"" "$out" || true)
	t=$(grep "\"case\":\"$label\"" "$out" | sed -E 's/.*"median_ms":([0-9.]+).*/\1/' | median)
	m=$(grep "\"case\":\"$label\"" "$out" | sed -E 's/.*"peak_rss_mib":([0-9.]+).*/\1/' | median)
	printf "%-20s %4d  %14.0f  %19.0f\n" "$label" "$runs" "$t" "$m"
done
