// Package experiment runs the evaluation protocols of CoOp, CoCoOp and the Skip Tuning paper
// over several data sets and seeds: base-to-new generalisation, few-shot, cross-dataset transfer
// and domain generalisation. An experiment is a configuration file (YAML or JSON); it converts the
// model once, runs each (data set, shots, seed) job into a folder of its own, skips jobs whose
// results are already recorded, can run one deterministic share of the jobs (sharding on a batch
// system), and writes the paper-style table as Markdown, JSON and CSV.
package experiment

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/strategy"
)

// Protocols.
const (
	// Base2New trains on the base half of each data set's classes and reports base accuracy,
	// new accuracy and their harmonic mean H.
	Base2New = "base2new"
	// FewShot trains on all classes with K shots per class and reports the test accuracy.
	FewShot = "fewshot"
	// CrossDataset trains on the source data set and evaluates on every data set's test split
	// with its own class names.
	CrossDataset = "xd"
	// DomainGen trains on the source data set and evaluates on shifted variants that share its
	// classes.
	DomainGen = "dg"
)

// Config is an experiment file.
type Config struct {
	// Name titles the table.
	Name string `yaml:"name" json:"name"`
	// Model is the CLIP export (a .onnx file or a split-export folder).
	Model string `yaml:"model" json:"model"`
	// Tokenizer is the tokenizer folder or file (default: beside the model).
	Tokenizer string `yaml:"tokenizer,omitempty" json:"tokenizer,omitempty"`
	// Out is the experiment folder (the -o flag overrides it).
	Out string `yaml:"out,omitempty" json:"out,omitempty"`
	// Protocol is base2new (the default), fewshot, xd or dg.
	Protocol string `yaml:"protocol" json:"protocol"`
	// Datasets are the data sets, in table order.
	Datasets []Dataset `yaml:"datasets" json:"datasets"`
	// Source names the training data set of xd and dg (default: the first).
	Source string `yaml:"source,omitempty" json:"source,omitempty"`
	// Shots are the images per class drawn for training (0: all); a list runs each value
	// (fewshot), the other protocols take one value. Default 16.
	Shots IntList `yaml:"shots" json:"shots"`
	// Seeds are the seeds run for every job (default 1, 2, 3).
	Seeds []uint64 `yaml:"seeds" json:"seeds"`
	// Templates are the prompt templates (default data.DefaultTemplate).
	Templates []string `yaml:"templates,omitempty" json:"templates,omitempty"`
	// Strategies are applied in order (default lskip then cskip).
	Strategies []Strategy `yaml:"strategies" json:"strategies"`
	// Train holds the training settings.
	Train Training `yaml:"train" json:"train"`
	// EvalBatch is the number of images per evaluation run (default 32).
	EvalBatch int `yaml:"eval_batch,omitempty" json:"eval_batch,omitempty"`

	// dir is the folder the configuration's relative paths are relative to.
	dir string
}

// Dataset is one data set of an experiment.
type Dataset struct {
	// Name is the data set's name in the table and in job names (letters, digits, - _ .).
	Name string `yaml:"name" json:"name"`
	// Data is the data set's folder (train/ [val/] test/ class folders), or the image root of
	// SplitFile.
	Data string `yaml:"data" json:"data"`
	// SplitFile is a published split file (split_zhou_<Name>.json) relative to Data's images.
	SplitFile string `yaml:"split_file,omitempty" json:"split_file,omitempty"`
}

// Strategy is one strategy with its arguments, as 'skipgraph convert --set' takes them.
type Strategy struct {
	Name string         `yaml:"name" json:"name"`
	Args map[string]any `yaml:"args,omitempty" json:"args,omitempty"`
}

// Training holds the training settings of every job; zero values take the paper's recipe
// (train.DefaultConfig) and the bundle's learning rates.
type Training struct {
	Epochs       int                `yaml:"epochs,omitempty" json:"epochs,omitempty"`
	Batch        int                `yaml:"batch,omitempty" json:"batch,omitempty"`
	LR           map[string]float64 `yaml:"lr,omitempty" json:"lr,omitempty"`
	WarmupEpochs *int               `yaml:"warmup_epochs,omitempty" json:"warmup_epochs,omitempty"`
	WarmupLR     *float64           `yaml:"warmup_lr,omitempty" json:"warmup_lr,omitempty"`
	NoAugment    bool               `yaml:"no_augment,omitempty" json:"no_augment,omitempty"`
	Device       string             `yaml:"device,omitempty" json:"device,omitempty"`
	Threads      int                `yaml:"threads,omitempty" json:"threads,omitempty"`
}

// IntList is a list of integers that a configuration may also give as one number.
type IntList []int

// UnmarshalYAML takes a number or a list of numbers.
func (l *IntList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var v int
		if err := n.Decode(&v); err != nil {
			return err
		}
		*l = IntList{v}
		return nil
	}
	var v []int
	if err := n.Decode(&v); err != nil {
		return err
	}
	*l = v
	return nil
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Load reads an experiment file (YAML, or JSON, which is YAML too), fills the defaults, makes
// its paths relative to the file's folder absolute and checks it. Unknown keys are errors.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Input("%s: %w", path, safeio.PathCause(err))
	}
	return Parse(raw, path)
}

