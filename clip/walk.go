package clip

import (
	"math"
	"slices"

	"github.com/skipgraph/skipgraph/graph"
)

// analyzer holds per-graph indexes used while matching patterns.
type analyzer struct {
	g     *graph.Graph
	opset int64
	order []*graph.Node
	pos   map[*graph.Node]int
	// deps maps a value to the graph inputs it depends on (bit set over g.Inputs, non-initializer).
	deps   map[*graph.Value]uint64
	inputs []*graph.Value

	lns     []*Norm
	lnByOut map[*graph.Value]*Norm
	lnByIn  map[*graph.Value][]*Norm
	lnNode  map[*graph.Node]*Norm
}

func newAnalyzer(m *graph.Model) *analyzer {
	g := m.Graph
	a := &analyzer{g: g, opset: m.Opset(""), pos: map[*graph.Node]int{}, deps: map[*graph.Value]uint64{}}
	for _, in := range g.Inputs {
		if in.Const == nil {
			a.inputs = append(a.inputs, in)
		}
	}
	a.order = topoOrder(g)
	for i, n := range a.order {
		a.pos[n] = i
	}
	for i, in := range a.inputs {
		if i < 64 {
			a.deps[in] = 1 << uint(i)
		}
	}
	for _, n := range a.order {
		var d uint64
		for _, in := range n.Inputs() {
			if in != nil {
				d |= a.deps[in]
			}
		}
		for _, o := range n.Outputs() {
			if o != nil {
				a.deps[o] = d
			}
		}
	}
	return a
}

// topoOrder returns the nodes in a topological order, keeping graph order where possible.
func topoOrder(g *graph.Graph) []*graph.Node {
	nodes := g.Nodes()
	pos := make(map[*graph.Node]int, len(nodes))
	for i, n := range nodes {
		pos[n] = i
	}
	done := make(map[*graph.Node]bool, len(nodes))
	out := make([]*graph.Node, 0, len(nodes))
	var visit func(n *graph.Node)
	visit = func(n *graph.Node) {
		done[n] = true
		for _, in := range n.Inputs() {
			if in == nil {
				continue
			}
			if p, _ := in.Producer(); p != nil && !done[p] {
				if _, ok := pos[p]; ok {
					visit(p)
				}
			}
		}
		out = append(out, n)
	}
	for _, n := range nodes {
		if !done[n] {
			visit(n)
		}
	}
	return out
}

// isConst reports whether v depends on no graph input.
func (a *analyzer) isConst(v *graph.Value) bool { return v != nil && a.deps[v] == 0 }

// inputsOf returns the graph inputs v depends on.
func (a *analyzer) inputsOf(v *graph.Value) []string {
	var out []string
	d := a.deps[v]
	for i, in := range a.inputs {
		if i < 64 && d&(1<<uint(i)) != 0 {
			out = append(out, in.Name)
		}
	}
	return out
}

func (a *analyzer) dependsOn(v, input *graph.Value) bool {
	return a.deps[v]&a.deps[input] != 0
}

func producer(v *graph.Value) *graph.Node {
	if v == nil {
		return nil
	}
	n, _ := v.Producer()
	return n
}

func producerOp(v *graph.Value, ops ...string) *graph.Node {
	if n := producer(v); n != nil && n.Domain == "" && slices.Contains(ops, n.OpType) {
		return n
	}
	return nil
}

// consumers returns the nodes using v, each once, in use order.
func consumers(v *graph.Value) []*graph.Node {
	var out []*graph.Node
	for _, u := range v.Uses() {
		if !slices.Contains(out, u.Node) {
			out = append(out, u.Node)
		}
	}
	return out
}

// other returns the input of a binary node that is not v (nil if both or neither are v).
func other(n *graph.Node, v *graph.Value) *graph.Value {
	switch {
	case n.Input(0) == v && n.Input(1) != v:
		return n.Input(1)
	case n.Input(1) == v && n.Input(0) != v:
		return n.Input(0)
	}
	return nil
}

// paramOf resolves v through Identity and Cast to an initializer, or returns nil.
func paramOf(v *graph.Value) *graph.Value {
	for i := 0; v != nil && i < 4; i++ {
		if v.Const != nil {
			return v
		}
		n := producerOp(v, "Identity", "Cast")
		if n == nil {
			return nil
		}
		v = n.Input(0)
	}
	return nil
}

// constTensor returns the tensor of an initializer or a Constant node's output.
func constTensor(v *graph.Value) *graph.Tensor {
	if v == nil {
		return nil
	}
	if v.Const != nil {
		return v.Const
	}
	n := producerOp(v, "Constant")
	if n == nil {
		return nil
	}
	if at := n.Attr("value"); at != nil && at.T != nil {
		return at.T
	}
	if at := n.Attr("value_int"); at != nil {
		return graph.FromInt64(nil, []int64{at.I})
	}
	if at := n.Attr("value_ints"); at != nil {
		return graph.FromInt64([]int64{int64(len(at.Ints))}, at.Ints)
	}
	if at := n.Attr("value_float"); at != nil {
		return graph.FromFloat32(nil, []float32{at.F})
	}
	if at := n.Attr("value_floats"); at != nil {
		return graph.FromFloat32([]int64{int64(len(at.Floats))}, at.Floats)
	}
	return nil
}

// constInts evaluates a small integer constant, following Identity, Cast, Unsqueeze, Squeeze,
// Reshape and Concat of constants.
func constInts(v *graph.Value) ([]int64, bool) {
	return constIntsDepth(v, 0)
}

