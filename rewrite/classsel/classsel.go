// Package classsel is the host side of class-wise skipping (CSkip): the configuration of the
// class-gather pass, the number K of top classes kept per step, and the tail rank positions
// drawn once per run. The trainer, the cost model, the step benchmarks and the CSkip strategy
// share it; the selection itself runs inside train_step.onnx (rewrite.ClassGather).
package classsel

import (
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/skipgraph/skipgraph/errs"
)

// PassName is the host pass that selects classes inside the train step.
const PassName = "class-gather"

// Config is CSkip's resolved configuration.
type Config struct {
	Ratio  float64
	Max    int
	Lambda float64
	Seed   uint64
}

// ParseConfig reads a Config from resolved arguments, checking ranges.
func ParseConfig(args map[string]string) (Config, error) {
	var c Config
	var err error
	if c.Ratio, err = strconv.ParseFloat(args["ratio"], 64); err != nil || c.Ratio <= 0 || c.Ratio > 1 {
		return c, errs.Input("ratio=%q must be in (0, 1]", args["ratio"])
	}
	if c.Max, err = strconv.Atoi(args["max"]); err != nil || c.Max < 1 {
		return c, errs.Input("max=%q must be a positive integer", args["max"])
	}
	if c.Lambda, err = strconv.ParseFloat(args["lambda"], 64); err != nil || c.Lambda < 0 {
		return c, errs.Input("lambda=%q must be >= 0", args["lambda"])
	}
	seed, err := strconv.ParseInt(args["seed"], 10, 64)
	if err != nil {
		return c, errs.Input("seed=%q is not an integer", args["seed"])
	}
	c.Seed = uint64(seed)
	return c, nil
}

// Args renders the configuration as pass arguments.
func (c Config) Args() map[string]string {
	return map[string]string{
		"ratio":  strconv.FormatFloat(c.Ratio, 'g', -1, 64),
		"max":    strconv.Itoa(c.Max),
		"lambda": strconv.FormatFloat(c.Lambda, 'g', -1, 64),
		"seed":   strconv.FormatUint(c.Seed, 10),
	}
}

// TopK returns K = min(ceil(ratio*C), max), at least 1 and at most C.
func (c Config) TopK(classes int) int {
	k := int(math.Ceil(c.Ratio*float64(classes) - 1e-9))
	k = min(k, c.Max, classes)
	return max(k, 1)
}

// ExpectedTail returns the expected number of tail rank positions kept per step: the sum of
// TailProbabilities, in closed form (a geometric series) for very many classes.
func (c Config) ExpectedTail(classes int) float64 {
	n := classes - c.TopK(classes)
	switch {
	case n <= 0 || c.Lambda == 0:
		return 0
	case n == 1:
		return 1
	case n <= 1<<16:
		s := 0.0
		for _, p := range c.TailProbabilities(classes) {
			s += p
		}
		return s
	}
	// p_i = (e^(-x_i/lambda) - e^(-5/lambda)) / (1 - e^(-5/lambda)), x_i = 5i/(n-1); the sum of
	// e^(-x_i/lambda) is (1 - r^n)/(1 - r) with r = e^(-5/(lambda(n-1))).
	nf := float64(n)
	a := 5 / (c.Lambda * (nf - 1))
	sum := -math.Expm1(-a*nf) / -math.Expm1(-a)
	lo := math.Exp(-5 / c.Lambda)
	return (sum - nf*lo) / (1 - lo)
}

// TailProbabilities returns the keep probability of each rank position K..C-1: the min-max
// normalised exponential density expon.pdf(linspace(0, 5, C-K), scale=lambda). Lambda 0 keeps
// none; a single tail position has probability 1 (the density's maximum).
func (c Config) TailProbabilities(classes int) []float64 {
	n := classes - c.TopK(classes)
	if n <= 0 {
		return nil
	}
	p := make([]float64, n)
	if c.Lambda == 0 {
		return p
	}
	if n == 1 {
		p[0] = 1
		return p
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range p {
		x := 5 * float64(i) / float64(n-1)
		p[i] = math.Exp(-x/c.Lambda) / c.Lambda
		lo, hi = math.Min(lo, p[i]), math.Max(hi, p[i])
	}
	for i := range p {
		if hi > lo {
			p[i] = (p[i] - lo) / (hi - lo)
		} else {
			p[i] = 1
		}
	}
	return p
}

// Tail draws, once per run from the seed, the rank positions beyond the top K that are kept.
// The positions are absolute ranks (K, K+1, ...), ascending.
func (c Config) Tail(classes int) []int64 {
	probs := c.TailProbabilities(classes)
	k := c.TopK(classes)
	r := rand.New(rand.NewPCG(c.Seed, 0x5eed_c5_1c))
	var out []int64
	for i, p := range probs {
		if r.Float64() < p {
			out = append(out, int64(k+i))
		}
	}
	return out
}
