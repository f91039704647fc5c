package grad

import (
	"fmt"

	"github.com/skipgraph/skipgraph/graph"
)

// Rule computes the gradients of a node's inputs from the gradients of its outputs. It reads the
// node through the Context and reports each input gradient with SetGI.
type Rule func(c *Context) error

// Support says how the backward pass treats an operator type.
type Support int

// Kinds of support.
const (
	// Unsupported means no rule is registered: a gradient that has to flow through such a node
	// is an error.
	Unsupported Support = iota
	// Differentiable means a rule is registered.
	Differentiable
	// NoGradient means the operator is a stop edge: its outputs carry no gradient to its inputs
	// (comparisons, shape queries, index computations, StopGradient).
	NoGradient
)

// String names the kind of support.
func (s Support) String() string {
	switch s {
	case Differentiable:
		return "differentiable"
	case NoGradient:
		return "no-gradient"
	}
	return "unsupported"
}

type ruleKey struct{ domain, op string }

type entry struct {
	rule Rule
	stop bool
}

var registry = map[ruleKey]entry{}

func normDomain(d string) string {
	if d == "ai.onnx" {
		return ""
	}
	return d
}

// Register adds the gradient rule of an operator of the default ONNX domain. It panics when a rule
// is already registered for it, which is a programming error.
func Register(op string, r Rule) { RegisterDomain("", op, r) }

// RegisterDomain adds the gradient rule of an operator of the given domain.
func RegisterDomain(domain, op string, r Rule) {
	k := ruleKey{normDomain(domain), op}
	if _, dup := registry[k]; dup {
		panic(fmt.Sprintf("grad: rule for %s registered twice", op))
	}
	registry[k] = entry{rule: r}
}

// RegisterNoGradient marks operators of the default domain as stop edges.
func RegisterNoGradient(ops ...string) {
	for _, op := range ops {
		k := ruleKey{"", op}
		if _, dup := registry[k]; dup {
			panic(fmt.Sprintf("grad: rule for %s registered twice", op))
		}
		registry[k] = entry{stop: true}
	}
}

// Supported reports how the backward pass treats op of domain ("" for ai.onnx).
func Supported(domain, op string) Support {
	e, ok := registry[ruleKey{normDomain(domain), op}]
	switch {
	case !ok:
		return Unsupported
	case e.stop:
		return NoGradient
	}
	return Differentiable
}

// Ops returns the registered operator types of the default domain with their support.
func Ops() map[string]Support {
	out := map[string]Support{}
	for k := range registry {
		if k.domain == "" {
			out[k.op] = Supported("", k.op)
		}
	}
	return out
}

// Context is what a rule sees: the forward node, the gradients flowing into its outputs, and a
// builder to emit the backward nodes with.
type Context struct {
	// Node is the forward node being differentiated.
	Node *graph.Node
	// B emits the backward nodes.
	B *graph.Builder
	// Opset is the model's default-domain opset; emitted nodes must be valid for it.
	Opset int64

	bw   *backward
	need []bool
	gout []*graph.Value
	gin  []*graph.Value
}

// I returns forward input i (nil when absent).
func (c *Context) I(i int) *graph.Value { return c.Node.Input(i) }

// O returns forward output i (nil when absent).
func (c *Context) O(i int) *graph.Value { return c.Node.Output(i) }

// Saved returns forward output i, first making the node produce it when it is an optional
// output the node leaves out (such as LayerNormalization's Mean and InvStdDev): a value the
// forward pass computes anyway is kept for the backward pass instead of recomputed. suffix
// names the new value after the node's first output; t is its type. On error Backward takes
// the output away again.
func (c *Context) Saved(i int, suffix string, t graph.Type) (*graph.Value, error) {
	if v := c.O(i); v != nil {
		return v, nil
	}
	name := suffix
	if o := c.O(0); o != nil {
		name = o.Name + "_" + suffix
	}
	v, err := c.Node.NewOutput(i, name, t)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	c.bw.newOutputs = append(c.bw.newOutputs, savedOutput{c.Node, i})
	return v, nil
}

// NumI returns the number of input slots of the node.
func (c *Context) NumI() int { return c.Node.NumInputs() }

// GO returns the gradient flowing into output i, or nil when none does.
func (c *Context) GO(i int) *graph.Value {
	if i < 0 || i >= len(c.gout) {
		return nil
	}
	return c.gout[i]
}

// Need reports whether the gradient of input i is wanted (the input is floating point and lies
// on a path from a parameter). Rules skip the work for inputs that are not needed.
func (c *Context) Need(i int) bool { return i >= 0 && i < len(c.need) && c.need[i] }

// SetGI sets the gradient of input i. It must have the input's shape and element type. Setting
// the gradient of an input that is not needed is allowed and ignored.
func (c *Context) SetGI(i int, v *graph.Value) {
	if !c.Need(i) || v == nil {
		return
	}
	c.gin[i] = v
}

// Errorf returns an error that names the node and its op type.
func (c *Context) Errorf(format string, args ...any) error {
	return fmt.Errorf("gradient of %s node %s: %s", c.Node.OpType, nodeName(c.Node), fmt.Sprintf(format, args...))
}

func nodeName(n *graph.Node) string {
	if n.Name != "" {
		return fmt.Sprintf("%q", n.Name)
	}
	if o := n.Output(0); o != nil {
		return fmt.Sprintf("producing %q", o.Name)
	}
	return "(unnamed)"
}

// DType returns the element type of v as far as it can be inferred (graph.Undefined if not).
func (c *Context) DType(v *graph.Value) graph.DType { return c.bw.inf.dtype(v) }

// Rank returns the rank of v as far as it can be inferred, or -1.
func (c *Context) Rank(v *graph.Value) int { return c.bw.inf.rank(v) }

// ConstInts returns the values of a constant integer tensor (an initializer or a Constant node's
// output), or false.
func (c *Context) ConstInts(v *graph.Value) ([]int64, bool) { return constInts(v) }
