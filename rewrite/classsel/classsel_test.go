package classsel

import (
	"math"
	"testing"
)

func TestTopK(t *testing.T) {
	cases := []struct {
		ratio           float64
		max, classes, k int
	}{
		{0.5, 50, 100, 50},
		{0.5, 50, 101, 50},
		{0.5, 50, 5, 3},
		{0.5, 50, 1, 1},
		{0.3, 50, 10, 3},
		{1, 50, 20, 20},
		{0.5, 10, 100, 10},
		{0.01, 50, 10, 1},
	}
	for _, tc := range cases {
		if got := (Config{Ratio: tc.ratio, Max: tc.max}).TopK(tc.classes); got != tc.k {
			t.Errorf("TopK(ratio %g, max %d, C %d) = %d, want %d", tc.ratio, tc.max, tc.classes, got, tc.k)
		}
	}
}

func TestTailProbabilities(t *testing.T) {
	c := Config{Ratio: 0.5, Max: 50, Lambda: 0.3}
	p := c.TailProbabilities(20) // K = 10, 10 tail positions
	if len(p) != 10 || p[0] != 1 || p[9] != 0 {
		t.Fatalf("probabilities %v: want 10, from 1 down to 0", p)
	}
	for i := 1; i < len(p); i++ {
		if p[i] >= p[i-1] {
			t.Fatalf("probabilities must decrease: %v", p)
		}
	}
	// min-max normalised expon.pdf(x, scale=0.3) at x = 5/9: exp(-x/0.3) rescaled
	x := 5.0 / 9
	lo := math.Exp(-5 / 0.3)
	want := (math.Exp(-x/0.3) - lo) / (1 - lo)
	if math.Abs(p[1]-want) > 1e-12 {
		t.Fatalf("p[1] = %g, want %g", p[1], want)
	}
	if z := (Config{Ratio: 0.5, Max: 50}).TailProbabilities(20); z[0] != 0 {
		t.Fatalf("lambda 0 must keep no tail, got %v", z)
	}
	if one := c.TailProbabilities(3); len(one) != 1 || one[0] != 1 {
		t.Fatalf("a single tail position: %v", one)
	}
}

// TestTailFrequencies draws the tail for a fixed list of seeds and checks that each rank
// position is kept about as often as the paper's probability says: a binomial test per
// position at 5 standard deviations, so a correct sampler fails it with probability < 1e-5.
func TestTailFrequencies(t *testing.T) {
	const classes, seeds = 40, 4000
	for _, lambda := range []float64{0.3, 1, 3} {
		c := Config{Ratio: 0.5, Max: 50, Lambda: lambda}
		k := c.TopK(classes)
		p := c.TailProbabilities(classes)
		counts := make([]int, len(p))
		for s := uint64(0); s < seeds; s++ {
			c.Seed = s
			prev := int64(-1)
			for _, pos := range c.Tail(classes) {
				if pos < int64(k) || pos >= classes || pos <= prev {
					t.Fatalf("seed %d: tail %v is not ascending rank positions in [%d,%d)", s, c.Tail(classes), k, classes)
				}
				prev = pos
				counts[pos-int64(k)]++
			}
		}
		for i, pi := range p {
			mean := seeds * pi
			sd := math.Sqrt(seeds * pi * (1 - pi))
			if math.Abs(float64(counts[i])-mean) > 5*sd+1e-9 {
				t.Errorf("lambda %g, rank %d: kept %d of %d times, want %.1f ± %.1f", lambda, k+i, counts[i], seeds, mean, sd)
			}
		}
	}
	// the same seed draws the same tail
	c := Config{Ratio: 0.5, Max: 50, Lambda: 0.3, Seed: 7}
	a, b := c.Tail(classes), c.Tail(classes)
	if len(a) != len(b) {
		t.Fatal("the tail draw is not deterministic")
	}
}

func TestParseConfig(t *testing.T) {
	good := map[string]string{"ratio": "0.5", "max": "50", "lambda": "0.3", "seed": "3"}
	c, err := ParseConfig(good)
	if err != nil || c.Ratio != 0.5 || c.Max != 50 || c.Lambda != 0.3 || c.Seed != 3 {
		t.Fatalf("%+v %v", c, err)
	}
	for key, bad := range map[string]string{"ratio": "0", "max": "0", "lambda": "-1", "seed": "x"} {
		args := map[string]string{}
		for k, v := range good {
			args[k] = v
		}
		args[key] = bad
		if _, err := ParseConfig(args); err == nil {
			t.Errorf("%s=%s accepted", key, bad)
		}
	}
}

// TestExpectedTail: the closed form for many classes agrees with the sum of the probabilities,
// and absurd class counts neither panic nor allocate.
func TestExpectedTail(t *testing.T) {
	c := Config{Ratio: 0.5, Max: 50, Lambda: 0.3}
	for _, classes := range []int{1, 2, 51, 100, 1000, 1 << 16, 1<<16 + 51, 300000} {
		sum := 0.0
		for _, p := range c.TailProbabilities(classes) {
			sum += p
		}
		got := c.ExpectedTail(classes)
		if math.Abs(got-sum) > 1e-9*math.Max(1, sum) {
			t.Errorf("%d classes: ExpectedTail %v, sum of probabilities %v", classes, got, sum)
		}
	}
	if got := c.ExpectedTail(math.MaxInt); math.IsNaN(got) || got < 0 || got > math.MaxInt {
		t.Errorf("MaxInt classes: %v", got)
	}
	if got := (Config{Ratio: 0.5, Max: 50}).ExpectedTail(1000); got != 0 {
		t.Errorf("lambda 0: %v", got)
	}
}
