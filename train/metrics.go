package train

// Metrics, evaluation during training and checkpoints.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/atomicfile"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/tensorio"
)

// checkpoint writes the run's state and prunes older checkpoints.
func (t *trainer) checkpoint(ck Checkpoint) error {
	dir := filepath.Join(t.cfg.Out, CheckpointsDir, checkpointName(ck))
	if err := writeCheckpoint(dir, t.man, ck, t.currentParams(), t.currentState()); err != nil {
		return fmt.Errorf("writing checkpoint %s: %w", dir, err)
	}
	pruneCheckpoints(t.cfg.Out, t.cfg.KeepCheckpoints)
	return nil
}

// evaluate classifies a data set with the eval graph and the given parameters.
func (t *trainer) evaluate(ds *data.Dataset, params map[string]*tensorio.Tensor) (*Evaluation, error) {
	sc, err := t.openScorer()
	if err != nil {
		return nil, err
	}
	return evaluateWith(sc, t.prompts, t.evalPrep, ds, params, t.cfg.FeatureBatch, decodeAhead(t.cfg.DecodeAhead))
}

// openScorer opens eval.onnx (once, on first use).
func (t *trainer) openScorer() (*Scorer, error) {
	if t.scorer == nil {
		rec, err := t.man.Graph("eval")
		if err != nil {
			return nil, errs.AsInput(err)
		}
		if t.scorer, err = OpenScorer(filepath.Join(t.cfg.Bundle, rec.File), t.opts); err != nil {
			return nil, err
		}
	}
	return t.scorer, nil
}

// truncateMetrics keeps the records of metrics.jsonl up to a checkpoint (step records up to
// step, epoch records up to epoch), dropping what a resumed run will write again.
func truncateMetrics(path string, step, epoch int) error {
	b, err := safeio.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep bytes.Buffer
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r struct {
			Type  string `json:"type"`
			Step  int    `json:"step"`
			Epoch int    `json:"epoch"`
		}
		if json.Unmarshal(line, &r) != nil {
			continue
		}
		if (r.Type == "step" && r.Step <= step) || (r.Type == "epoch" && r.Epoch <= epoch) {
			keep.Write(line)
			keep.WriteByte('\n')
		}
	}
	return atomicfile.Write(path, keep.Bytes())
}

func writeRecord(w io.Writer, rec map[string]any) {
	b, err := json.Marshal(rec)
	if err == nil {
		w.Write(append(b, '\n'))
	}
}

// jsonNum makes NaN encodable (as null).
func jsonNum(x float64) any {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return x
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
