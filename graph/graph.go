package graph

import (
	"fmt"
	"strconv"
)

// Opset is an operator set import: a domain ("" for ai.onnx) and its version.
type Opset struct {
	Domain  string
	Version int64
}

// Model is a graph with its operator set imports and the codec's record of everything else in
// the file (producer, metadata, functions, ...).
type Model struct {
	// Graph is the main graph.
	Graph *Graph
	// IRVersion is the ONNX IR version.
	IRVersion int64
	// Opsets are the operator set imports, in file order.
	Opsets []Opset
	// Dir is the folder the model was read from; external data is resolved against it.
	Dir string
	// Src is the codec's original record of the model (everything but the graph).
	Src any
}

// Opset returns the imported version of a domain ("" or "ai.onnx" for the default), or 0.
func (m *Model) Opset(domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	for _, o := range m.Opsets {
		d := o.Domain
		if d == "ai.onnx" {
			d = ""
		}
		if d == domain {
			return o.Version
		}
	}
	return 0
}

// SetOpset sets the imported version of a domain, adding the import if absent.
func (m *Model) SetOpset(domain string, version int64) {
	for i, o := range m.Opsets {
		if o.Domain == domain || (domain == "" && o.Domain == "ai.onnx") {
			m.Opsets[i].Version = version
			return
		}
	}
	m.Opsets = append(m.Opsets, Opset{Domain: domain, Version: version})
}

// Clone returns a deep copy of the model's structure; tensors are shared (they are immutable).
func (m *Model) Clone() *Model {
	c := *m
	c.Opsets = append([]Opset(nil), m.Opsets...)
	c.Graph = m.Graph.Clone()
	return &c
}

// Use is one use of a value: input Index of Node.
type Use struct {
	Node  *Node
	Index int
}

// Value is a named edge of the graph: a graph input, an initializer, or a node output.
type Value struct {
	// Name is unique in the graph.
	Name string
	// Type is the element type and shape, as far as known.
	Type Type
	// Doc is the value's doc string.
	Doc string
	// Const is the initializer's tensor when the value is an initializer.
	Const *Tensor
	// Src is the codec's original record of the value's type information.
	Src any

	producer *Node
	index    int
	uses     []Use
	graph    *Graph
}

// Producer returns the node producing the value and the output index, or nil for graph inputs
// and initializers.
func (v *Value) Producer() (*Node, int) { return v.producer, v.index }

// Uses returns a copy of the list of uses.
func (v *Value) Uses() []Use { return append([]Use(nil), v.uses...) }

// NumUses returns the number of uses by nodes (graph outputs are not counted).
func (v *Value) NumUses() int { return len(v.uses) }

// IsInitializer reports whether the value is an initializer.
func (v *Value) IsInitializer() bool { return v.Const != nil }

// IsGraphInput reports whether the value is an input of its graph.
func (v *Value) IsGraphInput() bool {
	if v.graph == nil {
		return false
	}
	for _, in := range v.graph.Inputs {
		if in == v {
			return true
		}
	}
	return false
}

// IsGraphOutput reports whether the value is an output of its graph.
func (v *Value) IsGraphOutput() bool {
	if v.graph == nil {
		return false
	}
	for _, o := range v.graph.Outputs {
		if o == v {
			return true
		}
	}
	return false
}

// String returns the name.
func (v *Value) String() string { return v.Name }

// Node is one operator application.
type Node struct {
	// Name is the node name; it may be empty.
	Name string
	// OpType is the operator, e.g. MatMul.
	OpType string
	// Domain is the operator's domain ("" for ai.onnx).
	Domain string
	// Attrs are the attributes, in file order.
	Attrs []Attr
	// Doc is the node's doc string.
	Doc string
	// Src is the codec's original record of the node.
	Src any

	inputs  []*Value
	outputs []*Value
	graph   *Graph
}

// NumInputs returns the number of input slots (absent optional inputs count).
func (n *Node) NumInputs() int { return len(n.inputs) }

// NumOutputs returns the number of output slots.
func (n *Node) NumOutputs() int { return len(n.outputs) }

// Input returns input i, or nil when absent or out of range.
func (n *Node) Input(i int) *Value {
	if i < 0 || i >= len(n.inputs) {
		return nil
	}
	return n.inputs[i]
}

// Output returns output i, or nil when absent or out of range.
func (n *Node) Output(i int) *Value {
	if i < 0 || i >= len(n.outputs) {
		return nil
	}
	return n.outputs[i]
}