// Parse is Load on the file's content; path names it in errors and gives the folder that
// relative paths start from.
func Parse(raw []byte, path string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if err == io.EOF {
			return nil, errs.Input("%s: empty experiment file", path)
		}
		return nil, errs.Input("%s: %s", path, strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), "\n", "; "))
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	c.dir = abs
	if err := c.normalise(path); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) rel(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// normalise fills defaults, resolves paths and checks the configuration.
func (c *Config) normalise(path string) error {
	bad := func(format string, a ...any) error {
		return errs.Input("%s: %s", path, fmt.Sprintf(format, a...))
	}
	if c.Protocol == "" {
		c.Protocol = Base2New
	}
	switch c.Protocol {
	case Base2New, FewShot, CrossDataset, DomainGen:
	default:
		return bad("protocol %q: want base2new, fewshot, xd or dg", c.Protocol)
	}
	if c.Model == "" {
		return bad("no model; give the CLIP export as model: PATH")
	}
	c.Model, c.Tokenizer, c.Out = c.rel(c.Model), c.rel(c.Tokenizer), c.rel(c.Out)
	if len(c.Datasets) == 0 {
		return bad("no datasets; list them as datasets: [{name: NAME, data: DIR}, ...]")
	}
	seen := map[string]bool{}
	for i := range c.Datasets {
		d := &c.Datasets[i]
		if !namePattern.MatchString(d.Name) {
			return bad("datasets[%d]: name %q: use letters, digits, '-', '_' or '.'", i, d.Name)
		}
		if seen[d.Name] {
			return bad("datasets[%d]: name %q is used twice", i, d.Name)
		}
		seen[d.Name] = true
		if d.Data == "" {
			return bad("datasets[%d] (%s): no data folder; give data: DIR", i, d.Name)
		}
		d.Data, d.SplitFile = c.rel(d.Data), c.rel(d.SplitFile)
	}
	if c.Protocol == CrossDataset || c.Protocol == DomainGen {
		if c.Source == "" {
			c.Source = c.Datasets[0].Name
		}
		if !seen[c.Source] {
			return bad("source %q is not one of the datasets", c.Source)
		}
		if len(c.Datasets) < 2 {
			return bad("protocol %s needs the source and at least one target data set", c.Protocol)
		}
	} else if c.Source != "" {
		return bad("source applies to the xd and dg protocols, not %s", c.Protocol)
	}
	if len(c.Shots) == 0 {
		c.Shots = IntList{16}
	}
	if len(c.Shots) > 1 && c.Protocol != FewShot {
		return bad("shots %v: protocol %s takes one value (a list is for fewshot)", []int(c.Shots), c.Protocol)
	}
	for _, k := range c.Shots {
		if k < 0 {
			return bad("shots %d: want 0 (all images) or more", k)
		}
	}
	if len(uniqueInts(c.Shots)) != len(c.Shots) {
		return bad("shots %v: a value is given twice", []int(c.Shots))
	}
	if len(c.Seeds) == 0 {
		c.Seeds = []uint64{1, 2, 3}
	}
	if len(uniqueInts(c.Seeds)) != len(c.Seeds) {
		return bad("seeds %v: a seed is given twice", c.Seeds)
	}
	if len(c.Templates) == 0 {
		c.Templates = []string{data.DefaultTemplate}
	}
	for _, t := range c.Templates {
		if err := data.CheckTemplate(t); err != nil {
			return bad("%v", err)
		}
	}
	if len(c.Strategies) == 0 {
		c.Strategies = []Strategy{{Name: "lskip"}, {Name: "cskip"}}
	}
	for i, s := range c.Strategies {
		st, ok := strategy.Builtin(s.Name)
		if !ok {
			return bad("strategies[%d]: %q is not a built-in strategy", i, s.Name)
		}
		if _, err := strategy.ResolveArgs(st.Info(), s.args()); err != nil {
			return bad("strategies[%d]: %v", i, err)
		}
	}
	t := &c.Train
	if t.Epochs < 0 || t.Batch < 0 || t.Threads < 0 {
		return bad("train: epochs, batch and threads must be >= 0")
	}
	if c.EvalBatch < 0 {
		return bad("eval_batch %d: want > 0", c.EvalBatch)
	}
	return nil
}

func uniqueInts[T comparable](xs []T) map[T]bool {
	m := map[T]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// args renders a strategy's arguments as strings.
func (s Strategy) args() map[string]string {
	out := map[string]string{}
	for k, v := range s.Args {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// Dataset returns the data set with the given name.
func (c *Config) Dataset(name string) *Dataset {
	for i := range c.Datasets {
		if c.Datasets[i].Name == name {
			return &c.Datasets[i]
		}
	}
	return nil
}

// fingerprint is a digest of the settings that make a job's result: everything but the list of
// data sets and seeds and the output folder (a job's own data set and seed are added by Job).
func (c *Config) fingerprint() string {
	type fp struct {
		Model, Tokenizer, Protocol, Source string
		Templates                          []string
		Strategies                         []Strategy
		Train                              Training
		EvalBatch                          int
	}
	b, _ := json.Marshal(fp{c.Model, c.Tokenizer, c.Protocol, c.Source, c.Templates, c.Strategies, c.Train, c.EvalBatch})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
