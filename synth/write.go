package synth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/safeio"
)

// Write builds the model(s) described by cfg and saves them in dir (created if needed) with
// onnxio.Save: each file is written under a temporary name and renamed, and a model over 2 GiB
// gets its weights in an external data file beside it. It returns the Result; its Models are
// keyed by the file names written.
func Write(cfg Config, dir string) (*Result, error) {
	res, err := Build(cfg)
	if err != nil {
		return nil, err
	}
	if err := res.Save(dir, onnxio.SaveOptions{}); err != nil {
		return nil, err
	}
	return res, nil
}

// Save writes the result's models into dir with onnxio.Save and the given options.
func (r *Result) Save(dir string, opts onnxio.SaveOptions) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	keys := make([]string, 0, len(r.Models))
	for k := range r.Models {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := onnxio.Save(r.Models[k], filepath.Join(dir, k), opts); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	return nil
}

// Recognise returns nil when path is a model that synth wrote (its producer is
// skipgraph-synth), else why not.
func Recognise(path string) error {
	if err := safeio.CheckRegular(path); err != nil {
		return err
	}
	m, err := onnxio.Load(path)
	if err != nil {
		return errors.New("not an ONNX model")
	}
	if onnxio.ModelInfo(m).ProducerName != "skipgraph-synth" {
		return errors.New("a model that 'skipgraph synth' did not write")
	}
	return nil
}
