package experiment

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
)

// Job is one training run of an experiment and the evaluations that follow it.
type Job struct {
	// ID names the job and its folder: DATASET[-Kshot]-seedS.
	ID string
	// Dataset is the training data set's name.
	Dataset string
	// Shots are the images per class drawn (0: all); Seed seeds the draw and the training.
	Shots int
	Seed  uint64
}

// Jobs lists the experiment's jobs in a fixed order: data sets in the file's order, then shots,
// then seeds. xd and dg have one job per seed, on the source data set.
func (c *Config) Jobs() []Job {
	var out []Job
	add := func(ds string, shots int) {
		for _, s := range c.Seeds {
			id := ds
			if c.Protocol == FewShot {
				id += fmt.Sprintf("-%dshot", shots)
			}
			out = append(out, Job{ID: fmt.Sprintf("%s-seed%d", id, s), Dataset: ds, Shots: shots, Seed: s})
		}
	}
	switch c.Protocol {
	case CrossDataset, DomainGen:
		add(c.Source, c.Shots[0])
	default:
		for _, d := range c.Datasets {
			for _, k := range c.Shots {
				add(d.Name, k)
			}
		}
	}
	return out
}

// fingerprint identifies what a job's result depends on: the experiment's settings, the job's
// data set (its folder and split file) and for xd/dg every target, its shots and its seed.
func (c *Config) jobFingerprint(j Job) string {
	var b strings.Builder
	b.WriteString(c.fingerprint())
	ds := []Dataset{*c.Dataset(j.Dataset)}
	if c.Protocol == CrossDataset || c.Protocol == DomainGen {
		ds = c.Datasets
	}
	for _, d := range ds {
		fmt.Fprintf(&b, "\x00%s\x00%s\x00%s", d.Name, d.Data, d.SplitFile)
	}
	fmt.Fprintf(&b, "\x00%d\x00%d", j.Shots, j.Seed)
	h := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(h[:])
}

// Shard is one share of an experiment's jobs: job i belongs to shard i mod Count. Index counts
// from 0, as Slurm array indices and Kubernetes completion indices do.
type Shard struct {
	Index, Count int
}

// ParseShard reads "I/N" with 0 <= I < N.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, errs.Input("--shard %q: want I/N with 0 <= I < N, e.g. 0/4 (I counts from 0, as $SLURM_ARRAY_TASK_ID and $JOB_COMPLETION_INDEX do)", s)
	}
	return Shard{Index: i, Count: n}, nil
}

// Select returns the jobs of the shard; the zero Shard selects every job.
func (s Shard) Select(jobs []Job) []Job {
	if s.Count <= 1 {
		return jobs
	}
	var out []Job
	for i, j := range jobs {
		if i%s.Count == s.Index {
			out = append(out, j)
		}
	}
	return out
}

// String renders the shard as I/N.
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }
