package rewrite

import "github.com/skipgraph/skipgraph/graph"

// DCE is dead-code elimination: it removes every node none of whose outputs reaches a graph
// output, then initializers and value_info entries nothing uses. Graph inputs are kept: they are
// the graph's interface.
var DCE = Register(&Pass{
	Name: "dce",
	Doc: `remove nodes and initializers that do not contribute to any graph output

A node is live when one of its outputs is a graph output or an input of a live node. Dead nodes
are removed together; unused initializers that are not graph inputs go too.`,
	Run: func(c *Context) (bool, error) { return EliminateDeadCode(c.Graph()) },
})

// EliminateDeadCode removes dead nodes and unused initializers from g and reports whether it
// removed anything.
func EliminateDeadCode(g *graph.Graph) (bool, error) {
	live := map[*graph.Node]bool{}
	var stack []*graph.Node
	mark := func(v *graph.Value) {
		if v == nil {
			return
		}
		if p, _ := v.Producer(); p != nil && !live[p] {
			live[p] = true
			stack = append(stack, p)
		}
	}
	for _, o := range g.Outputs {
		mark(o)
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, in := range n.Inputs() {
			mark(in)
		}
	}
	var dead []*graph.Node
	for _, n := range g.Nodes() {
		if !live[n] {
			dead = append(dead, n)
		}
	}
	changed := len(dead) > 0
	if changed {
		if err := g.RemoveNodes(dead...); err != nil {
			return false, err
		}
	}
	for _, v := range append([]*graph.Value(nil), g.Initializers...) {
		if v.NumUses() == 0 && !v.IsGraphOutput() && !v.IsGraphInput() {
			if err := g.RemoveInitializer(v); err != nil {
				return changed, err
			}
			changed = true
		}
	}
	return changed, nil
}
