package train

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/atomicfile"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/tensorio"
)

// File and folder names in a training output folder.
const (
	RunFile        = "run.json"
	MetricsFile    = "metrics.jsonl"
	PlotFile       = "plot.png"
	CheckpointsDir = "checkpoints"
	CheckpointFile = "checkpoint.json"
	// ParamsFile holds the trained parameters (in a run's folder and in each checkpoint) and
	// OptimizerFile the optimizer state (in a checkpoint): safetensors files whose tensors are
	// named by their canonical torch names, in torch's layout (see bundle.Manifest.ToTorch).
	ParamsFile    = "params.safetensors"
	OptimizerFile = "optimizer.safetensors"
	// ParamsDir and IndexFile are the layout of earlier versions (one .npy file per tensor and
	// an index.json), still read.
	ParamsDir       = "params"
	IndexFile       = "index.json"
	optimizerSubdir = "optimizer"
)

// safetensorsMetadata is the header metadata of the files skipgraph writes; "format": "pt"
// tells Hugging Face loaders that the tensors are PyTorch's.
var safetensorsMetadata = map[string]string{"format": "pt"}

// SaveParams writes tensors keyed by source initializer names (parameters, or optimizer state
// "<initializer>.momentum" ...) to path as a safetensors file under their canonical torch names,
// through a temporary file that is renamed.
func SaveParams(path string, man *bundle.Manifest, ts map[string]*tensorio.Tensor) error {
	torch, err := man.ToTorch(ts)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return tensorio.SaveSafetensors(path, torch, safetensorsMetadata)
}

// loadTorchFile reads a safetensors file of canonical torch names and returns its tensors keyed
// by source initializer names. With params set it keeps only the parameters the bundle trains,
// so a full state dict (frozen weights and buffers included) serves too.
func loadTorchFile(path string, man *bundle.Manifest, params bool) (map[string]*tensorio.Tensor, error) {
	s, err := tensorio.LoadSafetensors(path)
	if err != nil {
		if cause := safeio.PathCause(err); cause != err {
			return nil, errs.Input("%s: %w", path, cause)
		}
		return nil, errs.AsInput(err)
	}
	ts, unknown, err := man.FromTorch(s.Tensors)
	if err != nil {
		return nil, errs.Input("%s: %w", path, err)
	}
	if !params {
		if len(unknown) > 0 {
			return nil, errs.Input("%s: tensor %s is not the state of a parameter of this bundle; was it written for another bundle?", path, unknown[0])
		}
		return ts, nil
	}
	for name := range ts {
		if p := man.Param(name); p == nil || !p.Trainable {
			delete(ts, name)
		}
	}
	return ts, nil
}

// tensorIndex is index.json of a tensor folder: which .npy file holds which tensor.
type tensorIndex struct {
	// Files maps a tensor's name (a source initializer name) to its file in the folder.
	Files map[string]string `json:"files"`
}

// SaveTensors writes each tensor as NAME.npy (the name path-escaped) into dir, which must
// exist, and an index.json listing them.
func SaveTensors(dir string, ts map[string]*tensorio.Tensor) error {
	idx := tensorIndex{Files: map[string]string{}}
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		file := url.PathEscape(n) + ".npy"
		if strings.HasPrefix(file, ".") {
			file = "_" + file
		}
		if err := tensorio.SaveNPY(filepath.Join(dir, file), ts[n]); err != nil {
			return err
		}
		idx.Files[n] = file
	}
	return writeJSON(filepath.Join(dir, IndexFile), idx)
}

// LoadTensors reads a folder written by SaveTensors.
func LoadTensors(dir string) (map[string]*tensorio.Tensor, error) {
	var idx tensorIndex
	if err := readJSON(filepath.Join(dir, IndexFile), &idx); err != nil {
		return nil, err
	}
	out := map[string]*tensorio.Tensor{}
	for n, f := range idx.Files {
		p, err := safeio.Within(dir, f)
		if err != nil && p == "" {
			return nil, errs.Input("%s: file %q of %s %w; parameter files lie in the index's folder", filepath.Join(dir, IndexFile), f, n, err)
		}
		if err != nil {
			return nil, errs.Input("%s: %w", errs.Path(p), safeio.PathCause(err))
		}
		t, err := tensorio.LoadNPY(p)
		if err != nil {
			// the cause without the path, which LoadNPY's errors repeat
			return nil, errs.Input("%s: %s", errs.Path(p), strings.TrimPrefix(safeio.PathCause(err).Error(), p+": "))
		}
		out[n] = t
	}
	return out, nil
}

