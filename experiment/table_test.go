package experiment

import (
	"math"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestSummariseBase2New checks the table against values computed by hand.
func TestSummariseBase2New(t *testing.T) {
	c, err := Parse([]byte("model: m.onnx\nseeds: [1, 2]\ndatasets: [{name: a, data: a}, {name: b, data: b}]\n"), "e.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res := func(job, ds string, seed uint64, base, nw float64) Result {
		return Result{Job: job, Dataset: ds, Seed: seed, Shots: 16, Protocol: Base2New, Accuracy: map[string]float64{"base": base, "new": nw}, H: Harmonic(base, nw)}
	}
	// Given out of order: the table follows the job order.
	results := []Result{res("b-seed2", "b", 2, 0.7, 0.7), res("a-seed1", "a", 1, 0.8, 0.4), res("a-seed2", "a", 2, 0.6, 0.6), res("b-seed1", "b", 1, 0.9, 0.5)}
	s, err := Summarise(c, results)
	if err != nil {
		t.Fatal(err)
	}
	// a: base 0.8, 0.6 -> 0.7 ± 0.1; new 0.4, 0.6 -> 0.5 ± 0.1; H = 2*0.7*0.5/1.2 = 0.58333;
	// per-seed H 0.53333 and 0.6 -> std 0.03333.
	// b: base 0.8 ± 0.1; new 0.6 ± 0.1; H = 2*0.8*0.6/1.4 = 0.685714; per-seed H 0.642857 and
	// 0.7 -> std 0.028571. Average: base 0.75, new 0.55, H = 2*0.75*0.55/1.3 = 0.634615.
	want := [][3][2]float64{
		{{0.7, 0.1}, {0.5, 0.1}, {7.0 / 12, 1.0 / 30}},
		{{0.8, 0.1}, {0.6, 0.1}, {0.96 / 1.4, 0.02857142857142857}},
	}
	for r, row := range s.Rows {
		for k, v := range row.Values {
			if !near(v.Mean, want[r][k][0]) || v.Std == nil || !near(*v.Std, want[r][k][1]) || v.N != 2 {
				t.Errorf("%s %s: %v ± %v (n %d), want %v ± %v", row.Label, s.Columns[k], v.Mean, *v.Std, v.N, want[r][k][0], want[r][k][1])
			}
		}
	}
	avg := s.Average.Values
	if !near(avg[0].Mean, 0.75) || !near(avg[1].Mean, 0.55) || !near(avg[2].Mean, 0.825/1.3) || avg[0].Std != nil {
		t.Errorf("average %v %v %v", avg[0].Mean, avg[1].Mean, avg[2].Mean)
	}
	if s.Jobs[0].Job != "a-seed1" || s.Jobs[3].Job != "b-seed2" {
		t.Errorf("jobs not in job order: %s .. %s", s.Jobs[0].Job, s.Jobs[3].Job)
	}
	md := string(s.Markdown())
	for _, line := range []string{
		"| data set | base | new | H |",
		"| a | 70.00 ± 10.00 | 50.00 ± 10.00 | 58.33 ± 3.33 |",
		"| b | 80.00 ± 10.00 | 60.00 ± 10.00 | 68.57 ± 2.86 |",
		"| **average** | 75.00 | 55.00 | 63.46 |",
		"| a-seed1 | a | 16 | 1 | 80.00 | 40.00 | 53.33 |",
	} {
		if !strings.Contains(md, line) {
			t.Errorf("markdown lacks %q:\n%s", line, md)
		}
	}
	csv := string(s.CSV())
	for _, line := range []string{
		"dataset,base_mean,base_std,new_mean,new_std,H_mean,H_std\n",
		"a,70.0000,10.0000,50.0000,10.0000,58.3333,3.3333\n",
		"average,75.0000,,55.0000,,63.4615,\n",
	} {
		if !strings.Contains(csv, line) {
			t.Errorf("CSV lacks %q:\n%s", line, csv)
		}
	}
	if _, err := Summarise(c, results[:3]); err == nil || !strings.Contains(err.Error(), "1 of 4 jobs have no result yet (b-seed1)") {
		t.Errorf("a missing job: %v", err)
	}
}

func TestSummariseFewShotAndXD(t *testing.T) {
	c, err := Parse([]byte("model: m.onnx\nprotocol: fewshot\nshots: [1, 4]\nseeds: [1, 2]\ndatasets: [{name: a, data: a}]\n"), "e.yaml")
	if err != nil {
		t.Fatal(err)
	}
	acc := func(job string, shots int, x float64) Result {
		return Result{Job: job, Dataset: "a", Shots: shots, Accuracy: map[string]float64{"accuracy": x}}
	}
	s, err := Summarise(c, []Result{acc("a-1shot-seed1", 1, 0.3), acc("a-1shot-seed2", 1, 0.5), acc("a-4shot-seed1", 4, 0.6), acc("a-4shot-seed2", 4, 0.6)})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Columns, ","); got != "1 shot,4 shots" {
		t.Errorf("columns %s", got)
	}
	v := s.Rows[0].Values
	if !near(v[0].Mean, 0.4) || !near(*v[0].Std, 0.1) || !near(v[1].Mean, 0.6) || !near(*v[1].Std, 0) {
		t.Errorf("few-shot row %+v %+v", v[0], v[1])
	}

	x, err := Parse([]byte("model: m.onnx\nprotocol: xd\nseeds: [1, 2]\ndatasets: [{name: src, data: a}, {name: t1, data: b}, {name: t2, data: c}]\n"), "e.yaml")
	if err != nil {
		t.Fatal(err)
	}
	xr := func(job string, s, t1, t2 float64) Result {
		return Result{Job: job, Dataset: "src", Shots: 16, Accuracy: map[string]float64{"src": s, "t1": t1, "t2": t2}}
	}
	xs, err := Summarise(x, []Result{xr("src-seed1", 0.9, 0.2, 0.4), xr("src-seed2", 0.7, 0.4, 0.4)})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(xs.Columns, ","); got != "src,t1,t2,target average" {
		t.Errorf("columns %s", got)
	}
	// src 0.8 ± 0.1, t1 0.3 ± 0.1, t2 0.4 ± 0; target average (0.3+0.4)/2 = 0.35.
	w := []float64{0.8, 0.3, 0.4, 0.35}
	for i, v := range xs.Rows[0].Values {
		if !near(v.Mean, w[i]) {
			t.Errorf("%s: %v, want %v", xs.Columns[i], v.Mean, w[i])
		}
	}
	if !strings.Contains(string(xs.Markdown()), "| trained on | src | t1 | t2 | target average |") {
		t.Errorf("xd markdown:\n%s", xs.Markdown())
	}
}

func TestHarmonicAndMeanStd(t *testing.T) {
	if h := Harmonic(0.8, 0.4); !near(h, 0.64/1.2) {
		t.Errorf("H(0.8, 0.4) = %v", h)
	}
	if h := Harmonic(0, 0); h != 0 {
		t.Errorf("H(0, 0) = %v", h)
	}
	m, s := MeanStd([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if m != 5 || s != 2 {
		t.Errorf("MeanStd = %v, %v; want 5, 2 (population)", m, s)
	}
}
