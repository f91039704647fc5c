package grad

import (
	"github.com/skipgraph/skipgraph/graph"
)

// Domain is skipgraph's operator domain. Its operators are markers for the rewrite passes; none
// of them reaches a written graph.
const Domain = "ai.skipgraph"

// DomainVersion is the version of the ai.skipgraph operator set.
const DomainVersion = 1

// StopGradientOp is the marker operator (domain ai.skipgraph, one input, one output, identity in
// the forward pass) through which the backward pass lets no gradient flow.
const StopGradientOp = "StopGradient"

func init() {
	RegisterDomainNoGradient(Domain, StopGradientOp)
}

// RegisterDomainNoGradient marks operators of the given domain as stop edges.
func RegisterDomainNoGradient(domain string, ops ...string) {
	for _, op := range ops {
		k := ruleKey{normDomain(domain), op}
		if _, dup := registry[k]; dup {
			panic("grad: rule for " + op + " registered twice")
		}
		registry[k] = entry{stop: true}
	}
}

// InsertStopGradient puts a StopGradient marker after v: every node that used v uses the
// marker's output instead (graph outputs keep v). It imports the ai.skipgraph domain in m and
// returns the marker's output.
func InsertStopGradient(m *graph.Model, v *graph.Value) *graph.Value {
	g := m.Graph
	if m.Opset(Domain) == 0 {
		m.SetOpset(Domain, DomainVersion)
	}
	uses := v.Uses()
	n := g.NewNode(StopGradientOp, Domain, g.UniqueName(v.Name+"/StopGradient"), []*graph.Value{v}, []string{v.Name + "_nograd"})
	out := n.Output(0)
	out.Type = v.Type
	for _, u := range uses {
		u.Node.SetInput(u.Index, out)
	}
	if p, _ := v.Producer(); p != nil {
		g.MoveAfter(n, p)
	} else {
		g.MoveAfter(n, nil)
	}
	return out
}

// LowerStopGradients turns every StopGradient marker of m into an ONNX Identity and drops the
// ai.skipgraph import once no node of that domain remains. It returns the number of markers
// lowered. Run it before a graph is written.
func LowerStopGradients(m *graph.Model) int {
	count, others := 0, false
	for _, n := range m.Graph.Nodes() {
		if n.Domain != Domain {
			continue
		}
		if n.OpType == StopGradientOp {
			n.OpType, n.Domain, n.Attrs = "Identity", "", nil
			count++
			continue
		}
		others = true
	}
	if !others {
		for i, o := range m.Opsets {
			if o.Domain == Domain {
				m.Opsets = append(m.Opsets[:i:i], m.Opsets[i+1:]...)
				break
			}
		}
	}
	return count
}
