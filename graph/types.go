package graph

import (
	"fmt"
	"strconv"
	"strings"
)

// DType is a tensor element type, numbered as ONNX's TensorProto.DataType.
type DType int32

// Element types, with ONNX's numbers.
const (
	Undefined  DType = 0
	Float      DType = 1
	Uint8      DType = 2
	Int8       DType = 3
	Uint16     DType = 4
	Int16      DType = 5
	Int32      DType = 6
	Int64      DType = 7
	String     DType = 8
	Bool       DType = 9
	Float16    DType = 10
	Double     DType = 11
	Uint32     DType = 12
	Uint64     DType = 13
	Complex64  DType = 14
	Complex128 DType = 15
	BFloat16   DType = 16
)

var dtypeNames = map[DType]string{
	Undefined: "undefined", Float: "float32", Uint8: "uint8", Int8: "int8", Uint16: "uint16",
	Int16: "int16", Int32: "int32", Int64: "int64", String: "string", Bool: "bool",
	Float16: "float16", Double: "float64", Uint32: "uint32", Uint64: "uint64",
	Complex64: "complex64", Complex128: "complex128", BFloat16: "bfloat16",
}

// String returns the numpy-style name of the type (float32, int64, ...).
func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return "dtype(" + strconv.Itoa(int(d)) + ")"
}

// Size returns the size in bytes of one element, or 0 for variable-size or unknown types.
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Int32, Uint32, Float:
		return 4
	case Int64, Uint64, Double, Complex64:
		return 8
	case Complex128:
		return 16
	}
	return 0
}

// IsFloat reports whether d is a floating-point type (the types gradients flow through).
func (d DType) IsFloat() bool {
	return d == Float || d == Double || d == Float16 || d == BFloat16
}

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
