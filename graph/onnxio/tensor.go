package onnxio

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio/onnxpb"
	"google.golang.org/protobuf/proto"
)

// maxTensorBytes bounds the size a tensor's header may claim (1 PiB), so that corrupt headers
// are rejected before any arithmetic overflows.
const maxTensorBytes = 1 << 50

// eagerTyped is the size up to which data held in typed fields is converted at once.
const eagerTyped = 4096

// tensorSrc is the codec's record of a tensor read from a file, kept in graph.Tensor.Src.
type tensorSrc struct {
	// meta is the TensorProto as read, without raw_data for initializers (attribute tensors keep
	// theirs: they were copied into memory when the node was unmarshalled).
	meta *onnxpb.TensorProto
	// owner is the tensor this record was made for; a record copied onto another tensor is not
	// trusted to describe that tensor's data.
	owner *graph.Tensor
	dtype graph.DType
	dims  []int64
	// data is the payload (raw_data or the external bytes), nil when typed fields hold the data.
	data []byte
	// hasRaw says raw_data was present (possibly empty).
	hasRaw bool
	// external says the data came from an external file.
	external bool
	// orig is the whole encoded TensorProto as read, for initializers stored in the model file.
	orig []byte
	// mapped is the mapping data (and orig) lie in.
	mapped *mapping
	// res keeps the mappings alive while the tensor is reachable.
	res *resources
}

// unchanged reports whether t is still exactly the tensor this record describes.
func (s *tensorSrc) unchanged(t *graph.Tensor) bool {
	return s != nil && s.owner == t && t.DType == s.dtype && slices.Equal(t.Dims, s.dims)
}

// srcOf returns the codec record of t when t is a tensor read by this package and untouched.
func srcOf(t *graph.Tensor) *tensorSrc {
	if t == nil {
		return nil
	}
	if s, ok := t.Src.(*tensorSrc); ok && s.unchanged(t) {
		return s
	}
	return nil
}

// validDType reports whether the element type is one the IR can hold.
func validDType(dt int32) bool { return dt >= int32(graph.Float) && dt <= int32(graph.BFloat16) }

// tensorSize checks dims and returns the element count and byte size of a tensor.
func tensorSize(dt graph.DType, dims []int64) (n, nbytes int64, err error) {
	n = 1
	for _, d := range dims {
		if d < 0 {
			return 0, 0, fmt.Errorf("negative dimension %d in %v", d, dims)
		}
		hi, lo := bits.Mul64(uint64(n), uint64(d))
		if hi != 0 || lo > maxTensorBytes {
			return 0, 0, fmt.Errorf("dimensions %v are too large", dims)
		}
		n = int64(lo)
	}
	nbytes = n * int64(dt.Size())
	if nbytes > maxTensorBytes {
		return 0, 0, fmt.Errorf("dimensions %v are too large", dims)
	}
	return n, nbytes, nil
}

// typedCount returns how many values the typed data field matching dt holds, and how many a
// tensor of n elements needs there.
func typedCount(tp *onnxpb.TensorProto, dt graph.DType, n int64) (have, want int64) {
	switch dt {
	case graph.Float:
		return int64(len(tp.FloatData)), n
	case graph.Complex64:
		return int64(len(tp.FloatData)), 2 * n
	case graph.Int32, graph.Int16, graph.Int8, graph.Uint16, graph.Uint8, graph.Bool, graph.Float16, graph.BFloat16:
		return int64(len(tp.Int32Data)), n
	case graph.Int64:
		return int64(len(tp.Int64Data)), n
	case graph.Uint32, graph.Uint64:
		return int64(len(tp.Uint64Data)), n
	case graph.Double:
		return int64(len(tp.DoubleData)), n
	case graph.Complex128:
		return int64(len(tp.DoubleData)), 2 * n
	case graph.String:
		return int64(len(tp.StringData)), n
	}
	return 0, n
}

// typedToRaw converts the typed data fields of tp into raw little-endian bytes.
func typedToRaw(tp *onnxpb.TensorProto, dt graph.DType, nbytes int64) []byte {
	out := make([]byte, nbytes)
	switch dt {
	case graph.Float, graph.Complex64:
		for i, v := range tp.FloatData {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
	case graph.Int32:
		for i, v := range tp.Int32Data {
			binary.LittleEndian.PutUint32(out[4*i:], uint32(v))
		}
	case graph.Int16, graph.Uint16, graph.Float16, graph.BFloat16:
		for i, v := range tp.Int32Data {
			binary.LittleEndian.PutUint16(out[2*i:], uint16(v))
		}
	case graph.Int8, graph.Uint8, graph.Bool:
		for i, v := range tp.Int32Data {
			out[i] = byte(v)
		}
	case graph.Int64:
		for i, v := range tp.Int64Data {
			binary.LittleEndian.PutUint64(out[8*i:], uint64(v))
		}
	case graph.Uint32:
		for i, v := range tp.Uint64Data {
			binary.LittleEndian.PutUint32(out[4*i:], uint32(v))
		}
	case graph.Uint64:
		for i, v := range tp.Uint64Data {
			binary.LittleEndian.PutUint64(out[8*i:], v)
		}
	case graph.Double, graph.Complex128:
		for i, v := range tp.DoubleData {
			binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(v))
		}
	}
	return out
}

