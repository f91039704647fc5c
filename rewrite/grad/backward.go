package grad

import (
	"errors"
	"fmt"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
)

// MinOpset is the oldest default-domain opset Backward accepts.
const MinOpset = 13

// RaisedOpset is the default-domain opset Backward moves a model to when its opset is older
// than 16 (Gather's gradient needs ScatterND with reduction="add", and CastLike needs 15). From
// 13 to 17 the operators of CLIP exports keep their signatures (the changes are new types and
// new optional attributes with defaults: Reshape-14 allowzero, Shape-15 start/end, Trilu-14,
// Scatter*-16 reduction, LayerNormalization-17), so the forward nodes stay valid.
const RaisedOpset = 17

// Options tunes Backward.
type Options struct {
	// Prefix starts the names of the nodes Backward adds; "grad" when empty.
	Prefix string
	// ZeroUnreached gives a parameter that has no path to the loss a gradient of zeros instead
	// of failing.
	ZeroUnreached bool
}

// Backward appends to m's graph the nodes computing the gradient of loss (a floating-point
// scalar, or a one-element tensor) with respect to each of params, and returns the gradient
// value of each parameter. A parameter is any value of the graph, typically a graph input or an
// initializer; its gradient has its shape and element type. Only nodes on a path from some
// parameter to the loss are differentiated. The graph outputs are left alone: callers add the
// gradients they want as outputs.
//
// The model's default-domain opset must be at least 13; one older than 16 is raised to 17.
// On error the graph and the opset are left as they were.
func Backward(m *graph.Model, loss *graph.Value, params []*graph.Value, opts Options) (map[*graph.Value]*graph.Value, error) {
	g := m.Graph
	if opts.Prefix == "" {
		opts.Prefix = "grad"
	}
	if loss == nil {
		return nil, fmt.Errorf("backward: no loss value")
	}
	if g.Value(loss.Name) != loss {
		return nil, fmt.Errorf("backward: loss %q is not a value of graph %q", loss.Name, g.Name)
	}
	oldOpset := m.Opset("")
	if oldOpset < MinOpset {
		return nil, errs.Input("backward: the model imports default-domain opset %d; skipgraph needs %d or newer (re-export the model with opset_version >= %d)", oldOpset, MinOpset, MinOpset)
	}
	bw := &backward{g: g, inf: newInfer(), opset: oldOpset, opts: opts}
	if dt := bw.inf.dtype(loss); dt != graph.Undefined && !dt.IsFloat() {
		return nil, fmt.Errorf("backward: loss %q is %s; it must be floating point", loss.Name, dt)
	}
	for _, p := range params {
		if p == nil || g.Value(p.Name) != p {
			return nil, fmt.Errorf("backward: parameter %v is not a value of graph %q", p, g.Name)
		}
		if dt := bw.inf.dtype(p); dt != graph.Undefined && !dt.IsFloat() {
			return nil, fmt.Errorf("backward: parameter %q is %s; only floating-point values have gradients", p.Name, dt)
		}
	}
	if oldOpset < 16 {
		m.SetOpset("", RaisedOpset)
		bw.opset = RaisedOpset
	}
	nInit := len(g.Initializers)
	grads, err := bw.run(loss, params)
	if err != nil {
		// Roll back: the added nodes only feed each other, the added initializers only them.
		_ = g.RemoveNodes(bw.added...)
		for _, v := range append([]*graph.Value(nil), g.Initializers[nInit:]...) {
			_ = g.RemoveInitializer(v)
		}
		for k := len(bw.newOutputs) - 1; k >= 0; k-- {
			_ = bw.newOutputs[k].n.DropOutput(bw.newOutputs[k].i)
		}
		m.SetOpset("", oldOpset)
		return nil, err
	}
	return grads, nil
}

type backward struct {
	g     *graph.Graph
	inf   *infer
	opset int64
	opts  Options
	added []*graph.Node

	contrib map[*graph.Value][]*graph.Value
	total   map[*graph.Value]*graph.Value
	// newOutputs are the optional outputs of forward nodes that rules made (Context.Saved).
	newOutputs []savedOutput
}