// LoadParams reads the trained parameters of the bundle man describes, keyed by source
// initializer names, from: a safetensors file of canonical torch names (ParamsFile, or any state
// dict such as a Hugging Face model.safetensors, of which the parameters the bundle trains are
// taken); a training output folder or checkpoint folder (its ParamsFile, or the params/ folder
// of earlier versions); or a folder written by SaveTensors.
func LoadParams(path string, man *bundle.Manifest) (map[string]*tensorio.Tensor, error) {
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		return loadTorchFile(path, man, true)
	}
	if _, err := os.Lstat(filepath.Join(path, ParamsFile)); err == nil {
		p, err := safeio.Within(path, ParamsFile)
		if err != nil {
			return nil, errs.Input("%s: %s %w; a run's parameters lie in its folder", path, ParamsFile, err)
		}
		return loadTorchFile(p, man, true)
	}
	for _, dir := range []string{filepath.Join(path, ParamsDir), path} {
		if _, err := os.Stat(filepath.Join(dir, IndexFile)); err == nil {
			return LoadTensors(dir)
		}
	}
	if _, err := os.Stat(path); err != nil {
		return nil, errs.Input("%s: %w; give the output folder of 'skipgraph train'", path, safeio.PathCause(err))
	}
	if ck, err := latestCheckpoint(path); err == nil && ck != "" {
		return nil, errs.Input("%s: the run has no final parameters yet (its last checkpoint is %s); finish it with 'skipgraph train --resume %s' or pass --params %s", path, ck, path, ck)
	}
	return nil, errs.Input("%s: no trained parameters (no %s); give the output folder of 'skipgraph train' or a .safetensors file", path, ParamsFile)
}

// Checkpoint is checkpoint.json: where a run stood when the checkpoint was written.
type Checkpoint struct {
	// Epoch is the number of completed epochs.
	Epoch int `json:"epoch"`
	// Step is the number of optimizer steps done.
	Step int `json:"step"`
	// Cursor is the number of batches of epoch Epoch+1 already done (0 at an epoch's end).
	Cursor int `json:"cursor"`
	// Seed is the run's seed; RNG says how every random stream derives from it.
	Seed uint64 `json:"seed"`
	RNG  string `json:"rng"`
	// LossSum, Correct and Seen are the running sums of the epoch in progress.
	LossSum float64 `json:"loss_sum"`
	Correct int     `json:"correct"`
	Seen    int     `json:"seen"`
	// Elapsed is the training time so far, in seconds.
	Elapsed float64 `json:"elapsed_s"`
}

// rngDoc documents the random streams for checkpoint.json.
const rngDoc = "stateless: few-shot draw from seed; epoch e's batch order from PCG(seed, 0x9e3779b97f4a7c15^e); epoch e's augmentation from PCG(seed^0xa0761d6478bd642f, e)"

// writeCheckpoint writes dir (through a temporary folder beside it, renamed).
func writeCheckpoint(dir string, man *bundle.Manifest, ck Checkpoint, params, state map[string]*tensorio.Tensor) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-"+filepath.Base(dir)+"-")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := SaveParams(filepath.Join(tmp, ParamsFile), man, params); err != nil {
		return err
	}
	if err := SaveParams(filepath.Join(tmp, OptimizerFile), man, state); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(tmp, CheckpointFile), ck); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := replaceDir(tmp, dir); err != nil {
		return err
	}
	ok = true
	return nil
}

// replaceDir renames tmp to dir, replacing an existing dir.
func replaceDir(tmp, dir string) error {
	var old string
	if _, err := os.Stat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			os.Rename(old, dir)
		}
		return err
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}

// readCheckpoint reads a checkpoint folder: safetensors files, or the .npy folders of earlier
// versions.
func readCheckpoint(dir string, man *bundle.Manifest) (*Checkpoint, map[string]*tensorio.Tensor, map[string]*tensorio.Tensor, error) {
	var ck Checkpoint
	if err := readJSON(filepath.Join(dir, CheckpointFile), &ck); err != nil {
		return nil, nil, nil, err
	}
	var params, state map[string]*tensorio.Tensor
	var err error
	if _, serr := os.Stat(filepath.Join(dir, ParamsFile)); serr == nil {
		if params, err = loadTorchFile(filepath.Join(dir, ParamsFile), man, false); err == nil {
			state, err = loadTorchFile(filepath.Join(dir, OptimizerFile), man, false)
		}
	} else if params, err = LoadTensors(filepath.Join(dir, ParamsDir)); err == nil {
		state, err = LoadTensors(filepath.Join(dir, optimizerSubdir))
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return &ck, params, state, nil
}

// checkpoints lists the complete checkpoints of a run, oldest (fewest steps) first, and the
// checkpoint folders whose checkpoint.json cannot be read (as errors naming the file).
func checkpoints(out string) ([]string, []Checkpoint, []error) {
	root := filepath.Join(out, CheckpointsDir)
	entries, _ := os.ReadDir(root)
	type entry struct {
		dir string
		ck  Checkpoint
	}
	var list []entry
	var bad []error
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		var ck Checkpoint
		dir := filepath.Join(root, e.Name())
		if err := readJSON(filepath.Join(dir, CheckpointFile), &ck); err != nil {
			bad = append(bad, err)
			continue
		}
		list = append(list, entry{dir, ck})
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].ck.Step < list[j].ck.Step })
	dirs := make([]string, len(list))
	cks := make([]Checkpoint, len(list))
	for i, e := range list {
		dirs[i], cks[i] = e.dir, e.ck
	}
	return dirs, cks, bad
}

