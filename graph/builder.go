package graph

import (
	"strconv"
)

// Builder appends nodes to a graph under a name prefix, for passes that emit many small ops.
// Nodes are named prefix/OpType_N and their outputs prefix/OpType_N_output_i.
type Builder struct {
	// G is the graph nodes are added to.
	G *Graph
	// Prefix starts every node name.
	Prefix string
	// Added lists the nodes this builder created, in order.
	Added []*Node
	count int
}

// NewBuilder returns a builder for g whose node names start with prefix.
func NewBuilder(g *Graph, prefix string) *Builder { return &Builder{G: g, Prefix: prefix} }

func (b *Builder) nodeName(op string) string {
	for {
		b.count++
		name := b.Prefix + "/" + op + "_" + strconv.Itoa(b.count)
		if b.G.values[name+"_output_0"] == nil {
			return name
		}
	}
}

// Op adds a node with one output and returns that output.
func (b *Builder) Op(op string, inputs []*Value, attrs ...Attr) *Value {
	return b.OpN(op, "", inputs, 1, attrs...)[0]
}

// OpN adds a node of the given domain with nout outputs and returns them.
func (b *Builder) OpN(op, domain string, inputs []*Value, nout int, attrs ...Attr) []*Value {
	name := b.nodeName(op)
	outs := make([]string, nout)
	for i := range outs {
		outs[i] = name + "_output_" + strconv.Itoa(i)
	}
	n := b.G.NewNode(op, domain, name, inputs, outs, attrs...)
	b.Added = append(b.Added, n)
	return n.Outputs()
}

// Const adds t as an initializer with a unique name and returns its value.
func (b *Builder) Const(t *Tensor) *Value {
	name := b.G.UniqueName(b.Prefix + "/const")
	v, err := b.G.AddInitializer(name, t)
	if err != nil { // cannot happen: the name is unique
		panic(err)
	}
	return v
}

// Int64s adds a 1-D int64 constant.
func (b *Builder) Int64s(v ...int64) *Value {
	return b.Const(FromInt64([]int64{int64(len(v))}, v))
}

// Scalar adds a rank-0 floating-point constant of type dt.
func (b *Builder) Scalar(dt DType, x float64) *Value { return b.Const(ScalarFloat(dt, x)) }
