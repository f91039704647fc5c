package clip

import (
	"fmt"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
)

// fusedOps are operators that only ONNX Runtime's graph optimiser writes (its contrib domain).
var fusedOps = map[string]bool{
	"Attention": true, "MultiHeadAttention": true, "GroupQueryAttention": true, "PackedAttention": true,
	"SkipLayerNormalization": true, "SkipSimplifiedLayerNormalization": true,
	"EmbedLayerNormalization": true, "SimplifiedLayerNormalization": true,
	"BiasGelu": true, "FastGelu": true, "QuickGelu": true, "Gelu": true, "BiasSplitGelu": true,
	"BiasAdd": true, "FusedMatMul": true, "FusedGemm": true, "FusedConv": true, "BiasSoftmax": true,
	"RotaryEmbedding": true, "MatMulNBits": true, "MatMulIntegerToFloat": true,
}

// checkFusions refuses graphs optimised by ONNX Runtime: any node of its contrib domain
// (com.microsoft) or a known fused operator.
func checkFusions(g *graph.Graph) error {
	for _, n := range g.Nodes() {
		if n.Domain == "com.microsoft" || (n.Domain != "" && n.Domain != "ai.onnx" && fusedOps[n.OpType]) {
			return errs.Input("node %s is ONNX Runtime's fused operator %s.%s: structure discovery needs the plain ONNX graph; export the model again without ONNX Runtime graph optimisation (no ORTOptimizer / optimum -O levels, graph_optimization_level ORT_DISABLE_ALL when saving)",
				nodeLabel(n), n.Domain, n.OpType)
		}
	}
	return nil
}

// nodeLabel names a node in messages: its quoted name, or its op and first output.
func nodeLabel(n *graph.Node) string {
	if n == nil {
		return "?"
	}
	if n.Name != "" {
		return fmt.Sprintf("%q", n.Name)
	}
	if o := n.Output(0); o != nil {
		return fmt.Sprintf("%s -> %q", n.OpType, o.Name)
	}
	return n.OpType
}

// errAt is an input error about the structure around a node.
func errAt(n *graph.Node, format string, args ...any) error {
	return errs.Input("node %s: "+format, append([]any{nodeLabel(n)}, args...)...)
}