// savedOutput is output slot i of forward node n, made for the backward pass.
type savedOutput struct {
	n *graph.Node
	i int
}

// builder returns a builder whose node names start with the prefix and the forward node's name.
func (bw *backward) builder(n *graph.Node) *graph.Builder {
	name := n.Name
	if name == "" {
		name = n.OpType
		if o := n.Output(0); o != nil {
			name += "_" + o.Name
		}
	}
	return graph.NewBuilder(bw.g, bw.opts.Prefix+"/"+name)
}

func (bw *backward) track(b *graph.Builder) { bw.added = append(bw.added, b.Added...); b.Added = nil }

func (bw *backward) run(loss *graph.Value, params []*graph.Value) (map[*graph.Value]*graph.Value, error) {
	order, err := topoOrder(bw.g)
	if err != nil {
		return nil, err
	}
	// Forward reachability from the parameters, through floating-point values and past stop
	// edges only.
	fwd := map[*graph.Value]bool{}
	for _, p := range params {
		fwd[p] = true
	}
	for _, n := range order {
		if Supported(n.Domain, n.OpType) == NoGradient {
			continue
		}
		reached := false
		for _, in := range n.Inputs() {
			if in != nil && fwd[in] {
				reached = true
				break
			}
		}
		if !reached {
			continue
		}
		for _, o := range n.Outputs() {
			if o != nil && bw.inf.isFloat(o) {
				fwd[o] = true
			}
		}
	}
	if !fwd[loss] {
		if !bw.opts.ZeroUnreached {
			return nil, fmt.Errorf("backward: loss %q does not depend on any parameter", loss.Name)
		}
	}
	// Backward reachability from the loss, among the forward-reached values.
	needed := map[*graph.Value]bool{loss: fwd[loss]}
	var active []*graph.Node
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		on := false
		for _, o := range n.Outputs() {
			if o != nil && needed[o] {
				on = true
				break
			}
		}
		if !on {
			continue
		}
		active = append(active, n)
		for _, in := range n.Inputs() {
			if in != nil && fwd[in] && bw.inf.isFloat(in) {
				needed[in] = true
			}
		}
	}
	// Every active node needs a rule (or a stop edge) before anything is emitted.
	var missing []error
	for _, n := range active {
		if Supported(n.Domain, n.OpType) == Unsupported {
			missing = append(missing, fmt.Errorf("no gradient rule for op %s (node %s); the gradient from the loss to a parameter flows through it", opLabel(n), nodeName(n)))
		}
	}
	if len(missing) > 0 {
		if len(missing) > 5 {
			missing = append(missing[:5], fmt.Errorf("and %d more nodes without a rule", len(missing)-5))
		}
		return nil, errors.Join(missing...)
	}

	bw.contrib = map[*graph.Value][]*graph.Value{}
	bw.total = map[*graph.Value]*graph.Value{}
	if fwd[loss] {
		b := graph.NewBuilder(bw.g, bw.opts.Prefix+"/seed")
		c := &Context{B: b, Opset: bw.opset, bw: bw}
		var seed *graph.Value
		if bw.inf.rank(loss) == 0 {
			seed = c.Scalar(1, loss)
		} else {
			seed = c.filled(1, loss)
		}
		bw.track(b)
		bw.contrib[loss] = []*graph.Value{seed}
	}
	for _, n := range active {
		if err := bw.visit(n, needed); err != nil {
			return nil, err
		}
	}
	out := make(map[*graph.Value]*graph.Value, len(params))
	for _, p := range params {
		gv := bw.sum(p)
		if gv == nil {
			if !bw.opts.ZeroUnreached {
				return nil, fmt.Errorf("backward: parameter %q has no path to loss %q (pass Options.ZeroUnreached to get zeros)", p.Name, loss.Name)
			}
			b := graph.NewBuilder(bw.g, bw.opts.Prefix+"/zero")
			c := &Context{B: b, Opset: bw.opset, bw: bw}
			gv = c.ZerosLike(p)
			bw.track(b)
		}
		if gv.Const == nil && gv.Type.Elem == graph.Undefined && !gv.Type.HasShape {
			gv.Type = p.Type // the gradient has the parameter's type; record it for writers
		}
		out[p] = gv
	}
	return out, nil
}

