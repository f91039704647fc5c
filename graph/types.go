package graph

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/skipgraph/skipgraph/tensorio"
)

// DType is a tensor element type, numbered as ONNX's TensorProto.DataType: tensorio's, so that
// graphs and host tensors share one enum (String, Size, IsFloat).
type DType = tensorio.DType

// Element types, with ONNX's numbers (ONNX's own spellings: Float is float32, Double float64).
const (
	Undefined  = tensorio.Undefined
	Float      = tensorio.Float32
	Uint8      = tensorio.Uint8
	Int8       = tensorio.Int8
	Uint16     = tensorio.Uint16
	Int16      = tensorio.Int16
	Int32      = tensorio.Int32
	Int64      = tensorio.Int64
	String     = tensorio.String
	Bool       = tensorio.Bool
	Float16    = tensorio.Float16
	Double     = tensorio.Float64
	Uint32     = tensorio.Uint32
	Uint64     = tensorio.Uint64
	Complex64  = tensorio.Complex64
	Complex128 = tensorio.Complex128
	BFloat16   = tensorio.BFloat16
)

// Dim is one dimension of a shape: a known size (Param empty, Value >= 0), a symbolic size (Param
// set), or unknown (Param empty, Value < 0).
type Dim struct {
	Value int64
	Param string
}

// Known reports whether the dimension has a fixed size.
func (d Dim) Known() bool { return d.Param == "" && d.Value >= 0 }

// String renders the dimension: a number, the symbol, or "?".
func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Value >= 0:
		return strconv.FormatInt(d.Value, 10)
	}
	return "?"
}

// Fixed returns a known dimension.
func Fixed(n int64) Dim { return Dim{Value: n} }

// Sym returns a symbolic dimension.
func Sym(name string) Dim { return Dim{Value: -1, Param: name} }

// UnknownDim returns a dimension of unknown size.
func UnknownDim() Dim { return Dim{Value: -1} }

// Type is the type of a value: element type and shape. Shape is nil with HasShape false when the
// rank is unknown; a tensor of rank 0 has HasShape true and an empty Shape.
type Type struct {
	Elem     DType
	Shape    []Dim
	HasShape bool
}

// TensorType returns a tensor type with the given fixed dimensions.
func TensorType(elem DType, dims ...int64) Type {
	s := make([]Dim, len(dims))
	for i, d := range dims {
		s[i] = Dim{Value: d}
		if d < 0 {
			s[i] = UnknownDim()
		}
	}
	return Type{Elem: elem, Shape: s, HasShape: true}
}

// Rank returns the rank, or -1 when unknown.
func (t Type) Rank() int {
	if !t.HasShape {
		return -1
	}
	return len(t.Shape)
}

// StaticDims returns the dimensions when all are known.
func (t Type) StaticDims() ([]int64, bool) {
	if !t.HasShape {
		return nil, false
	}
	out := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		if !d.Known() {
			return nil, false
		}
		out[i] = d.Value
	}
	return out, true
}

// String renders the type as float32[B,3,224,224], float32[?] or float32 (unknown rank).
func (t Type) String() string {
	if !t.HasShape {
		return t.Elem.String()
	}
	parts := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		parts[i] = d.String()
	}
	return fmt.Sprintf("%s[%s]", t.Elem, strings.Join(parts, ","))
}

// Equal reports whether two types are the same.
func (t Type) Equal(o Type) bool {
	if t.Elem != o.Elem || t.HasShape != o.HasShape || len(t.Shape) != len(o.Shape) {
		return false
	}
	for i := range t.Shape {
		if t.Shape[i] != o.Shape[i] {
			return false
		}
	}
	return true
}
