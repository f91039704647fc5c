// Package tensorio holds the project's one host-side tensor type, Tensor (a dtype, a shape and a
// flat row-major Go slice), and reads and writes it as NumPy .npy files and as the JSON form
// {"shape": [...], "dtype": "float32", "data": [...]} used by the reference fixtures.
//
// DType values are ONNX TensorProto.DataType numbers. Float16 and bfloat16 data is kept as raw
// bits in a []uint16; Float16ToFloat32, Float32ToFloat16 and friends convert.
//
// The package has no dependencies outside the standard library, so any package can use it.
package tensorio
