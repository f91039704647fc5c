package bundle

import (
	"reflect"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/tensorio"
)

func f32(shape []int64, v ...float32) *tensorio.Tensor {
	t, err := tensorio.FromSlice(shape, v)
	if err != nil {
		panic(err)
	}
	return t
}

// torchManifest has one parameter of each kind ToTorch handles.
func torchManifest() *Manifest {
	return &Manifest{Parameters: []ParamRecord{
		{Initializer: "onnx::MatMul_1", Canonical: []string{"text_model.encoder.layers.0.mlp.fc1.weight"}, Transposed: true, Shape: []int64{2, 3}},
		{Initializer: "bias", Canonical: []string{"text_model.encoder.layers.0.mlp.fc1.bias"}, Shape: []int64{3}},
		{Initializer: "q", Canonical: []string{"transformer.resblocks.0.attn.in_proj_weight[q]"}, Transposed: true, Shape: []int64{2, 1}},
		{Initializer: "k", Canonical: []string{"transformer.resblocks.0.attn.in_proj_weight[k]"}, Transposed: true, Shape: []int64{2, 1}},
		{Initializer: "v", Canonical: []string{"transformer.resblocks.0.attn.in_proj_weight[v]"}, Transposed: true, Shape: []int64{2, 1}},
		{Initializer: "logit_scale", Canonical: []string{"logit_scale"}, Shape: []int64{}},
		{Initializer: "shared", Canonical: []string{"a.weight", "b.weight"}, Shape: []int64{2}},
	}}
}

func TestToTorchLayout(t *testing.T) {
	man := torchManifest()
	in := map[string]*tensorio.Tensor{
		"onnx::MatMul_1":          f32([]int64{2, 3}, 1, 2, 3, 4, 5, 6),
		"onnx::MatMul_1.momentum": f32([]int64{2, 3}, 7, 8, 9, 10, 11, 12),
		"bias":                    f32([]int64{3}, 1, 2, 3),
		"q":                       f32([]int64{2, 1}, 1, 2),
		"k":                       f32([]int64{2, 1}, 3, 4),
		"v":                       f32([]int64{2, 1}, 5, 6),
		"logit_scale":             f32([]int64{}, 4.6),
		"shared":                  f32([]int64{2}, 1, 2),
	}
	got, err := man.ToTorch(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*tensorio.Tensor{
		"text_model.encoder.layers.0.mlp.fc1.weight":          f32([]int64{3, 2}, 1, 4, 2, 5, 3, 6),
		"text_model.encoder.layers.0.mlp.fc1.weight.momentum": f32([]int64{3, 2}, 7, 10, 8, 11, 9, 12),
		"text_model.encoder.layers.0.mlp.fc1.bias":            f32([]int64{3}, 1, 2, 3),
		"transformer.resblocks.0.attn.in_proj_weight":         f32([]int64{3, 2}, 1, 2, 3, 4, 5, 6),
		"logit_scale": f32([]int64{}, 4.6),
		"a.weight":    f32([]int64{2}, 1, 2),
		"b.weight":    f32([]int64{2}, 1, 2),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ToTorch:\n got %v\nwant %v", got, want)
	}
	back, unknown, err := man.FromTorch(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) != 0 {
		t.Errorf("unknown = %v", unknown)
	}
	if !reflect.DeepEqual(back, in) {
		t.Fatalf("FromTorch(ToTorch(x)):\n got %v\nwant %v", back, in)
	}
}

func TestTorchErrors(t *testing.T) {
	man := torchManifest()
	cases := []struct {
		name string
		in   map[string]*tensorio.Tensor
		want string
	}{
		{"unknown initializer", map[string]*tensorio.Tensor{"nope": f32([]int64{1}, 1)}, "no parameter of the bundle"},
		{"missing slice", map[string]*tensorio.Tensor{"q": f32([]int64{2, 1}, 1, 2), "k": f32([]int64{2, 1}, 3, 4)}, "[v] slice is missing"},
		{"not 2-D", map[string]*tensorio.Tensor{"onnx::MatMul_1": f32([]int64{6}, 1, 2, 3, 4, 5, 6)}, "want rank 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := man.ToTorch(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
	_, unknown, err := man.FromTorch(map[string]*tensorio.Tensor{"text_model.embeddings.position_ids": f32([]int64{1}, 0)})
	if err != nil || !reflect.DeepEqual(unknown, []string{"text_model.embeddings.position_ids"}) {
		t.Errorf("FromTorch of an unknown name: unknown %v, err %v", unknown, err)
	}
	if _, _, err := man.FromTorch(map[string]*tensorio.Tensor{"transformer.resblocks.0.attn.in_proj_weight": f32([]int64{2, 2}, 1, 2, 3, 4)}); err == nil || !strings.Contains(err.Error(), "does not split") {
		t.Errorf("FromTorch of an in-projection of 2 rows: err %v", err)
	}
}

// Dynamic loss scaling's state belongs to no parameter: ToTorch and FromTorch keep it under its
// own names when the bundle scales its loss, and refuse it as unknown otherwise.
func TestTorchLossScaleState(t *testing.T) {
	man := torchManifest()
	state := map[string]*tensorio.Tensor{LossScaleInput: f32(nil, 1024), LossScaleGood: f32(nil, 7)}
	if _, err := man.ToTorch(state); err == nil {
		t.Fatal("ToTorch of loss-scaling state in a bundle without loss scaling: no error")
	}
	man.LossScale = &LossScaleRecord{Init: 65536}
	torch, err := man.ToTorch(state)
	if err != nil {
		t.Fatal(err)
	}
	back, unknown, err := man.FromTorch(torch)
	if err != nil || len(unknown) > 0 {
		t.Fatalf("FromTorch: unknown %v, err %v", unknown, err)
	}
	for name, want := range state {
		if got := back[name]; got == nil || got.Float32s()[0] != want.Float32s()[0] {
			t.Errorf("%s: got %v after the round trip, want %v", name, got, want.Float32s())
		}
	}
}