// Inputs returns a copy of the inputs (nil entries for absent optional inputs).
func (n *Node) Inputs() []*Value { return append([]*Value(nil), n.inputs...) }

// Outputs returns a copy of the outputs (nil entries for absent optional outputs).
func (n *Node) Outputs() []*Value { return append([]*Value(nil), n.outputs...) }

// Graph returns the graph the node belongs to, or nil once removed.
func (n *Node) Graph() *Graph { return n.graph }

// String names the node for messages: its name, or its op type and first output.
func (n *Node) String() string {
	if n.Name != "" {
		return fmt.Sprintf("%s (%s)", n.Name, n.OpType)
	}
	if len(n.outputs) > 0 && n.outputs[0] != nil {
		return fmt.Sprintf("%s -> %s", n.OpType, n.outputs[0].Name)
	}
	return n.OpType
}

// SetInput replaces input i (growing the input list with absent inputs if needed); v may be nil.
func (n *Node) SetInput(i int, v *Value) {
	for len(n.inputs) <= i {
		n.inputs = append(n.inputs, nil)
	}
	if old := n.inputs[i]; old != nil {
		old.removeUse(n, i)
	}
	n.inputs[i] = v
	if v != nil {
		v.uses = append(v.uses, Use{n, i})
	}
}

// NewOutput gives n a fresh value, named after name (made unique) with type t, as its output
// slot i, for an optional output the node does not yet produce (such as LayerNormalization's
// Mean); absent slots before i are added. It fails when slot i is already present.
func (n *Node) NewOutput(i int, name string, t Type) (*Value, error) {
	if i < 0 {
		return nil, fmt.Errorf("node %s: output slot %d", n, i)
	}
	if n.Output(i) != nil {
		return nil, fmt.Errorf("node %s: output %d is already %q", n, i, n.outputs[i].Name)
	}
	for len(n.outputs) <= i {
		n.outputs = append(n.outputs, nil)
	}
	v := n.graph.NewValue(name, t)
	v.producer, v.index = n, i
	n.outputs[i] = v
	return v, nil
}

// DropOutput removes n's output i, which nothing may use (nor be a graph output); trailing
// absent slots are trimmed. It undoes NewOutput.
func (n *Node) DropOutput(i int) error {
	v := n.Output(i)
	if v == nil {
		return nil
	}
	if len(v.uses) > 0 || v.IsGraphOutput() {
		return fmt.Errorf("node %s: output %q is still used", n, v.Name)
	}
	n.outputs[i] = nil
	for len(n.outputs) > 0 && n.outputs[len(n.outputs)-1] == nil {
		n.outputs = n.outputs[:len(n.outputs)-1]
	}
	if n.graph != nil && n.graph.values[v.Name] == v {
		delete(n.graph.values, v.Name)
	}
	v.producer, v.graph = nil, nil
	return nil
}

// AppendInput adds an input at the end.
func (n *Node) AppendInput(v *Value) { n.SetInput(len(n.inputs), v) }

func (v *Value) removeUse(n *Node, i int) {
	for k, u := range v.uses {
		if u.Node == n && u.Index == i {
			v.uses = append(v.uses[:k:k], v.uses[k+1:]...)
			return
		}
	}
}

// Attr returns the attribute with the given name, or nil.
func (n *Node) Attr(name string) *Attr {
	for i := range n.Attrs {
		if n.Attrs[i].Name == name {
			return &n.Attrs[i]
		}
	}
	return nil
}

// AttrInt returns an integer attribute or def when absent.
func (n *Node) AttrInt(name string, def int64) int64 {
	if a := n.Attr(name); a != nil {
		return a.I
	}
	return def
}

// AttrFloat returns a float attribute or def when absent.
func (n *Node) AttrFloat(name string, def float32) float32 {
	if a := n.Attr(name); a != nil {
		return a.F
	}
	return def
}

// AttrInts returns an integer-list attribute, or nil and false when absent.
func (n *Node) AttrInts(name string) ([]int64, bool) {
	if a := n.Attr(name); a != nil {
		return a.Ints, true
	}
	return nil, false
}

// AttrString returns a string attribute or def when absent.
func (n *Node) AttrString(name, def string) string {
	if a := n.Attr(name); a != nil {
		return string(a.S)
	}
	return def
}

// SetAttr sets an attribute, replacing one of the same name.
func (n *Node) SetAttr(a Attr) {
	for i := range n.Attrs {
		if n.Attrs[i].Name == a.Name {
			n.Attrs[i] = a
			return
		}
	}
	n.Attrs = append(n.Attrs, a)
}

