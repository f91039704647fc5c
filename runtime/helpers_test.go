package runtime

import (
	"testing"

	"github.com/skipgraph/skipgraph/internal/testenv"

	"github.com/skipgraph/skipgraph/graph/onnxio/onnxpb"
	"github.com/skipgraph/skipgraph/tensorio"
	"google.golang.org/protobuf/proto"
)

// requireORT fails the test (it does not skip) when the ONNX Runtime library cannot be loaded.
func requireORT(tb testing.TB) {
	tb.Helper()
	if err := Init(); err != nil {
		tb.Fatalf("%v", err)
	}
}

// fixture returns the path of a file of the reference fixtures (see testenv.FixturesDir).
func fixture(tb testing.TB, rel string) string {
	tb.Helper()
	return testenv.FixtureFile(tb, rel)
}

// dim is a fixed dimension (>= 0) or a symbolic one (a string).
type dim any

func valueInfo(name string, dt tensorio.DType, dims ...dim) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		case string:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}})
		}
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(dt)), Shape: shape,
		}}},
	}
}

func node(op string, ins, outs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: proto.String(op), Input: ins, Output: outs, Attribute: attrs}
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func floatInit(name string, dims []int64, vals ...float32) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(int32(tensorio.Float32)), Dims: dims, FloatData: vals}
}

func marshalModel(tb testing.TB, g *onnxpb.GraphProto) []byte {
	tb.Helper()
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph:       g,
	}
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// addOneModel is y = x + 1 for x float32 [2, 3].
func addOneModel(tb testing.TB) []byte {
	return marshalModel(tb, &onnxpb.GraphProto{
		Name:        proto.String("add_one"),
		Node:        []*onnxpb.NodeProto{node("Add", []string{"x", "one"}, []string{"y"})},
		Initializer: []*onnxpb.TensorProto{floatInit("one", nil, 1)},
		Input:       []*onnxpb.ValueInfoProto{valueInfo("x", tensorio.Float32, 2, 3)},
		Output:      []*onnxpb.ValueInfoProto{valueInfo("y", tensorio.Float32, 2, 3)},
	})
}

// mixedModel has a dynamic batch, a scalar int64 step and several output types:
//
//	y = x + 1            float32 [n, 3]
//	s = ReduceSum(x)     float32 scalar
//	pos = x > 0          bool [n, 3]
//	step.next = step + 1 int64 scalar
//	h = Cast(w, float16) float16 [2]
//	w.next = w * 2        float32 [2]
func mixedModel(tb testing.TB) []byte {
	return marshalModel(tb, &onnxpb.GraphProto{
		Name: proto.String("mixed"),
		Node: []*onnxpb.NodeProto{
			node("Add", []string{"x", "one"}, []string{"y"}),
			node("ReduceSum", []string{"x"}, []string{"s"}, intAttr("keepdims", 0)),
			node("Greater", []string{"x", "zero"}, []string{"pos"}),
			node("Add", []string{"step", "one_i"}, []string{"step.next"}),
			node("Cast", []string{"w"}, []string{"h"}, intAttr("to", int64(tensorio.Float16))),
			node("Mul", []string{"w", "two"}, []string{"w.next"}),
		},
		Initializer: []*onnxpb.TensorProto{
			floatInit("one", nil, 1), floatInit("zero", nil, 0), floatInit("two", nil, 2),
			{Name: proto.String("one_i"), DataType: proto.Int32(int32(tensorio.Int64)), Int64Data: []int64{1}},
		},
		Input: []*onnxpb.ValueInfoProto{
			valueInfo("x", tensorio.Float32, "n", 3),
			valueInfo("step", tensorio.Int64),
			valueInfo("w", tensorio.Float32, 2),
		},
		Output: []*onnxpb.ValueInfoProto{
			valueInfo("y", tensorio.Float32, "n", 3),
			valueInfo("s", tensorio.Float32),
			valueInfo("pos", tensorio.Bool, "n", 3),
			valueInfo("step.next", tensorio.Int64),
			valueInfo("h", tensorio.Float16, 2),
			valueInfo("w.next", tensorio.Float32, 2),
		},
	})
}
