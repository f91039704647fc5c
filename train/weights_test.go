package train

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/tensorio"
)

// TestWeightFiles: a run writes its parameters and checkpoints as safetensors files named by the
// canonical torch names; they load back, as does a full state dict and a run in the .npy layout
// of earlier versions.
func TestWeightFiles(t *testing.T) {
	b := fixtureBundle(t, "lskip,cskip")
	man, err := bundle.ReadManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	cfg := quickConfig(t, b, out)
	cfg.Epochs = 2
	if _, err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	trained, err := LoadParams(out, man)
	if err != nil {
		t.Fatal(err)
	}

	// The file holds exactly the trainable parameters, under their torch names.
	s, err := tensorio.LoadSafetensors(filepath.Join(out, ParamsFile))
	if err != nil {
		t.Fatal(err)
	}
	if s.Metadata["format"] != "pt" {
		t.Errorf("metadata %v lacks format=pt", s.Metadata)
	}
	var want []string
	for _, p := range man.Trainable() {
		for _, c := range p.Canonical {
			want = append(want, strings.SplitN(c, "[", 2)[0])
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	var got []string
	for n := range s.Tensors {
		got = append(got, n)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("tensor names %v, want the canonical names %v", got, want)
	}
	for _, n := range got {
		if !strings.HasPrefix(n, "text_model.") && !strings.HasPrefix(n, "vision_model.") && n != "visual_projection.weight" && n != "text_projection.weight" {
			t.Errorf("tensor %q is not named as in a Hugging Face CLIP state dict", n)
		}
	}
	if len(trained) != len(man.Trainable()) {
		t.Fatalf("loaded %d parameters, the bundle trains %d", len(trained), len(man.Trainable()))
	}

	// A transposed initializer is stored in torch's [out, in] layout.
	for _, p := range man.Trainable() {
		if !p.Transposed || len(p.Shape) != 2 {
			continue
		}
		tt := s.Tensors[p.Canonical[0]]
		if tt == nil || tt.Shape[0] != p.Shape[1] || tt.Shape[1] != p.Shape[0] {
			t.Fatalf("%s: stored shape %v, want the transpose of %v", p.Canonical[0], tt.Shape, p.Shape)
		}
		src, dst := trained[p.Initializer].Float32s(), tt.Float32s()
		if dst[1] != src[p.Shape[1]] {
			t.Fatalf("%s: element [0,1] is %g, want the initializer's [1,0] %g", p.Canonical[0], dst[1], src[p.Shape[1]])
		}
		break
	}

	// A checkpoint holds the same two kinds of file and resumes.
	ckDir := filepath.Join(out, CheckpointsDir, "epoch-2")
	ck, params, state, err := readCheckpoint(ckDir, man)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Epoch != 2 || len(params) != len(trained) || len(state) == 0 {
		t.Fatalf("checkpoint: epoch %d, %d params, %d state tensors", ck.Epoch, len(params), len(state))
	}
	for name := range state {
		if !strings.HasSuffix(name, ".momentum") || man.Param(strings.TrimSuffix(name, ".momentum")) == nil {
			t.Errorf("optimizer state %q is not <initializer>.momentum", name)
		}
	}

	// A full state dict: frozen parameters and unknown buffers are passed over.
	full := map[string]*tensorio.Tensor{"text_model.embeddings.position_ids": tensorio.Scalar[int64](0)}
	for n, v := range s.Tensors {
		full[n] = v
	}
	for _, p := range man.Parameters {
		if !p.Trainable && len(p.Shape) == 1 {
			v, _ := tensorio.New(tensorio.Float32, p.Shape...)
			full[p.Canonical[0]] = v
			break
		}
	}
	sd := filepath.Join(t.TempDir(), "model.safetensors")
	if err := tensorio.SaveSafetensors(sd, full, nil); err != nil {
		t.Fatal(err)
	}
	fromFull, err := LoadParams(sd, man)
	if err != nil {
		t.Fatal(err)
	}
	assertSameTensors(t, fromFull, trained)

	// Runs and checkpoints of earlier versions: one .npy file per tensor.
	old := filepath.Join(t.TempDir(), "old")
	for _, d := range []string{filepath.Join(old, ParamsDir), filepath.Join(old, "ck", ParamsDir), filepath.Join(old, "ck", optimizerSubdir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := SaveTensors(filepath.Join(old, ParamsDir), trained); err != nil {
		t.Fatal(err)
	}
	fromOld, err := LoadParams(old, man)
	if err != nil {
		t.Fatal(err)
	}
	assertSameTensors(t, fromOld, trained)
	SaveTensors(filepath.Join(old, "ck", ParamsDir), params)
	SaveTensors(filepath.Join(old, "ck", optimizerSubdir), state)
	writeJSON(filepath.Join(old, "ck", CheckpointFile), ck)
	_, oldParams, oldState, err := readCheckpoint(filepath.Join(old, "ck"), man)
	if err != nil {
		t.Fatal(err)
	}
	assertSameTensors(t, oldParams, params)
	assertSameTensors(t, oldState, state)
}

func assertSameTensors(t *testing.T, got, want map[string]*tensorio.Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	for n, w := range want {
		g := got[n]
		if g == nil {
			t.Fatalf("tensor %s missing", n)
		}
		if d, err := tensorio.MaxAbsDiff(g, w); err != nil || d != 0 {
			t.Fatalf("tensor %s differs by %g (%v)", n, d, err)
		}
	}
}