func constIntsDepth(v *graph.Value, depth int) ([]int64, bool) {
	if v == nil || depth > 8 {
		return nil, false
	}
	if t := constTensor(v); t != nil {
		if t.NumElements() > 1<<16 {
			return nil, false
		}
		x, err := t.Int64s()
		if err != nil {
			f, err := t.Float64s()
			if err != nil {
				return nil, false
			}
			x = make([]int64, len(f))
			for i, y := range f {
				x[i] = int64(y)
			}
		}
		return x, true
	}
	n := producer(v)
	if n == nil || n.Domain != "" {
		return nil, false
	}
	switch n.OpType {
	case "Identity", "Cast", "Unsqueeze", "Squeeze", "Reshape":
		return constIntsDepth(n.Input(0), depth+1)
	case "Concat":
		var out []int64
		for _, in := range n.Inputs() {
			x, ok := constIntsDepth(in, depth+1)
			if !ok {
				return nil, false
			}
			out = append(out, x...)
		}
		return out, true
	}
	return nil, false
}

// constFloat evaluates a scalar floating-point constant (through Identity/Cast/Reshape/Squeeze).
func constFloat(v *graph.Value) (float64, bool) {
	for i := 0; v != nil && i < 4; i++ {
		if t := constTensor(v); t != nil {
			if t.NumElements() != 1 {
				return 0, false
			}
			f, err := t.Float64s()
			if err != nil {
				x, err := t.Int64s()
				if err != nil {
					return 0, false
				}
				return float64(x[0]), true
			}
			return f[0], true
		}
		n := producerOp(v, "Identity", "Cast", "Reshape", "Squeeze", "Unsqueeze")
		if n == nil {
			return 0, false
		}
		v = n.Input(0)
	}
	return 0, false
}

// lastConst evaluates the last element of a shape operand built by Concat, when it is constant.
func lastConst(v *graph.Value) (int64, bool) {
	for i := 0; v != nil && i < 6; i++ {
		if x, ok := constInts(v); ok {
			if len(x) == 0 {
				return 0, false
			}
			return x[len(x)-1], true
		}
		n := producerOp(v, "Concat", "Cast", "Identity")
		if n == nil || n.NumInputs() == 0 {
			return 0, false
		}
		v = n.Input(n.NumInputs() - 1)
	}
	return 0, false
}

// backward returns the nodes reachable backwards from the values in from, not expanding the
// producers of stop values; at most limit nodes (0: no limit).
func backward(from []*graph.Value, stop map[*graph.Value]bool, limit int) map[*graph.Node]bool {
	seen := map[*graph.Node]bool{}
	stack := append([]*graph.Value(nil), from...)
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if v == nil || stop[v] {
			continue
		}
		n := producer(v)
		if n == nil || seen[n] {
			continue
		}
		seen[n] = true
		if limit > 0 && len(seen) > limit {
			return seen
		}
		stack = append(stack, n.Inputs()...)
	}
	return seen
}

// forward returns the nodes reachable forwards from v; when within is not nil only its nodes
// are visited.
func forward(from []*graph.Value, within map[*graph.Node]bool) map[*graph.Node]bool {
	seen := map[*graph.Node]bool{}
	stack := append([]*graph.Value(nil), from...)
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, u := range v.Uses() {
			n := u.Node
			if seen[n] || (within != nil && !within[n]) {
				continue
			}
			seen[n] = true
			for _, o := range n.Outputs() {
				if o != nil {
					stack = append(stack, o)
				}
			}
		}
	}
	return seen
}

// sorted returns the nodes of a set in topological order.
func (a *analyzer) sorted(set map[*graph.Node]bool) []*graph.Node {
	out := make([]*graph.Node, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.SortFunc(out, func(x, y *graph.Node) int { return a.pos[x] - a.pos[y] })
	return out
}

// reaches reports whether target is reachable backwards from v within limit nodes, not
// expanding stop values.
func reaches(v, target *graph.Value, stop map[*graph.Value]bool, limit int) bool {
	if v == target {
		return true
	}
	seen := map[*graph.Node]bool{}
	stack := []*graph.Value{v}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if x == target {
			return true
		}
		if x == nil || stop[x] {
			continue
		}
		n := producer(x)
		if n == nil || seen[n] {
			continue
		}
		seen[n] = true
		if len(seen) > limit {
			return false
		}
		stack = append(stack, n.Inputs()...)
	}
	return false
}

func isFloatInit(v *graph.Value) bool {
	return v != nil && v.Const != nil && v.Const.DType.IsFloat()
}

func dims(v *graph.Value) []int64 {
	if v == nil || v.Const == nil {
		return nil
	}
	return v.Const.Dims
}

func round(x float64) int { return int(math.Round(x)) }

// dataFrom reports whether v is target, or target passed through Cast, Identity, Reshape,
// Squeeze, Unsqueeze or Flatten (not merely something computed from its shape).
func dataFrom(v, target *graph.Value) bool {
	for i := 0; v != nil && i < 8; i++ {
		if v == target {
			return true
		}
		n := producerOp(v, "Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten")
		if n == nil {
			return false
		}
		v = n.Input(0)
	}
	return false
}

// indexAncestors returns the nodes computing an index value, not looking past Shape and Size
// nodes (which read only shapes) and returning at most limit nodes.
func indexAncestors(v *graph.Value, limit int) map[*graph.Node]bool {
	seen := map[*graph.Node]bool{}
	stack := []*graph.Value{v}
	for len(stack) > 0 && len(seen) < limit {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := producer(x)
		if n == nil || seen[n] {
			continue
		}
		seen[n] = true
		if n.OpType == "Shape" || n.OpType == "Size" {
			continue
		}
		stack = append(stack, n.Inputs()...)
	}
	return seen
}
