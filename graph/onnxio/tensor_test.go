package onnxio_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/graph/onnxio/onnxpb"
	"google.golang.org/protobuf/proto"
)

func TestTensorFromProtoTypedFields(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	tests := []struct {
		name string
		tp   *onnxpb.TensorProto
		want []byte
	}{
		{"float", &onnxpb.TensorProto{DataType: i32(1), Dims: []int64{2}, FloatData: []float32{1, -2}},
			[]byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}},
		{"int64", &onnxpb.TensorProto{DataType: i32(7), Dims: []int64{1}, Int64Data: []int64{-1}},
			[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"float16 in int32_data", &onnxpb.TensorProto{DataType: i32(10), Dims: []int64{2}, Int32Data: []int32{0x3c00, 0xc000}},
			[]byte{0x00, 0x3c, 0x00, 0xc0}},
		{"bool", &onnxpb.TensorProto{DataType: i32(9), Dims: []int64{3}, Int32Data: []int32{1, 0, 1}}, []byte{1, 0, 1}},
		{"uint32", &onnxpb.TensorProto{DataType: i32(12), Uint64Data: []uint64{7}}, []byte{7, 0, 0, 0}},
		{"double", &onnxpb.TensorProto{DataType: i32(11), Dims: []int64{1}, DoubleData: []float64{1}},
			[]byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
		{"raw", &onnxpb.TensorProto{DataType: i32(3), Dims: []int64{2}, RawData: []byte{0xfe, 2}}, []byte{0xfe, 2}},
		{"empty", &onnxpb.TensorProto{DataType: i32(1), Dims: []int64{0, 3}}, []byte{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn, err := onnxio.TensorFromProto(tc.tp)
			if err != nil {
				t.Fatal(err)
			}
			b, err := tn.Bytes()
			if err != nil || !bytes.Equal(b, tc.want) {
				t.Fatalf("bytes %v (%v), want %v", b, err, tc.want)
			}
			// A fresh tensor of the same data converts back to raw_data.
			fresh := graph.NewTensor(tn.DType, tn.Dims, slices.Clone(b))
			tp, err := onnxio.TensorToProto(fresh)
			if err != nil || !bytes.Equal(tp.RawData, tc.want) || tp.GetDataType() != tc.tp.GetDataType() || !slices.Equal(tp.Dims, tc.tp.Dims) {
				t.Fatalf("TensorToProto: %v (%v)", tp, err)
			}
			// The tensor read from tc.tp converts back to its own record.
			same, err := onnxio.TensorToProto(tn)
			if err != nil || !proto.Equal(same, tc.tp) {
				t.Fatalf("TensorToProto of the read tensor: %v, want %v (%v)", same, tc.tp, err)
			}
		})
	}
	if _, err := onnxio.TensorFromProto(&onnxpb.TensorProto{DataType: i32(1), Dims: []int64{3}, FloatData: []float32{1}}); err == nil {
		t.Error("a short float_data was accepted")
	}
}

func TestTypedInitializerRoundTrip(t *testing.T) {
	w := &onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{4}, DataType: proto.Int32(1), FloatData: []float32{1, 2, 3, 4}, DocString: proto.String("typed")}
	data := reluModel(t, w)
	m, err := onnxio.Decode(data, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Graph.Value("w").Const.Float32s()
	if err != nil || !slices.Equal(got, []float32{1, 2, 3, 4}) {
		t.Fatalf("w = %v (%v)", got, err)
	}
	b, err := onnxio.Encode(m)
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("re-encoding differs (%v)", err)
	}
}
