package train

import (
	"math"
	"slices"
	"testing"

	"github.com/skipgraph/skipgraph/tensorio"
)

func TestRowsJoin(t *testing.T) {
	tests := []*tensorio.Tensor{
		must(tensorio.FromSlice([]int64{5, 3}, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})),
		must(tensorio.FromSlice([]int64{4, 2, 1}, []float32{1, 2, 3, 4, 5, 6, 7, 8})),
		must(tensorio.FromFloat16([]int64{3, 1}, []uint16{1, 2, 3})),
	}
	for _, x := range tests {
		for _, chunk := range []int64{1, 2, 3} {
			var parts []*tensorio.Tensor
			for lo := int64(0); lo < x.Shape[0]; lo += chunk {
				parts = append(parts, rowsOf(x, lo, min(lo+chunk, x.Shape[0])))
			}
			got := joinRows(parts)
			if got.DType != x.DType || !slices.Equal(got.Shape, x.Shape) || got.String() != x.String() {
				t.Errorf("%v in chunks of %d joined into %v", x, chunk, got)
			}
		}
	}
}

// The text prefix run over the class prompts in chunks gives the states of one run over all of
// them.
func TestTextPrefixChunks(t *testing.T) {
	tr := cacheTrainer(t, "lskip,cskip", false, 0)
	first := tr.prompts.First()
	feeds := feedsFor(tr.featText, map[string]*tensorio.Tensor{tr.man.Text.InputIDs: first.IDs, tr.man.Text.AttentionMask: first.Mask})
	rows := []string{tr.man.Text.InputIDs}
	if feeds[tr.man.Text.AttentionMask] != nil {
		rows = append(rows, tr.man.Text.AttentionMask)
	}
	whole, err := runRows(tr.featText, feeds, rows, tr.textState, 0)
	if err != nil {
		t.Fatal(err)
	}
	if whole.Shape[0] != int64(tr.classes) {
		t.Fatalf("state %v for %d classes", whole.Shape, tr.classes)
	}
	for _, chunk := range []int{1, 4, tr.classes} {
		got, err := runRows(tr.featText, feeds, rows, tr.textState, chunk)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Shape, whole.Shape) {
			t.Fatalf("chunks of %d: state %v, one run %v", chunk, got.Shape, whole.Shape)
		}
		w, g := whole.Float32s(), got.Float32s()
		worst := 0.0
		for i := range w {
			worst = max(worst, math.Abs(float64(g[i]-w[i]))/(1+math.Abs(float64(w[i]))))
		}
		if worst > 1e-5 {
			t.Errorf("chunks of %d: states differ from one run by up to %g", chunk, worst)
		}
		t.Logf("chunks of %d: largest difference %g", chunk, worst)
	}
	if _, err := runRows(tr.featText, map[string]*tensorio.Tensor{}, rows, tr.textState, 2); err == nil {
		t.Error("runs without the row inputs succeeded")
	}
}
