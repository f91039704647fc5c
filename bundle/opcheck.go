package bundle

import (
	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/opschema"
	"github.com/skipgraph/skipgraph/strategy"
)

// opsHint says what to do about a node whose operator ONNX does not define at the model's opset.
const opsHint = "replace it with standard ONNX operators (https://onnx.ai/onnx/operators/) or export the model again with an opset that defines it"

// checkOps refuses a source model holding a default-domain node whose operator is not an ONNX
// operator of the opset the model imports: such a model fails the ONNX checker, and its
// bundle would too.
func checkOps(m *graph.Model, file string) error {
	opset := m.Opset("")
	for _, n := range m.Graph.Nodes() {
		if !opschema.IsDefaultDomain(n.Domain) {
			continue
		}
		if opset == 0 {
			return errs.Input("%s: node %s uses operator %s but the model imports no ai.onnx opset; export it again with an opset_import for the default domain", file, clip.NodeRef(n), n.OpType)
		}
		if err := opschema.Check(n.OpType, opset); err != nil {
			return errs.Input("%s: node %s: %w; %s", file, clip.NodeRef(n), err, opsHint)
		}
	}
	return nil
}

// checkPatchOps refuses a patch node whose operator is not an ONNX operator of the opset the
// bundle's graphs import (the source's, raised to what the backward pass needs).
func checkPatchOps(src *SourceModel, p *strategy.Patch) error {
	if p == nil {
		return nil
	}
	opset := bundleOpset(src.Model.Opset(""))
	for _, n := range p.Nodes {
		if !opschema.IsDefaultDomain(n.Domain) {
			continue // refused elsewhere: a patch adds standard operators only
		}
		if err := opschema.Check(n.OpType, opset); err != nil {
			return errs.Input("patch node %q: %w; a plan may add standard ONNX operators of opset %d only", n.Name, err, opset)
		}
	}
	return nil
}