// tensorFrom makes a lazy IR tensor from a decoded TensorProto whose payload, if any, is data
// (hasRaw) or the typed fields of tp. External data must already be resolved into data.
func tensorFrom(tp *onnxpb.TensorProto, data []byte, hasRaw, external bool) (*graph.Tensor, *tensorSrc, error) {
	if tp.DataType == nil || !validDType(*tp.DataType) {
		return nil, nil, fmt.Errorf("unknown or unsupported tensor data type %d", tp.GetDataType())
	}
	dt := graph.DType(tp.GetDataType())
	n, nbytes, err := tensorSize(dt, tp.Dims)
	if err != nil {
		return nil, nil, err
	}
	src := &tensorSrc{meta: tp, dtype: dt, dims: slices.Clone(tp.Dims), data: data, hasRaw: hasRaw, external: external}
	var load func() ([]byte, error)
	switch {
	case dt == graph.String:
		if external || hasRaw {
			return nil, nil, fmt.Errorf("string tensors must hold their data in string_data")
		}
		if have, want := typedCount(tp, dt, n); have != want {
			return nil, nil, fmt.Errorf("string tensor of %d elements has %d strings", want, have)
		}
		nbytes = 0
		load = func() ([]byte, error) { return []byte{}, nil }
	case hasRaw || external:
		if int64(len(data)) != nbytes {
			return nil, nil, fmt.Errorf("tensor %s%v needs %d bytes of data but has %d", dt, tp.Dims, nbytes, len(data))
		}
		load = func() ([]byte, error) {
			_ = src.res // the mapping must stay while the tensor is reachable
			return src.data, nil
		}
	default:
		have, want := typedCount(tp, dt, n)
		if have != want && !(have == 0 && n == 0) {
			return nil, nil, fmt.Errorf("tensor %s%v needs %d values in its typed data field but has %d", dt, tp.Dims, want, have)
		}
		load = func() ([]byte, error) { return typedToRaw(src.meta, src.dtype, nbytes), nil }
	}
	t := graph.NewLazyTensor(dt, tp.Dims, nbytes, load, src)
	src.owner = t
	if hasRaw || external || nbytes <= eagerTyped {
		// The data is a slice of the file (or small): resolve it now, which copies nothing,
		// so that the tensor reports itself loaded.
		_, _ = t.Bytes()
	}
	return t, src, nil
}

// TensorFromProto converts a TensorProto whose data is held in the message (raw_data or the
// typed data fields) into an IR tensor. The tensor shares raw_data with tp, so tp must not be
// modified afterwards. Tensors with external data are refused: load them with Load, which knows
// the model's folder.
func TensorFromProto(tp *onnxpb.TensorProto) (*graph.Tensor, error) {
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("tensor %q keeps its data in an external file; load the model with onnxio.Load", tp.GetName())
	}
	t, _, err := tensorFrom(tp, tp.RawData, tp.RawData != nil, false)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", tp.GetName(), err)
	}
	return t, nil
}

// TensorToProto converts an IR tensor into a TensorProto holding its data in raw_data, loading
// the data if needed. A tensor read by this package and not replaced since keeps the fields of
// its original record (doc string, typed data). The name is left unset.
func TensorToProto(t *graph.Tensor) (*onnxpb.TensorProto, error) {
	if s := srcOf(t); s != nil && !s.external {
		tp := proto.Clone(s.meta).(*onnxpb.TensorProto)
		tp.Name = nil
		if s.hasRaw {
			tp.RawData = s.data
		}
		return tp, nil
	}
	if t.DType == graph.String {
		return nil, fmt.Errorf("a new string tensor cannot be encoded: the IR holds no string data")
	}
	if !validDType(int32(t.DType)) {
		return nil, fmt.Errorf("tensor of unknown data type %d", int32(t.DType))
	}
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	if b == nil {
		b = []byte{}
	}
	tp := &onnxpb.TensorProto{Dims: slices.Clone(t.Dims), DataType: proto.Int32(int32(t.DType)), RawData: b}
	if t.Dims == nil {
		tp.Dims = nil
	}
	return tp, nil
}
