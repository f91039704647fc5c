package bundle

import (
	"fmt"
	"math"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/rewrite"
)

// Update says where a Stepper applies the optimizer update.
type Update int

const (
	// UpdateAuto applies it on the host when the Stepper is on the CPU and the step allows it
	// (UpdateHost), else in the graph (UpdateGraph).
	UpdateAuto Update = iota
	// UpdateGraph runs train_step.onnx as written: ORT computes the update, and each parameter
	// and optimizer state has a second buffer for its .next output.
	UpdateGraph
	// UpdateHost runs the gradient part of train_step.onnx only (every <name>_grad value, the
	// loss and the other outputs; the update's nodes are left out) and applies the same update,
	// operation for operation in float32, in place over the one buffer of each parameter and
	// state: one pass over memory per parameter instead of one per elementwise node, and no
	// second copies. CPU only, float32 steps without loss scaling.
	UpdateHost
)

// String returns the flag spelling of u.
func (u Update) String() string {
	switch u {
	case UpdateGraph:
		return "graph"
	case UpdateHost:
		return "host"
	}
	return "auto"
}

// ParseUpdate reads auto, graph or host.
func ParseUpdate(s string) (Update, error) {
	for _, u := range []Update{UpdateAuto, UpdateGraph, UpdateHost} {
		if strings.EqualFold(s, u.String()) {
			return u, nil
		}
	}
	return 0, fmt.Errorf("unknown update %q (use auto, graph or host)", s)
}

// hostUpdateBlocker says why the train step of man cannot have its update applied on the host,
// as far as the manifest tells, or "" when it can; gradientsMissing checks the graph.
func hostUpdateBlocker(man *Manifest) string {
	switch {
	case man.Precision != "" && !strings.EqualFold(man.Precision, "fp32"):
		return "the step computes in " + man.Precision + " (the update runs in the graph)"
	case man.LossScale != nil:
		return "the step uses loss scaling (the update runs in the graph)"
	case man.Optimizer.Kind != "sgd" && man.Optimizer.Kind != "adamw":
		return fmt.Sprintf("optimizer %q has no host update", man.Optimizer.Kind)
	}
	return ""
}

// gradientsMissing says which trainable parameter of man has no gradient value in the train
// step g, or "" when every one has.
func gradientsMissing(man *Manifest, g *graph.Graph) string {
	for _, p := range man.Trainable() {
		if v := g.Value(p.Initializer + GradSuffix); v == nil {
			return "the train step names no gradient " + p.Initializer + GradSuffix + " (convert the model again)"
		}
	}
	return ""
}

// gradientStepDrops reports whether a train-step output of this role is left out of the gradient
// session of a host update: the update's results, and the gradients, which it binds itself.
func gradientStepDrops(r Role) bool {
	return r == RoleParamNext || r == RoleStateNext || r == RoleGrad
}

// hostParam is one parameter's update: its values, gradient and optimizer state (SGD's momentum,
// or AdamW's m and v), all float32 slices the session reads or writes in place, and its
// learning-rate input.
type hostParam struct {
	p, g  []float32
	state [][]float32
	lr    string
}

// hostUpdater applies the optimizer update over hostParams, split into chunks that a fixed set
// of worker goroutines (started once, so a step allocates nothing) take in turn.
type hostUpdater struct {
	cfg     rewrite.OptimizerConfig
	params  []hostParam
	lr      map[string]float32 // by input name, lr.<group>
	step    float32
	chunks  []updateChunk
	workers int

	next  atomic.Int64 // the next chunk to take
	start chan struct{}
	wg    sync.WaitGroup
}

// updateChunk is elements [lo, hi) of params[i].
type updateChunk struct{ i, lo, hi int }

// chunkLen is the number of elements a worker updates at a time: big enough to amortise the
// hand-off, small enough to balance the workers over a few large tensors.
const chunkLen = 1 << 15

func newHostUpdater(cfg rewrite.OptimizerConfig, params []hostParam, workers int) *hostUpdater {
	u := &hostUpdater{cfg: cfg, params: params, lr: map[string]float32{}}
	for i, p := range params {
		for lo := 0; lo < len(p.p); lo += chunkLen {
			u.chunks = append(u.chunks, updateChunk{i, lo, min(lo+chunkLen, len(p.p))})
		}
	}
	u.workers = max(min(workers, len(u.chunks)), 1)
	u.start = make(chan struct{})
	for range u.workers - 1 {
		go func() {
			for range u.start {
				u.work()
				u.wg.Done()
			}
		}()
	}
	return u
}

