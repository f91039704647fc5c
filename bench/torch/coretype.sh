# Sourced by bench/torch/run.sh and bench/run.sh: picks the OpenBLAS core type for PyTorch by
# measurement. OpenBLAS's own CPU detection can choose a slow generic kernel on virtual machines,
# so a fair PyTorch peer runs with OPENBLAS_CORETYPE set to the core type whose 2048^3 sgemm is
# fastest on this machine.
#
#   PY=/usr/bin/python3 THREADS=2; . bench/torch/coretype.sh; pick_coretype [RUNNER...]
#
# sets CORETYPE (the kernel OpenBLAS reported loading) and SGEMM_GFLOPS (its rate); RUNNER (e.g.
# a function that takes a lock) prefixes each measurement. Each candidate's rate goes to stderr.

CORETYPE_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# coretypes prints the OpenBLAS core types this CPU's flags allow, "auto" (OpenBLAS's own choice)
# first.
coretypes() {
  local f
  f="$(grep -m1 '^flags' /proc/cpuinfo) "
  echo auto Prescott Nehalem
  [[ $f == *" avx "* ]] && echo Sandybridge
  [[ $f == *" avx2 "* ]] && echo Haswell
  [[ $f == *" avx2 "* ]] && grep -qm1 AuthenticAMD /proc/cpuinfo && echo Zen
  [[ $f == *" avx512f "* ]] && echo SkylakeX
  [[ $f == *" avx512_bf16 "* ]] && echo Cooperlake
  [[ $f == *" amx_tile "* ]] && echo SapphireRapids
  return 0
}

# sgemm_line CORETYPE [RUNNER...]: one sgemm.py JSON line with that core type ("auto": unset).
sgemm_line() {
  local c=$1; shift
  if [ "$c" = auto ]; then
    "$@" env -u OPENBLAS_CORETYPE "$PY" "$CORETYPE_HERE/sgemm.py" --threads "$THREADS"
  else
    "$@" env OPENBLAS_CORETYPE="$c" "$PY" "$CORETYPE_HERE/sgemm.py" --threads "$THREADS"
  fi
}

# jfield JSON KEY: one field of a JSON object.
jfield() { "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

pick_coretype() {
  local best=0 c line rate core
  CORETYPE=
  for c in $(coretypes); do
    line=$(sgemm_line "$c" "$@")
    rate=$(jfield "$line" gflops)
    core=$(jfield "$line" core)
    echo "  sgemm 2048^3 on torch, OPENBLAS_CORETYPE=$c: $rate GFLOP/s (OpenBLAS kernel $core)" >&2
    if awk -v a="$rate" -v b="$best" 'BEGIN { exit !(a > b) }'; then
      best=$rate
      CORETYPE=$core
    fi
  done
  SGEMM_GFLOPS=$best
}
