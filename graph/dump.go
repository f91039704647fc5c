package graph

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Dump writes a readable text form of the graph, one line per input, initializer, node and output,
// in graph order; it is stable and meant for golden tests. Tensor data is summarised, not printed,
// except for small integer constants.
func (g *Graph) Dump(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "graph %q\n", g.Name)
	for _, v := range g.Inputs {
		if v.Const == nil {
			fmt.Fprintf(bw, "  input  %s: %s\n", v.Name, v.Type)
		}
	}
	for _, v := range g.Initializers {
		fmt.Fprintf(bw, "  init   %s: %s\n", v.Name, v.Type)
	}
	for _, n := range g.nodes {
		outs := make([]string, len(n.outputs))
		for i, o := range n.outputs {
			if o != nil {
				outs[i] = o.Name
			}
		}
		ins := make([]string, len(n.inputs))
		for i, in := range n.inputs {
			if in != nil {
				ins[i] = in.Name
			}
		}
		op := n.OpType
		if n.Domain != "" {
			op = n.Domain + "::" + op
		}
		fmt.Fprintf(bw, "  %s = %s(%s)", strings.Join(outs, ", "), op, strings.Join(ins, ", "))
		if len(n.Attrs) > 0 {
			parts := make([]string, len(n.Attrs))
			for i, a := range n.Attrs {
				parts[i] = a.Name + "=" + a.ValueString()
			}
			fmt.Fprintf(bw, " {%s}", strings.Join(parts, ", "))
		}
		if n.Name != "" {
			fmt.Fprintf(bw, "  # %s", n.Name)
		}
		bw.WriteByte('\n')
	}
	for _, v := range g.Outputs {
		fmt.Fprintf(bw, "  output %s: %s\n", v.Name, v.Type)
	}
	return bw.Flush()
}

// String returns the Dump of the graph.
func (g *Graph) String() string {
	var sb strings.Builder
	_ = g.Dump(&sb)
	return sb.String()
}

// ValueString renders the attribute's value as in Dump: numbers, quoted strings, [lists], tensor summaries.
func (a Attr) ValueString() string {
	switch a.Type {
	case AttrFloat:
		return strconv.FormatFloat(float64(a.F), 'g', -1, 32)
	case AttrInt:
		return strconv.FormatInt(a.I, 10)
	case AttrString:
		return strconv.Quote(string(a.S))
	case AttrInts:
		parts := make([]string, len(a.Ints))
		for i, x := range a.Ints {
			parts[i] = strconv.FormatInt(x, 10)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case AttrFloats:
		parts := make([]string, len(a.Floats))
		for i, x := range a.Floats {
			parts[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case AttrTensor:
		if a.T == nil {
			return "tensor(nil)"
		}
		return tensorSummary(a.T)
	case AttrStrings:
		parts := make([]string, len(a.Strings))
		for i, x := range a.Strings {
			parts[i] = strconv.Quote(string(x))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprintf("<%d>", a.Type)
}

func tensorSummary(t *Tensor) string {
	s := TensorType(t.DType, t.Dims...).String()
	if t.NumElements() <= 8 {
		switch t.DType {
		case Int64, Int32:
			if v, err := t.Int64s(); err == nil {
				return fmt.Sprintf("%s%v", s, v)
			}
		case Float, Double:
			if v, err := t.Float32s(); err == nil {
				return fmt.Sprintf("%s%v", s, v)
			}
		}
	}
	return s
}
