package train

import (
	"fmt"
	"reflect"

	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// textChunkCPU is the number of class prompts per run of the text prefix on the CPU: 25
// prompts of 77 tokens are 1925 rows, about what 8 images of 197 patches make, where the
// ViT-B/16 prefix's matrix products ran fastest (BENCHMARKS.md: 255 GFLOP/s against 212 with
// all 100 prompts in one run).
const textChunkCPU = 25

// textChunk is the number of class prompts per text prefix run on device (0: all in one).
func textChunk(device string) int {
	if device == runtime.DeviceCUDA {
		return 0
	}
	return textChunkCPU
}

// runRows runs sess with feeds, the inputs named in rows split along their first axis into runs
// of at most chunk rows (chunk <= 0: one run), and returns output out with the runs' results
// joined along its first axis.
func runRows(sess *runtime.Session, feeds map[string]*tensorio.Tensor, rows []string, out string, chunk int) (*tensorio.Tensor, error) {
	var n int64 = -1
	for _, name := range rows {
		t := feeds[name]
		if t == nil || len(t.Shape) == 0 || n >= 0 && t.Shape[0] != n {
			return nil, fmt.Errorf("%s: want inputs %v with the same first dimension", out, rows)
		}
		n = t.Shape[0]
	}
	if chunk <= 0 || n <= int64(chunk) {
		res, err := sess.Run(feeds)
		if err != nil {
			return nil, err
		}
		return res[out], nil
	}
	var parts []*tensorio.Tensor
	for lo := int64(0); lo < n; lo += int64(chunk) {
		hi := min(lo+int64(chunk), n)
		part := map[string]*tensorio.Tensor{}
		for k, v := range feeds {
			part[k] = v
		}
		for _, name := range rows {
			part[name] = rowsOf(feeds[name], lo, hi)
		}
		res, err := sess.Run(part)
		if err != nil {
			return nil, err
		}
		if res[out] == nil || len(res[out].Shape) == 0 || res[out].Shape[0] != hi-lo {
			return nil, fmt.Errorf("%s: the run over rows %d to %d gave no output with %d rows", out, lo, hi, hi-lo)
		}
		parts = append(parts, res[out])
	}
	return joinRows(parts), nil
}

// rowsOf returns rows lo to hi of t's first axis, sharing t's memory.
func rowsOf(t *tensorio.Tensor, lo, hi int64) *tensorio.Tensor {
	per := int64(1)
	for _, d := range t.Shape[1:] {
		per *= d
	}
	return &tensorio.Tensor{DType: t.DType, Shape: append([]int64{hi - lo}, t.Shape[1:]...),
		Data: reflect.ValueOf(t.Data).Slice(int(lo*per), int(hi*per)).Interface()}
}

// joinRows concatenates tensors of one element type and the same trailing dimensions along their
// first axis.
func joinRows(parts []*tensorio.Tensor) *tensorio.Tensor {
	shape := append([]int64{0}, parts[0].Shape[1:]...)
	data := reflect.MakeSlice(reflect.TypeOf(parts[0].Data), 0, 0)
	for _, p := range parts {
		shape[0] += p.Shape[0]
		data = reflect.AppendSlice(data, reflect.ValueOf(p.Data))
	}
	return &tensorio.Tensor{DType: parts[0].DType, Shape: shape, Data: data.Interface()}
}
