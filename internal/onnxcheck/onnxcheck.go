// Package onnxcheck runs ONNX's own model checker (the onnx Python package, Debian's
// python3-onnx) on files the tests write, so every graph skipgraph writes is held to ONNX's rules.
//
// Without python3-onnx the check is skipped with a message, unless SKIPGRAPH_REQUIRE_ONNX_CHECKER
// is set (CI sets it), in which case its absence fails the test.
package onnxcheck

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Python is the interpreter that has Debian's python3-onnx.
var Python = "/usr/bin/python3"

const script = `
import sys, onnx
newest = onnx.defs.onnx_opset_version()
for p in sys.argv[1:]:
    m = onnx.load(p, load_external_data=False)
    opset = max([i.version for i in m.opset_import if i.domain in ("", "ai.onnx")] or [0])
    if opset > newest:
        print("unchecked", p, "imports opset", opset, "but this onnx package knows opsets up to", newest)
        continue
    onnx.checker.check_model(p, full_check=True)
    for imp in m.opset_import:
        if imp.domain not in ("", "ai.onnx"):
            raise SystemExit(p + ": imports non-standard domain " + repr(imp.domain))
    for n in m.graph.node:
        if n.domain not in ("", "ai.onnx"):
            raise SystemExit(p + ": node " + n.name + " uses non-standard op " + n.domain + "::" + n.op_type)
print("ok")
`

// Available reports whether the checker can run here.
func Available() bool {
	return exec.Command(Python, "-c", "import onnx").Run() == nil
}

// Check runs onnx.checker.check_model(full_check=True) on each path and fails the test with the
// checker's message when one does not pass; it also fails on any op outside the ai.onnx domain.
// A model whose opset is newer than the installed onnx package knows (Debian's 1.12 knows up to
// 17) cannot be checked by it and is only logged.
func Check(t testing.TB, paths ...string) {
	t.Helper()
	if !Available() {
		if os.Getenv("SKIPGRAPH_REQUIRE_ONNX_CHECKER") != "" {
			t.Fatalf("the ONNX checker is required but %s cannot import onnx: apt-get install python3-onnx", Python)
		}
		t.Skipf("ONNX checker not run: %s cannot import onnx (apt-get install python3-onnx)", Python)
	}
	out, err := exec.Command(Python, append([]string{"-c", script}, paths...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("ONNX checker rejects %v: %v\n%s", paths, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "unchecked") {
			// The installed onnx package predates the model's opset; ONNX Runtime still loads it.
			t.Log("ONNX checker: " + line)
		}
	}
}
