package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/tensorio"
)

// ExportConfig configures Export.
type ExportConfig struct {
	// Bundle is the bundle the parameters were trained with.
	Bundle string
	// Params is the training output folder (or a parameter folder).
	Params string
	// Out is the model file to write; for a split source (two files), a folder that receives
	// both files under their source names.
	Out string
	// Source overrides the source model's path recorded in the manifest (the file moved); for a
	// split source, the folder holding both files.
	Source string
	// Force replaces an existing Out.
	Force bool
}

// Export writes the bundle's source export with the trained parameters in place of its
// initializers: same inputs, outputs and names; float16 (bfloat16, float64) initializers get
// the trained float32 values converted back. The source's sha256 must match the manifest's.
// It returns the paths written.
func Export(cfg ExportConfig) ([]string, error) {
	man, err := bundle.ReadManifest(cfg.Bundle)
	if err != nil {
		return nil, err
	}
	if cfg.Out == "" {
		return nil, errs.Input("no output given (-o model.onnx)")
	}
	params, err := LoadParams(cfg.Params, man)
	if err != nil {
		return nil, err
	}
	if err := checkParams(man, params, cfg.Params); err != nil {
		return nil, err
	}
	files := man.Source.Files
	if len(files) == 0 {
		return nil, errs.Input("%s: the manifest names no source model; convert the model again", cfg.Bundle)
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
		if cfg.Source != "" {
			paths[i] = cfg.Source
			if len(files) > 1 {
				paths[i] = filepath.Join(cfg.Source, filepath.Base(f.Path))
			}
		}
		if err := checkSource(paths[i], f, cfg.Source != ""); err != nil {
			return nil, err
		}
	}
	out := safeio.Output{Path: cfg.Out, What: "an exported model", Inputs: append([]string{cfg.Bundle, cfg.Params}, paths...), Force: cfg.Force, Ours: RecogniseExport}
	if st, err := os.Stat(cfg.Out); err == nil && st.IsDir() && len(files) == 1 {
		return nil, errs.Input("%s is a folder; the source is one model file, so give the file to write (-o %s)", cfg.Out, filepath.Join(cfg.Out, filepath.Base(files[0].Path)))
	}
	if err := out.Check(); err != nil {
		return nil, err
	}
	models := make([]*graph.Model, len(files))
	for i, p := range paths {
		if models[i], err = onnxio.Load(p); err != nil {
			return nil, err
		}
	}
	for _, p := range man.Trainable() {
		file, name := 0, p.Initializer
		if p.Split != nil {
			file, name = p.Split.File, p.Split.Name
		}
		if file < 0 || file >= len(models) {
			return nil, errs.Input("%s: parameter %s lies in source file %d, which the manifest does not list", cfg.Bundle, p.Initializer, file)
		}
		v := models[file].Graph.Value(name)
		if v == nil || v.Const == nil {
			return nil, errs.Input("%s: has no initializer %s; is it the bundle's source model?", paths[file], name)
		}
		t, err := toDType(params[p.Initializer], v.Const)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", p.Initializer, err)
		}
		v.Const = t
	}
	for _, m := range models {
		onnxio.SetMetadata(m, ExportMetadataKey, "trained parameters of "+filepath.Base(filepath.Clean(cfg.Params)))
	}
	var outs []string
	if len(models) == 1 {
		outs = []string{cfg.Out}
	} else {
		if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
			return nil, errs.Input("cannot create %s: %w", cfg.Out, safeio.PathCause(err))
		}
		for _, f := range files {
			outs = append(outs, filepath.Join(cfg.Out, filepath.Base(f.Path)))
		}
	}
	for i, m := range models {
		man.Stamp(m, "export")
		if err := onnxio.Save(m, outs[i], onnxio.SaveOptions{}); err != nil {
			return nil, err
		}
	}
	return outs, nil
}

// ExportMetadataKey is the metadata_props key that Export writes into the models it writes, by
// which a later export recognises a file it may replace.
const ExportMetadataKey = "skipgraph.export"

// RecogniseExport returns nil when path is a model that Export wrote (or, for a split source, a
// folder holding only such models and their external data), else why not.
func RecogniseExport(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return safeio.PathCause(err)
	}
	if !st.IsDir() {
		return recogniseExportFile(path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return safeio.PathCause(err)
	}
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() && strings.HasSuffix(n, ".onnx.data") {
			continue
		}
		if e.IsDir() || !strings.HasSuffix(n, ".onnx") {
			return fmt.Errorf("it holds %s, which an export does not write", n)
		}
		if err := recogniseExportFile(filepath.Join(path, n)); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	return nil
}

func recogniseExportFile(path string) error {
	if err := safeio.CheckRegular(path); err != nil {
		return safeio.PathCause(err)
	}
	m, err := onnxio.Load(path)
	if err != nil {
		return errors.New("not an ONNX model")
	}
	for _, kv := range onnxio.ModelInfo(m).Metadata {
		if kv.Key == ExportMetadataKey {
			return nil
		}
	}
	return errors.New("a model that 'skipgraph export' did not write")
}

// checkSource verifies that path is the source file the bundle was made from.
func checkSource(path string, want bundle.SourceFile, override bool) error {
	f, err := safeio.Open(path)
	if err != nil {
		if override {
			return errs.Input("--source %s: %w", path, safeio.PathCause(err))
		}
		return errs.Input("source model %s (from the bundle's manifest): %w; pass --source PATH if it moved", path, safeio.PathCause(err))
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 {
		return errs.Input("%s: sha256 %s differs from the bundle's source (%s, sha256 %s); the file changed since the bundle was made: give the original with --source, or convert the model again", path, got[:16]+"...", want.Path, want.SHA256[:min(16, len(want.SHA256))]+"...")
	}
	return nil
}

// toDType converts a trained float32 parameter to the layout and element type of the
// initializer it replaces.
func toDType(t *tensorio.Tensor, like *graph.Tensor) (*graph.Tensor, error) {
	f, err := t.AsFloat32()
	if err != nil {
		return nil, err
	}
	if int64(len(f)) != like.NumElements() {
		return nil, fmt.Errorf("%d values for an initializer of shape %v", len(f), like.Dims)
	}
	var raw []byte
	switch like.DType {
	case graph.Float:
		raw = make([]byte, 4*len(f))
		for i, x := range f {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
		}
	case graph.Float16, graph.BFloat16:
		raw = make([]byte, 2*len(f))
		for i, x := range f {
			h := tensorio.Float32ToFloat16(x)
			if like.DType == graph.BFloat16 {
				h = tensorio.Float32ToBFloat16(x)
			}
			binary.LittleEndian.PutUint16(raw[2*i:], h)
		}
	case graph.Double:
		raw = make([]byte, 8*len(f))
		for i, x := range f {
			binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(float64(x)))
		}
	default:
		return nil, fmt.Errorf("initializer type %s is not floating point", like.DType)
	}
	return graph.NewTensor(like.DType, like.Dims, raw), nil
}
