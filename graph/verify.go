package graph

import (
	"errors"
	"fmt"
	"sort"
)

// Verify checks the graph's invariants: value names unique, every node input produced by a node,
// a graph input or an initializer, use lists consistent with node inputs, producers consistent
// with node outputs, graph outputs defined, and no cycle.
func (g *Graph) Verify() error {
	var errs []error
	defined := map[*Value]bool{}
	names := map[string]*Value{}
	define := func(v *Value, what string) {
		if v.Name == "" {
			errs = append(errs, fmt.Errorf("%s has no name", what))
			return
		}
		if o := names[v.Name]; o != nil && o != v {
			errs = append(errs, fmt.Errorf("value name %q is defined twice", v.Name))
		}
		names[v.Name] = v
		defined[v] = true
		if g.values[v.Name] != v {
			errs = append(errs, fmt.Errorf("value %q is not registered in the graph", v.Name))
		}
	}
	for _, v := range g.Initializers {
		if v.Const == nil {
			errs = append(errs, fmt.Errorf("initializer %q has no tensor", v.Name))
		}
		define(v, "an initializer")
	}
	for _, v := range g.Inputs {
		if v.producer != nil {
			errs = append(errs, fmt.Errorf("graph input %q is also produced by node %s", v.Name, v.producer))
		}
		if !defined[v] {
			define(v, "a graph input")
		}
	}
	inGraph := map[*Node]bool{}
	for _, n := range g.nodes {
		inGraph[n] = true
		if n.graph != g {
			errs = append(errs, fmt.Errorf("node %s does not belong to this graph", n))
		}
		for i, o := range n.outputs {
			if o == nil {
				continue
			}
			if o.producer != n || o.index != i {
				errs = append(errs, fmt.Errorf("node %s: output %d %q names another producer", n, i, o.Name))
			}
			if defined[o] {
				errs = append(errs, fmt.Errorf("node %s: output %q is defined twice", n, o.Name))
			}
			define(o, "a node output")
		}
	}
	for _, n := range g.nodes {
		for i, in := range n.inputs {
			if in == nil {
				continue
			}
			if !defined[in] {
				errs = append(errs, fmt.Errorf("node %s: input %d %q is not produced by any node, input or initializer", n, i, in.Name))
			}
			found := false
			for _, u := range in.uses {
				if u.Node == n && u.Index == i {
					found = true
				}
			}
			if !found {
				errs = append(errs, fmt.Errorf("node %s: input %q lacks the matching use", n, in.Name))
			}
		}
	}
	for v := range defined {
		for _, u := range v.uses {
			if !inGraph[u.Node] || u.Node.Input(u.Index) != v {
				errs = append(errs, fmt.Errorf("value %q lists a stale use by %s", v.Name, u.Node))
			}
		}
	}
	for _, o := range g.Outputs {
		if !defined[o] {
			errs = append(errs, fmt.Errorf("graph output %q is not defined", o.Name))
		}
	}
	if len(errs) == 0 {
		if _, err := g.topoOrder(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 8 {
		errs = append(errs[:8], fmt.Errorf("and %d more problems", len(errs)-8))
	}
	return errors.Join(errs...)
}

// ErrCycle is returned (wrapped) when the graph has a cycle.
var ErrCycle = errors.New("the graph has a cycle")

// topoOrder returns a topological order that keeps the current node order wherever the
// dependencies allow it (stable Kahn's algorithm on node positions).
func (g *Graph) topoOrder() ([]*Node, error) {
	pos := make(map[*Node]int, len(g.nodes))
	for i, n := range g.nodes {
		pos[n] = i
	}
	indeg := make([]int, len(g.nodes))
	succ := make([][]int, len(g.nodes))
	for i, n := range g.nodes {
		seen := map[int]bool{}
		for _, in := range n.inputs {
			if in == nil || in.producer == nil {
				continue
			}
			p, ok := pos[in.producer]
			if !ok || seen[p] {
				continue
			}
			seen[p] = true
			indeg[i]++
			succ[p] = append(succ[p], i)
		}
	}
	h := &intHeap{}
	for i := range g.nodes {
		if indeg[i] == 0 {
			h.push(i)
		}
	}
	order := make([]*Node, 0, len(g.nodes))
	for h.len() > 0 {
		i := h.pop()
		order = append(order, g.nodes[i])
		for _, s := range succ[i] {
			indeg[s]--
			if indeg[s] == 0 {
				h.push(s)
			}
		}
	}
	if len(order) != len(g.nodes) {
		for i, d := range indeg {
			if d > 0 {
				return nil, fmt.Errorf("%w through node %s", ErrCycle, g.nodes[i])
			}
		}
	}
	return order, nil
}

// Sort reorders the nodes topologically, keeping the current order where dependencies allow.
func (g *Graph) Sort() error {
	order, err := g.topoOrder()
	if err != nil {
		return err
	}
	g.nodes = order
	return nil
}

type intHeap struct{ a []int }

func (h *intHeap) len() int { return len(h.a) }
func (h *intHeap) push(x int) {
	h.a = append(h.a, x)
	for i := len(h.a) - 1; i > 0; {
		p := (i - 1) / 2
		if h.a[p] <= h.a[i] {
			break
		}
		h.a[p], h.a[i] = h.a[i], h.a[p]
		i = p
	}
}
func (h *intHeap) pop() int {
	top := h.a[0]
	last := len(h.a) - 1
	h.a[0] = h.a[last]
	h.a = h.a[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h.a) && h.a[l] < h.a[m] {
			m = l
		}
		if r < len(h.a) && h.a[r] < h.a[m] {
			m = r
		}
		if m == i {
			break
		}
		h.a[i], h.a[m] = h.a[m], h.a[i]
		i = m
	}
	return top
}

// Clone returns a deep copy of the graph: new nodes and values with the same names, attributes
// copied, tensors and Src records shared.
func (g *Graph) Clone() *Graph {
	c := &Graph{Name: g.Name, Doc: g.Doc, Src: g.Src, values: make(map[string]*Value, len(g.values)), fresh: g.fresh}
	vmap := make(map[*Value]*Value, len(g.values))
	cp := func(v *Value) *Value {
		if v == nil {
			return nil
		}
		if x, ok := vmap[v]; ok {
			return x
		}
		x := &Value{Name: v.Name, Type: cloneType(v.Type), Doc: v.Doc, Const: v.Const, Src: v.Src, graph: c}
		vmap[v] = x
		if g.values[v.Name] == v {
			c.values[v.Name] = x
		}
		return x
	}
	for _, v := range g.Initializers {
		c.Initializers = append(c.Initializers, cp(v))
	}
	for _, v := range g.Inputs {
		c.Inputs = append(c.Inputs, cp(v))
	}
	for _, n := range g.nodes {
		m := &Node{Name: n.Name, OpType: n.OpType, Domain: n.Domain, Doc: n.Doc, Src: n.Src, graph: c}
		m.Attrs = make([]Attr, len(n.Attrs))
		for i, a := range n.Attrs {
			a.Ints = append([]int64(nil), a.Ints...)
			a.Floats = append([]float32(nil), a.Floats...)
			a.S = append([]byte(nil), a.S...)
			m.Attrs[i] = a
		}
		if n.Attrs == nil {
			m.Attrs = nil
		}
		for i, o := range n.outputs {
			x := cp(o)
			if x != nil {
				x.producer, x.index = m, i
			}
			m.outputs = append(m.outputs, x)
		}
		c.nodes = append(c.nodes, m)
	}
	for i, n := range g.nodes {
		m := c.nodes[i]
		for j, in := range n.inputs {
			m.SetInput(j, cp(in))
		}
	}
	for _, v := range g.Outputs {
		c.Outputs = append(c.Outputs, cp(v))
	}
	for _, v := range g.ValueInfo {
		c.ValueInfo = append(c.ValueInfo, cp(v))
	}
	// values registered but unattached (NewValue without a producer yet)
	names := make([]string, 0)
	for name, v := range g.values {
		if _, ok := vmap[v]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		cp(g.values[name])
	}
	return c
}

func cloneType(t Type) Type {
	t.Shape = append([]Dim(nil), t.Shape...)
	return t
}
