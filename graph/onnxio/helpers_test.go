package onnxio_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/skipgraph/skipgraph/graph/onnxio/onnxpb"
	"github.com/skipgraph/skipgraph/internal/testenv"
	"google.golang.org/protobuf/proto"
)

// fixture returns the path of the reference CLIP fixture (see testenv.FixturesDir).
func fixture(t testing.TB) string {
	t.Helper()
	return filepath.Join(testenv.Fixture(t, "clip-hf-tiny"), "model.onnx")
}

// fixtureBytes returns the reference fixture's bytes.
func fixtureBytes(t testing.TB) []byte {
	b, err := os.ReadFile(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vi returns a float tensor ValueInfoProto.
func vi(name string, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(1), Shape: shape}}}}
}

// node returns a NodeProto.
func node(op string, ins, outs []string) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: proto.String(op), Input: ins, Output: outs, Name: proto.String(op + "_" + outs[0])}
}

// craft marshals a model with the given nodes, initializers, inputs and outputs.
func craft(t testing.TB, nodes []*onnxpb.NodeProto, inits []*onnxpb.TensorProto, ins, outs []*onnxpb.ValueInfoProto) []byte {
	t.Helper()
	mp := &onnxpb.ModelProto{
		IrVersion:    proto.Int64(8),
		ProducerName: proto.String("test"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(14)}},
		Graph:        &onnxpb.GraphProto{Name: proto.String("g"), Node: nodes, Initializer: inits, Input: ins, Output: outs},
	}
	b, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// externalTensor returns a float tensor proto of n elements whose data lies at location.
func externalTensor(name, location string, n int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{
		Name: proto.String(name), Dims: []int64{n}, DataType: proto.Int32(1),
		DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(),
		ExternalData: []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(location)},
			{Key: proto.String("offset"), Value: proto.String("0")},
			{Key: proto.String("length"), Value: proto.String("16")},
		},
	}
}

// reluModel returns a one-node model adding initializer w to input x.
func reluModel(t testing.TB, w *onnxpb.TensorProto) []byte {
	return craft(t, []*onnxpb.NodeProto{node("Add", []string{"x", w.GetName()}, []string{"y"})},
		[]*onnxpb.TensorProto{w}, []*onnxpb.ValueInfoProto{vi("x", 4)}, []*onnxpb.ValueInfoProto{vi("y", 4)})
}