// RemoveAttr removes an attribute if present.
func (n *Node) RemoveAttr(name string) {
	for i := range n.Attrs {
		if n.Attrs[i].Name == name {
			n.Attrs = append(n.Attrs[:i:i], n.Attrs[i+1:]...)
			return
		}
	}
}

// AttrType is the kind of an attribute, numbered as ONNX's AttributeProto.AttributeType.
type AttrType int32

// Attribute kinds.
const (
	AttrUndefined    AttrType = 0
	AttrFloat        AttrType = 1
	AttrInt          AttrType = 2
	AttrString       AttrType = 3
	AttrTensor       AttrType = 4
	AttrGraph        AttrType = 5
	AttrFloats       AttrType = 6
	AttrInts         AttrType = 7
	AttrStrings      AttrType = 8
	AttrTensors      AttrType = 9
	AttrGraphs       AttrType = 10
	AttrSparseTensor AttrType = 11
	AttrTypeProto    AttrType = 13
)

// Attr is a node attribute. Graph-valued and other rarely used kinds are kept only in Src, as
// read, and written back unchanged.
type Attr struct {
	Name        string
	Type        AttrType
	F           float32
	I           int64
	S           []byte
	T           *Tensor
	Floats      []float32
	Ints        []int64
	Strings     [][]byte
	Tensors     []*Tensor
	RefAttrName string
	Doc         string
	// Src is the codec's original record of the attribute.
	Src any
}

// IntAttr returns an integer attribute.
func IntAttr(name string, v int64) Attr { return Attr{Name: name, Type: AttrInt, I: v} }

// FloatAttr returns a float attribute.
func FloatAttr(name string, v float32) Attr { return Attr{Name: name, Type: AttrFloat, F: v} }

// IntsAttr returns an integer-list attribute.
func IntsAttr(name string, v ...int64) Attr {
	return Attr{Name: name, Type: AttrInts, Ints: append([]int64{}, v...)}
}

// FloatsAttr returns a float-list attribute.
func FloatsAttr(name string, v ...float32) Attr {
	return Attr{Name: name, Type: AttrFloats, Floats: append([]float32{}, v...)}
}

// StringAttr returns a string attribute.
func StringAttr(name, v string) Attr { return Attr{Name: name, Type: AttrString, S: []byte(v)} }

// TensorAttr returns a tensor attribute.
func TensorAttr(name string, t *Tensor) Attr { return Attr{Name: name, Type: AttrTensor, T: t} }

// Graph is a computation graph.
type Graph struct {
	// Name is the graph name.
	Name string
	// Doc is the graph's doc string.
	Doc string
	// Inputs are the graph inputs, in order.
	Inputs []*Value
	// Outputs are the graph outputs, in order.
	Outputs []*Value
	// Initializers are the initializer values, in order; each has Const set.
	Initializers []*Value
	// ValueInfo lists values that carry recorded type information (ONNX value_info), in order.
	ValueInfo []*Value
	// Src is the codec's original record of the graph.
	Src any

	nodes  []*Node
	values map[string]*Value
	fresh  int
}

// New returns an empty graph.
func New(name string) *Graph {
	return &Graph{Name: name, values: map[string]*Value{}}
}

// Nodes returns a copy of the node list, in graph order.
func (g *Graph) Nodes() []*Node { return append([]*Node(nil), g.nodes...) }

// NumNodes returns the number of nodes.
func (g *Graph) NumNodes() int { return len(g.nodes) }

// Value returns the value with the given name, or nil.
func (g *Graph) Value(name string) *Value { return g.values[name] }

// Values returns every named value (inputs, initializers, node outputs), in no fixed order.
func (g *Graph) Values() []*Value {
	out := make([]*Value, 0, len(g.values))
	for _, v := range g.values {
		out = append(out, v)
	}
	return out
}

// UniqueName returns a name starting with prefix that no value in the graph has.
func (g *Graph) UniqueName(prefix string) string {
	if _, taken := g.values[prefix]; !taken && prefix != "" {
		return prefix
	}
	for {
		g.fresh++
		name := prefix + "_" + strconv.Itoa(g.fresh)
		if _, taken := g.values[name]; !taken {
			return name
		}
	}
}

// NewValue creates an unattached value with a unique name derived from name. It is not an
// input, initializer or output until attached.
func (g *Graph) NewValue(name string, t Type) *Value {
	v := &Value{Name: g.UniqueName(name), Type: t, graph: g}
	g.values[v.Name] = v
	return v
}

