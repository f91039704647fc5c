#!/usr/bin/env bash
# Runs govulncheck on the module. The vulnerability database is built locally from the
# golang.org/x/vulndb module (fetched through the Go module proxy, the one network these machines
# reach), so the check needs no other host.
#
# Exit status: 1 when code in this module reaches a vulnerability of a required module (raise
# that module). Vulnerabilities of the standard library are printed but do not fail the check:
# they belong to the Go toolchain building the code, and go away with a newer Go patch release.
set -euo pipefail
cd "$(dirname "$0")/.."

VULN_VERSION=v1.9.0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

vulndb=$(go mod download -json golang.org/x/vulndb@latest)
dir=$(printf '%s' "$vulndb" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
version=$(printf '%s' "$vulndb" | sed -n 's/^[[:space:]]*"Version": "\(.*\)",$/\1/p')
echo "vulnerability database: golang.org/x/vulndb@$version"
(cd "$work" && go run "golang.org/x/vulndb/cmd/indexdb@$version" -vulns "$dir/data/osv" -out "$work/db")

go run "golang.org/x/vuln/cmd/govulncheck@$VULN_VERSION" -db "file://$work/db" ./... || true
go run "golang.org/x/vuln/cmd/govulncheck@$VULN_VERSION" -db "file://$work/db" -format json ./... >"$work/findings.json"
/usr/bin/python3 - "$work/findings.json" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
dec, i, called = json.JSONDecoder(), 0, {}
while i < len(text):
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    obj, i = dec.raw_decode(text, i)
    f = obj.get("finding")
    if f and f["trace"][0].get("function"):
        called.setdefault(f["trace"][0]["module"], set()).add((f["osv"], f.get("fixed_version", "")))
std = called.pop("stdlib", set())
if std:
    key = lambda v: tuple(int(x) for x in v.lstrip("v").split(".") if x.isdigit())
    print("standard library (toolchain): %d reachable, all fixed by Go %s; build releases with that Go or newer"
          % (len(std), max((v for _, v in std), key=key)))
for mod, vulns in sorted(called.items()):
    for osv, fixed in sorted(vulns):
        print("module %s: %s reachable, fixed in %s" % (mod, osv, fixed))
sys.exit(1 if called else 0)
PY