// latestCheckpoint returns the checkpoint folder with the most steps, or "". A checkpoint
// folder whose checkpoint.json cannot be read is an error: it may be the newest, and resuming
// from an older one without a word would silently redo (or skip) work.
func latestCheckpoint(out string) (string, error) {
	dirs, _, bad := checkpoints(out)
	if len(bad) > 0 {
		prev := "the start of the run"
		if len(dirs) > 0 {
			prev = filepath.Base(dirs[len(dirs)-1])
		}
		return "", errs.Input("%w; remove that checkpoint folder to resume from the newest readable one (%s)", bad[0], prev)
	}
	if len(dirs) == 0 {
		return "", nil
	}
	return dirs[len(dirs)-1], nil
}

// keepStepCheckpoints is how many step checkpoints (written within an epoch by
// --checkpoint-every or on an interrupt) a run keeps.
const keepStepCheckpoints = 2

// pruneCheckpoints keeps the newest keep epoch checkpoints (0: all) and the newest
// keepStepCheckpoints step checkpoints that are newer than the newest epoch checkpoint.
// Unreadable checkpoint folders are left alone.
func pruneCheckpoints(out string, keep int) {
	dirs, cks, _ := checkpoints(out)
	var epochs, steps []string
	lastEpochStep := -1
	for i, d := range dirs {
		if strings.HasPrefix(filepath.Base(d), "epoch-") {
			epochs = append(epochs, d)
			lastEpochStep = cks[i].Step
		}
	}
	for i, d := range dirs {
		if strings.HasPrefix(filepath.Base(d), "epoch-") {
			continue
		}
		if cks[i].Step <= lastEpochStep {
			os.RemoveAll(d)
			continue
		}
		steps = append(steps, d)
	}
	if len(steps) > keepStepCheckpoints {
		for _, d := range steps[:len(steps)-keepStepCheckpoints] {
			os.RemoveAll(d)
		}
	}
	if keep > 0 && len(epochs) > keep {
		for _, d := range epochs[:len(epochs)-keep] {
			os.RemoveAll(d)
		}
	}
}

// check refuses a checkpoint that does not fit the run resuming from it: a run of epochs
// epochs of perEpoch steps each, with the given seed.
func (ck *Checkpoint) check(dir string, epochs, perEpoch int, seed uint64) error {
	file := errs.Path(filepath.Join(dir, CheckpointFile))
	bad := func(format string, a ...any) error {
		return errs.Input("%s: %s; the checkpoint is damaged or of another run: remove its folder to resume from the one before it", file, fmt.Sprintf(format, a...))
	}
	switch {
	case ck.Epoch < 0 || ck.Epoch > epochs:
		return bad("epoch %d is outside the run's 0..%d", ck.Epoch, epochs)
	case ck.Cursor < 0 || ck.Cursor >= perEpoch || ck.Epoch == epochs && ck.Cursor != 0:
		return bad("cursor %d is outside the epoch's %d batches", ck.Cursor, perEpoch)
	case ck.Step != ck.Epoch*perEpoch+ck.Cursor:
		return bad("step %d does not match epoch %d and cursor %d (%d steps per epoch: want step %d)", ck.Step, ck.Epoch, ck.Cursor, perEpoch, ck.Epoch*perEpoch+ck.Cursor)
	case ck.Seed != seed:
		return bad("seed %d differs from the run's %d", ck.Seed, seed)
	case filepath.Base(dir) != checkpointName(*ck):
		return bad("it holds epoch %d, step %d, but its folder is not named %s", ck.Epoch, ck.Step, checkpointName(*ck))
	case ck.Seen < 0 || ck.Correct < 0 || ck.Correct > ck.Seen:
		return bad("%d correct of %d seen is not a count", ck.Correct, ck.Seen)
	case math.IsNaN(ck.LossSum) || math.IsInf(ck.LossSum, 0) || math.IsNaN(ck.Elapsed) || math.IsInf(ck.Elapsed, 0) || ck.Elapsed < 0:
		return bad("loss sum %g or elapsed time %g is not a finite number", ck.LossSum, ck.Elapsed)
	}
	return nil
}

// writeJSON writes v as indented JSON to path through a temporary file.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'))
}

func readJSON(path string, v any) error {
	b, err := safeio.ReadFile(path)
	if err != nil {
		return errs.Input("%s: %w", errs.Path(path), safeio.PathCause(err))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errs.Input("%s: not valid JSON: %w", errs.Path(path), err)
	}
	return nil
}

func checkpointName(ck Checkpoint) string {
	if ck.Cursor == 0 {
		return fmt.Sprintf("epoch-%d", ck.Epoch)
	}
	return fmt.Sprintf("step-%d", ck.Step)
}