func opLabel(n *graph.Node) string {
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return n.Domain + "::" + n.OpType
	}
	return n.OpType
}

// sum returns the total gradient of v, adding up its contributions (nil when there are none).
func (bw *backward) sum(v *graph.Value) *graph.Value {
	if t, ok := bw.total[v]; ok {
		return t
	}
	cs := bw.contrib[v]
	var t *graph.Value
	switch len(cs) {
	case 0:
	case 1:
		t = cs[0]
	default:
		b := graph.NewBuilder(bw.g, bw.opts.Prefix+"/sum_"+v.Name)
		t = b.Op("Sum", cs)
		bw.track(b)
	}
	bw.total[v] = t
	return t
}

func (bw *backward) visit(n *graph.Node, needed map[*graph.Value]bool) error {
	e := registry[ruleKey{normDomain(n.Domain), n.OpType}]
	if e.stop {
		return nil
	}
	gout := make([]*graph.Value, n.NumOutputs())
	has := false
	for i, o := range n.Outputs() {
		if o != nil {
			gout[i] = bw.sum(o)
			has = has || gout[i] != nil
			bw.hint(gout[i], o)
		}
	}
	if !has {
		return nil
	}
	need := make([]bool, n.NumInputs())
	anyNeed := false
	for i, in := range n.Inputs() {
		need[i] = in != nil && needed[in]
		anyNeed = anyNeed || need[i]
	}
	if !anyNeed {
		return nil
	}
	b := bw.builder(n)
	c := &Context{Node: n, B: b, Opset: bw.opset, bw: bw, need: need, gout: gout, gin: make([]*graph.Value, n.NumInputs())}
	err := e.rule(c)
	bw.track(b)
	if err != nil {
		return err
	}
	for i, gv := range c.gin {
		if gv != nil {
			in := n.Input(i)
			bw.contrib[in] = append(bw.contrib[in], gv)
		}
	}
	return nil
}

// hint records that gradient gv has the element type and shape of the forward value v.
func (bw *backward) hint(gv, v *graph.Value) {
	if gv == nil || gv.Type.HasShape || gv.Const != nil {
		return
	}
	bw.inf.hint(gv, v)
}

// topoOrder returns the nodes in a topological order (the graph's order where it allows).
func topoOrder(g *graph.Graph) ([]*graph.Node, error) {
	nodes := g.Nodes()
	pos := make(map[*graph.Node]int, len(nodes))
	for i, n := range nodes {
		pos[n] = i
	}
	state := make([]uint8, len(nodes)) // 0 new, 1 on stack, 2 done
	order := make([]*graph.Node, 0, len(nodes))
	type frame struct{ i, next int }
	for root := range nodes {
		if state[root] != 0 {
			continue
		}
		stack := []frame{{root, 0}}
		state[root] = 1
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			n := nodes[f.i]
			if f.next < n.NumInputs() {
				in := n.Input(f.next)
				f.next++
				if in == nil {
					continue
				}
				p, _ := in.Producer()
				if p == nil {
					continue
				}
				j, ok := pos[p]
				if !ok {
					continue
				}
				switch state[j] {
				case 1:
					return nil, fmt.Errorf("backward: %w through node %s", graph.ErrCycle, p)
				case 0:
					state[j] = 1
					stack = append(stack, frame{j, 0})
				}
				continue
			}
			state[f.i] = 2
			order = append(order, n)
			stack = stack[:len(stack)-1]
		}
	}
	return order, nil
}
