package tensorio

import (
	"fmt"
	"strings"
)

// DType is a tensor element type, numbered as ONNX's TensorProto.DataType: the one element-type
// enum of skipgraph (graph.DType is this type).
type DType int32

// Element types. The numbers are ONNX TensorProto.DataType values.
const (
	Undefined DType = 0  // no type
	Float32   DType = 1  // float, Data is []float32
	Uint8     DType = 2  // uint8, Data is []uint8
	Int8      DType = 3  // int8, Data is []int8
	Uint16    DType = 4  // uint16, Data is []uint16
	Int16     DType = 5  // int16, Data is []int16
	Int32     DType = 6  // int32, Data is []int32
	Int64     DType = 7  // int64, Data is []int64
	Bool      DType = 9  // bool, Data is []bool
	Float16   DType = 10 // IEEE half, Data is []uint16 holding the bits
	Float64   DType = 11 // double, Data is []float64
	Uint32    DType = 12 // uint32, Data is []uint32
	Uint64    DType = 13 // uint64, Data is []uint64
	BFloat16  DType = 16 // bfloat16, Data is []uint16 holding the bits

	// Types of ONNX graphs that host tensors do not hold (Valid is false).
	String     DType = 8  // string
	Complex64  DType = 14 // complex64
	Complex128 DType = 15 // complex128
)

// unsupportedNames name the ONNX types host tensors do not hold.
var unsupportedNames = map[DType]string{String: "string", Complex64: "complex64", Complex128: "complex128"}

var dtypeNames = map[DType]string{
	Float32: "float32", Uint8: "uint8", Int8: "int8", Uint16: "uint16", Int16: "int16",
	Int32: "int32", Int64: "int64", Bool: "bool", Float16: "float16", Float64: "float64",
	Uint32: "uint32", Uint64: "uint64", BFloat16: "bfloat16",
}

// String returns the NumPy-style name of d ("float32", "int64", "float16" ...).
func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	if s, ok := unsupportedNames[d]; ok {
		return s
	}
	if d == Undefined {
		return "undefined"
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// Valid reports whether d is one of the element types this package supports.
func (d DType) Valid() bool {
	_, ok := dtypeNames[d]
	return ok
}

// Size returns the size of one element in bytes, or 0 for a variable-size or unknown type.
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Float32, Int32, Uint32:
		return 4
	case Float64, Int64, Uint64, Complex64:
		return 8
	case Complex128:
		return 16
	}
	return 0
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool {
	return d == Float32 || d == Float64 || d == Float16 || d == BFloat16
}

// ParseDType parses a dtype name: the names String returns, plus the ONNX spellings "float",
// "double", "half" and "float16" and "bool_".
func ParseDType(s string) (DType, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	switch name {
	case "float":
		return Float32, nil
	case "double":
		return Float64, nil
	case "half":
		return Float16, nil
	case "bool_", "boolean":
		return Bool, nil
	}
	for d, n := range dtypeNames {
		if n == name {
			return d, nil
		}
	}
	return Undefined, fmt.Errorf("unknown dtype %q (want one of float32, float64, float16, bfloat16, int64, int32, int16, int8, uint64, uint32, uint16, uint8, bool)", s)
}
