package runtime

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/skipgraph/skipgraph/graph/onnxio/onnxpb"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/tensorio"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// IOInfo describes one input or output of a model as ONNX Runtime sees it.
type IOInfo struct {
	// Name is the value's name in the graph.
	Name string
	// DType is the element type (tensorio.Undefined for a non-tensor value).
	DType DType
	// Shape holds each dimension's size, -1 where the size is not fixed. Nil when the rank is
	// unknown; empty for a scalar.
	Shape []int64
	// DimParams holds each dimension's symbolic name ("" where it has none).
	DimParams []string
	// IsTensor is false for sequences, maps, optionals and sparse tensors, which this package
	// does not feed or fetch.
	IsTensor bool
}

// Static reports whether every dimension of the shape is known.
func (i IOInfo) Static() bool {
	if i.Shape == nil {
		return false
	}
	for _, d := range i.Shape {
		if d < 0 {
			return false
		}
	}
	return true
}

// String returns a description such as "pixel_values float32[batch 3 32 32]".
func (i IOInfo) String() string {
	if !i.IsTensor {
		return i.Name + " (not a tensor)"
	}
	if i.Shape == nil {
		return fmt.Sprintf("%s %v[?]", i.Name, i.DType)
	}
	s := fmt.Sprintf("%s %v[", i.Name, i.DType)
	for k, d := range i.Shape {
		if k > 0 {
			s += " "
		}
		switch {
		case d >= 0:
			s += fmt.Sprint(d)
		case i.DimParams[k] != "":
			s += i.DimParams[k]
		default:
			s += "?"
		}
	}
	return s + "]"
}

// readModelIO returns the graph inputs that are not initializers, and the graph outputs, of the
// ONNX model at path (or in data, when path is ""). The model file is mapped, not read into the
// Go heap, and initializer data is skipped, so this is cheap even for large models.
func readModelIO(path string, data []byte) (ins, outs []IOInfo, err error) {
	if path != "" {
		f, err := safeio.Open(path)
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, nil, err
		}
		if st.Size() == 0 {
			return nil, nil, errors.New("file is empty")
		}
		m, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
		if err != nil {
			if data, err = safeio.ReadFile(path); err != nil {
				return nil, nil, err
			}
		} else {
			defer syscall.Munmap(m)
			data = m
		}
	}
	return scanModel(data)
}

// Field numbers of onnx.proto used by the scanner.
const (
	modelGraph             = 7  // ModelProto.graph
	graphInitializer       = 5  // GraphProto.initializer
	graphInput             = 11 // GraphProto.input
	graphOutput            = 12 // GraphProto.output
	graphSparseInitializer = 15 // GraphProto.sparse_initializer
	tensorName             = 8  // TensorProto.name
	sparseValues           = 1  // SparseTensorProto.values
)

var errTruncated = errors.New("not a valid ONNX model (malformed protobuf)")

// fields calls fn for each field of the protobuf message in b; fn gets the field number and, for
// length-delimited fields, the payload.
func fields(b []byte, fn func(num protowire.Number, payload []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return errTruncated
			}
			if err := fn(num, v); err != nil {
				return err
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return errTruncated
		}
		b = b[m:]
	}
	return nil
}

func scanModel(data []byte) (ins, outs []IOInfo, err error) {
	var graph []byte
	if err := fields(data, func(num protowire.Number, v []byte) error {
		if num == modelGraph {
			graph = v
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	if graph == nil {
		return nil, nil, errors.New("not a valid ONNX model (no graph)")
	}
	inits := map[string]bool{}
	var inRaw, outRaw [][]byte
	err = fields(graph, func(num protowire.Number, v []byte) error {
		switch num {
		case graphInput:
			inRaw = append(inRaw, v)
		case graphOutput:
			outRaw = append(outRaw, v)
		case graphInitializer:
			return fields(v, func(n protowire.Number, p []byte) error {
				if n == tensorName {
					inits[string(p)] = true
				}
				return nil
			})
		case graphSparseInitializer:
			return fields(v, func(n protowire.Number, p []byte) error {
				if n == sparseValues {
					return fields(p, func(n2 protowire.Number, p2 []byte) error {
						if n2 == tensorName {
							inits[string(p2)] = true
						}
						return nil
					})
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, raw := range inRaw {
		info, err := parseValueInfo(raw)
		if err != nil {
			return nil, nil, err
		}
		if !inits[info.Name] {
			ins = append(ins, info)
		}
	}
	for _, raw := range outRaw {
		info, err := parseValueInfo(raw)
		if err != nil {
			return nil, nil, err
		}
		outs = append(outs, info)
	}
	if len(outs) == 0 {
		return nil, nil, errors.New("the graph has no outputs")
	}
	return ins, outs, nil
}

func parseValueInfo(raw []byte) (IOInfo, error) {
	var vi onnxpb.ValueInfoProto
	if err := proto.Unmarshal(raw, &vi); err != nil {
		return IOInfo{}, fmt.Errorf("not a valid ONNX model (graph input/output: %w)", err)
	}
	info := IOInfo{Name: vi.GetName()}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return info, nil
	}
	info.IsTensor = true
	info.DType = tensorio.DType(tt.GetElemType())
	if sh := tt.GetShape(); sh != nil {
		info.Shape = make([]int64, len(sh.GetDim()))
		info.DimParams = make([]string, len(sh.GetDim()))
		for k, d := range sh.GetDim() {
			info.Shape[k] = -1
			if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok && d.GetDimValue() >= 0 {
				info.Shape[k] = d.GetDimValue()
			}
			info.DimParams[k] = d.GetDimParam()
		}
	}
	return info, nil
}