// close stops the worker goroutines.
func (u *hostUpdater) close() { close(u.start) }

// apply runs one update with the learning rates and step number last set.
func (u *hostUpdater) apply() error {
	for i := range u.params {
		if _, ok := u.lr[u.params[i].lr]; !ok {
			return fmt.Errorf("train step: no value for %s (set it before the step)", u.params[i].lr)
		}
	}
	u.next.Store(0)
	u.wg.Add(u.workers - 1)
	for range u.workers - 1 {
		u.start <- struct{}{}
	}
	u.work()
	u.wg.Wait()
	return nil
}

// work updates chunks until none is left.
func (u *hostUpdater) work() {
	for {
		k := int(u.next.Add(1)) - 1
		if k >= len(u.chunks) {
			return
		}
		c := u.chunks[k]
		u.update(&u.params[c.i], c.lo, c.hi)
	}
}

// update applies the optimizer to elements [lo, hi) of hp. Each product is converted to float32
// on its own so that no multiply-add is fused: the result is the graph's, node for node.
func (u *hostUpdater) update(hp *hostParam, lo, hi int) {
	lr := u.lr[hp.lr]
	p, g := hp.p[lo:hi], hp.g[lo:hi]
	switch u.cfg.Kind {
	case "sgd":
		wd, mom := float32(u.cfg.WeightDecay), float32(u.cfg.Momentum)
		if mom == 0 {
			sgd(p, g, nil, lr, wd, 0)
			return
		}
		sgd(p, g, hp.state[0][lo:hi], lr, wd, mom)
	case "adamw":
		adamw(p, g, hp.state[0][lo:hi], hp.state[1][lo:hi], lr, u.step, u.cfg)
	}
}

// sgd is PyTorch's SGD as the graph writes it: d = g + wd*p; buf = mom*buf + d; p -= lr*buf
// (without momentum, p -= lr*d).
func sgd(p, g, buf []float32, lr, wd, mom float32) {
	g = g[:len(p)]
	if buf == nil {
		for i := range p {
			d := g[i]
			if wd != 0 {
				d = d + float32(p[i]*wd)
			}
			p[i] = p[i] - float32(lr*d)
		}
		return
	}
	buf = buf[:len(p)]
	for i := range p {
		d := g[i]
		if wd != 0 {
			d = d + float32(p[i]*wd)
		}
		b := float32(buf[i]*mom) + d
		buf[i] = b
		p[i] = p[i] - float32(lr*b)
	}
}

// adamw is AdamW as the graph writes it: m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
// p = p*(1 - lr*wd) - lr * (m/c1) / (sqrt(v/c2) + eps), with c = 1 - beta^step.
func adamw(p, g, m, v []float32, lr, step float32, cfg rewrite.OptimizerConfig) {
	b1, b2 := float32(cfg.Beta1), float32(cfg.Beta2)
	omb1, omb2 := float32(1-cfg.Beta1), float32(1-cfg.Beta2)
	eps := float32(cfg.Eps)
	c1 := 1 - float32(math.Pow(float64(b1), float64(step)))
	c2 := 1 - float32(math.Pow(float64(b2), float64(step)))
	decay := float32(1)
	if cfg.WeightDecay != 0 {
		decay = 1 - float32(lr*float32(cfg.WeightDecay))
	}
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for i := range p {
		gi := g[i]
		mi := float32(m[i]*b1) + float32(gi*omb1)
		vi := float32(v[i]*b2) + float32(float32(gi*gi)*omb2)
		m[i], v[i] = mi, vi
		upd := (mi / c1) / (float32(math.Sqrt(float64(vi/c2))) + eps)
		pi := p[i]
		if cfg.WeightDecay != 0 {
			pi = float32(pi * decay)
		}
		p[i] = pi - float32(lr*upd)
	}
}

// defaultUpdateWorkers is the number of goroutines of a host update: the session's intra-op
// threads when set, else the CPUs Go may use.
func defaultUpdateWorkers(threads int) int {
	if threads > 0 {
		return threads
	}
	return goruntime.GOMAXPROCS(0)
}