// AddInput creates a graph input. It fails if the name is taken.
func (g *Graph) AddInput(name string, t Type) (*Value, error) {
	if g.values[name] != nil {
		return nil, fmt.Errorf("graph input %q: the name is taken", name)
	}
	v := &Value{Name: name, Type: t, graph: g}
	g.values[name] = v
	g.Inputs = append(g.Inputs, v)
	return v, nil
}

// AddInitializer creates an initializer value. It fails if the name is taken.
func (g *Graph) AddInitializer(name string, t *Tensor) (*Value, error) {
	if g.values[name] != nil {
		return nil, fmt.Errorf("initializer %q: the name is taken", name)
	}
	v := &Value{Name: name, Type: tensorValueType(t), Const: t, graph: g}
	g.values[name] = v
	g.Initializers = append(g.Initializers, v)
	return v, nil
}

func tensorValueType(t *Tensor) Type { return TensorType(t.DType, t.Dims...) }

// AttachValue registers an existing value (e.g. one read by a codec) in the graph under its name.
func (g *Graph) AttachValue(v *Value) error {
	if v.Name == "" {
		return fmt.Errorf("a value needs a name")
	}
	if old := g.values[v.Name]; old != nil && old != v {
		return fmt.Errorf("value %q is defined twice", v.Name)
	}
	v.graph = g
	g.values[v.Name] = v
	return nil
}

// AddOutput makes v a graph output.
func (g *Graph) AddOutput(v *Value) { g.Outputs = append(g.Outputs, v) }

// NewNode appends a node with the given inputs (nil for absent optional ones) and fresh output
// values named after outNames (made unique; "" gives an absent output).
func (g *Graph) NewNode(op, domain, name string, inputs []*Value, outNames []string, attrs ...Attr) *Node {
	n := &Node{Name: name, OpType: op, Domain: domain, Attrs: attrs, graph: g}
	for i, in := range inputs {
		n.SetInput(i, in)
	}
	for i, on := range outNames {
		if on == "" {
			n.outputs = append(n.outputs, nil)
			continue
		}
		v := g.NewValue(on, Type{})
		v.producer, v.index = n, i
		n.outputs = append(n.outputs, v)
	}
	g.nodes = append(g.nodes, n)
	return n
}

// AddNodeWithOutputs appends a node whose outputs are existing values with no producer, such as
// values a codec created. It fails if an output already has a producer or is an input/initializer.
func (g *Graph) AddNodeWithOutputs(n *Node, inputs, outputs []*Value) error {
	for _, o := range outputs {
		if o == nil {
			continue
		}
		if o.producer != nil || o.Const != nil || o.IsGraphInput() {
			return fmt.Errorf("node %s: output %q is already defined elsewhere", n, o.Name)
		}
	}
	n.graph = g
	n.inputs = nil
	for i, in := range inputs {
		n.SetInput(i, in)
	}
	n.outputs = append([]*Value(nil), outputs...)
	for i, o := range outputs {
		if o != nil {
			if err := g.AttachValue(o); err != nil {
				return err
			}
			o.producer, o.index = n, i
		}
	}
	g.nodes = append(g.nodes, n)
	return nil
}

// MoveAfter moves node n to just after node after in the node list (before the first node when
// after is nil). Use Sort to restore a topological order after larger edits.
func (g *Graph) MoveAfter(n, after *Node) {
	i := g.indexOf(n)
	if i < 0 {
		return
	}
	g.nodes = append(g.nodes[:i:i], g.nodes[i+1:]...)
	j := 0
	if after != nil {
		j = g.indexOf(after) + 1
	}
	g.nodes = append(g.nodes[:j], append([]*Node{n}, g.nodes[j:]...)...)
}

func (g *Graph) indexOf(n *Node) int {
	for i, m := range g.nodes {
		if m == n {
			return i
		}
	}
	return -1
}

// ReplaceAllUsesWith makes every use of old use new instead. Graph outputs are replaced only when
// outputsToo is set; otherwise a graph output old is an error.
func (g *Graph) ReplaceAllUsesWith(old, new *Value, outputsToo bool) error {
	if old == new {
		return nil
	}
	if old.IsGraphOutput() && !outputsToo {
		return fmt.Errorf("value %q is a graph output; replacing it changes the graph's interface", old.Name)
	}
	for _, u := range old.Uses() {
		u.Node.SetInput(u.Index, new)
	}
	if outputsToo {
		for i, o := range g.Outputs {
			if o == old {
				g.Outputs[i] = new
			}
		}
	}
	return nil
}

// RemoveNodes removes a set of nodes, all or nothing: it fails, changing nothing, when an output
// of a node in the set is used by a node outside it or is a graph output.
func (g *Graph) RemoveNodes(nodes ...*Node) error {
	set := make(map[*Node]bool, len(nodes))
	for _, n := range nodes {
		if n.graph != g {
			return fmt.Errorf("node %s is not in graph %q", n, g.Name)
		}
		set[n] = true
	}
	for _, n := range nodes {
		for _, o := range n.outputs {
			if o == nil {
				continue
			}
			if o.IsGraphOutput() {
				return fmt.Errorf("cannot remove node %s: its output %q is a graph output", n, o.Name)
			}
			for _, u := range o.uses {
				if !set[u.Node] {
					return fmt.Errorf("cannot remove node %s: its output %q is used by %s", n, o.Name, u.Node)
				}
			}
		}
	}
	for _, n := range nodes {
		for i, in := range n.inputs {
			if in != nil {
				in.removeUse(n, i)
			}
		}
	}
	kept := g.nodes[:0]
	for _, n := range g.nodes {
		if !set[n] {
			kept = append(kept, n)
		}
	}
	for i := len(kept); i < len(g.nodes); i++ {
		g.nodes[i] = nil
	}
	g.nodes = kept
	for _, n := range nodes {
		for _, o := range n.outputs {
			if o != nil {
				delete(g.values, o.Name)
				o.producer, o.graph = nil, nil
			}
		}
		g.ValueInfo = dropValues(g.ValueInfo, n.outputs)
		n.graph = nil
	}
	return nil
}

func dropValues(list []*Value, gone []*Value) []*Value {
	if len(list) == 0 {
		return list
	}
	drop := map[*Value]bool{}
	for _, v := range gone {
		if v != nil {
			drop[v] = true
		}
	}
	out := list[:0]
	for _, v := range list {
		if !drop[v] {
			out = append(out, v)
		}
	}
	return out
}

// RemoveInitializer removes an unused initializer.
func (g *Graph) RemoveInitializer(v *Value) error {
	if len(v.uses) > 0 || v.IsGraphOutput() {
		return fmt.Errorf("initializer %q is still used", v.Name)
	}
	for i, x := range g.Initializers {
		if x == v {
			g.Initializers = append(g.Initializers[:i:i], g.Initializers[i+1:]...)
			for j, in := range g.Inputs {
				if in == v {
					g.Inputs = append(g.Inputs[:j:j], g.Inputs[j+1:]...)
					break
				}
			}
			delete(g.values, v.Name)
			g.ValueInfo = dropValues(g.ValueInfo, []*Value{v})
			v.graph = nil
			return nil
		}
	}
	return fmt.Errorf("%q is not an initializer", v.Name)
}

// RemoveInput removes an unused graph input.
func (g *Graph) RemoveInput(v *Value) error {
	if len(v.uses) > 0 || v.IsGraphOutput() {
		return fmt.Errorf("input %q is still used", v.Name)
	}
	for i, x := range g.Inputs {
		if x == v {
			g.Inputs = append(g.Inputs[:i:i], g.Inputs[i+1:]...)
			if v.Const == nil {
				delete(g.values, v.Name)
				v.graph = nil
			}
			return nil
		}
	}
	return fmt.Errorf("%q is not a graph input", v.Name)
}

// InitializerToInput turns an initializer into a graph input of the same name and type (e.g. a
// trainable parameter fed by the trainer). The tensor is returned.
func (g *Graph) InitializerToInput(v *Value) (*Tensor, error) {
	if v.Const == nil {
		return nil, fmt.Errorf("%q is not an initializer", v.Name)
	}
	t := v.Const
	for i, x := range g.Initializers {
		if x == v {
			g.Initializers = append(g.Initializers[:i:i], g.Initializers[i+1:]...)
			break
		}
	}
	v.Const = nil
	v.Type = tensorValueType(t)
	if !v.IsGraphInput() {
		g.Inputs = append(g.Inputs, v)
	}
	return t, nil
}

// Rename renames a value.
func (g *Graph) Rename(v *Value, name string) error {
	if name == v.Name {
		return nil
	}
	if g.values[name] != nil {
		return fmt.Errorf("cannot rename %q to %q: the name is taken", v.Name, name)
	}
	delete(g.values, v.Name)
	v.Name = name
	g.values[name] = v
	return nil
}
