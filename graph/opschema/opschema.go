// Package opschema knows the operators of ONNX's default domain (ai.onnx): which names exist,
// the opset each appeared in and the opset from which a deprecated one is gone. It lets a tool
// refuse a graph with an unknown or out-of-opset operator before building on it, as the ONNX
// checker would.
package opschema

//go:generate /usr/bin/python3 gen.py
//go:generate gofmt -w ops_gen.go

import "fmt"

// Op is an operator's lifetime in the default domain.
type Op struct {
	// Since is the opset the operator appeared in.
	Since int64
	// Removed is the opset from which the operator is deprecated (0: still current).
	Removed int64
}

// Lookup returns the lifetime of a default-domain operator.
func Lookup(opType string) (Op, bool) {
	op, ok := ops[opType]
	return op, ok
}

// LatestOpset is the newest default-domain opset the table knows.
func LatestOpset() int64 { return schemaOpset }

// IsDefaultDomain reports whether domain names ONNX's default operator set.
func IsDefaultDomain(domain string) bool { return domain == "" || domain == "ai.onnx" }

// Check says why opType cannot be used in a graph importing the given default-domain opset,
// or returns nil when it can.
func Check(opType string, opset int64) error {
	op, ok := ops[opType]
	switch {
	case !ok && opset > schemaOpset:
		return fmt.Errorf("%s is not an ONNX operator up to opset %d (the model imports opset %d, newer than skipgraph knows)", opType, schemaOpset, opset)
	case !ok:
		return fmt.Errorf("%s is not an ONNX operator", opType)
	case opset < op.Since:
		return fmt.Errorf("%s appeared in opset %d, but the model imports opset %d", opType, op.Since, opset)
	case op.Removed != 0 && opset >= op.Removed:
		return fmt.Errorf("%s is deprecated since opset %d and the model imports opset %d", opType, op.Removed, opset)
	}
	return nil
}
