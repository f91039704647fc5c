// Command stepsummary prints the step table of bench/run.sh step from its JSON lines: the
// machine's limits (sgemm on ONNX Runtime and on PyTorch's OpenBLAS, vector-add bandwidth), and
// per case the median step time of skipgraph and of PyTorch eager, each as a share of the sgemm
// peak (the cost model's FLOPs / time / peak), their peak RSS and its ratio to the memory floor
// (trainable parameters + gradients + optimizer state + activations kept for the backward pass,
// from skipgraph plan).
//
//	stepsummary STEP.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/skipgraph/skipgraph/bench/internal/stats"
)

// record is one JSON line; kind says which fields it has.
type record struct {
	Kind  string `json:"kind"`
	Case  string `json:"case"`
	Round int    `json:"round"`
	// ort_peak
	OrtSgemm float64 `json:"ort_sgemm_gflops"`
	OrtAdd   float64 `json:"ort_add_gbs"`
	// torch_peak, numpy_add
	GFLOPs   float64 `json:"gflops"`
	CoreType string  `json:"coretype"`
	GBs      float64 `json:"gbs"`
	// plan
	GFLOP         float64 `json:"gflop"`
	FloorMiB      float64 `json:"floor_mib"`
	TrainableMiB  float64 `json:"trainable_mib"`
	OptimizerMiB  float64 `json:"optimizer_mib"`
	ActivationMiB float64 `json:"activation_mib"`
	// skipgraph, torch
	MedianMs   float64 `json:"median_ms"`
	MinMs      float64 `json:"min_ms"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// skipgraph: the host optimizer update's median time within a step (0: in the graph)
	UpdateMs float64 `json:"update_ms"`
}

// side is one implementation's runs of a case: each run's median and fastest step, and its
// peak RSS.
type side struct{ ms, best, rss, upd []float64 }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: stepsummary STEP.jsonl")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "stepsummary:", err)
		os.Exit(2)
	}
	defer f.Close()
	if err := summarise(f, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "stepsummary:", os.Args[1]+":", err)
		os.Exit(2)
	}
}

func summarise(r io.Reader, w io.Writer) error {
	var ortSgemms, ortAdds, torchSgemms []float64
	var numpyAdd float64
	var coreType string
	plans := map[string]record{}
	var order []string
	runs := map[string]map[string]*side{"skipgraph": {}, "torch": {}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		var rec record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("line %d: %v", n, err)
		}
		switch rec.Kind {
		case "ort_peak":
			ortSgemms, ortAdds = append(ortSgemms, rec.OrtSgemm), append(ortAdds, rec.OrtAdd)
		case "torch_peak":
			torchSgemms, coreType = append(torchSgemms, rec.GFLOPs), rec.CoreType
		case "numpy_add":
			numpyAdd = rec.GBs
		case "plan":
			plans[rec.Case] = rec
			order = append(order, rec.Case)
		case "skipgraph", "torch":
			s := runs[rec.Kind][rec.Case]
			if s == nil {
				s = &side{}
				runs[rec.Kind][rec.Case] = s
			}
			s.ms = append(s.ms, rec.MedianMs)
			s.best = append(s.best, rec.MinMs)
			s.rss = append(s.rss, rec.PeakRSSMiB)
			s.upd = append(s.upd, rec.UpdateMs)
		default:
			return fmt.Errorf("line %d: unknown kind %q", n, rec.Kind)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	// the limits are measured before the first round and again in every round: their medians
	ortSgemm, ortAdd, torchSgemm := stats.Median(ortSgemms), stats.Median(ortAdds), stats.Median(torchSgemms)
	peak := max(ortSgemm, torchSgemm)
	fmt.Fprintf(w, "sgemm 2048^3 (median of %d measurements each): ONNX Runtime %.1f GFLOP/s %v, PyTorch/OpenBLAS %.1f GFLOP/s %v (core type %s); peak used below: %.1f GFLOP/s\n",
		len(ortSgemms), ortSgemm, rounded(ortSgemms), torchSgemm, rounded(torchSgemms), orDash(coreType), peak)
	fmt.Fprintf(w, "vector add (64 MiB float32, read 2 + write 1): ONNX Runtime %.1f GB/s %v, numpy %.1f GB/s\n\n", ortAdd, rounded(ortAdds), numpyAdd)
	fmt.Fprintln(w, "| case | GFLOP/step | floor MiB | skipgraph ms (fastest) | share of peak | peak RSS MiB | RSS/floor | torch ms (fastest) | share of peak | torch RSS MiB | RSS/floor | time sg/torch | RSS sg/torch | host update ms (GB/s) |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, c := range order {
		p := plans[c]
		row := fmt.Sprintf("| %s | %.1f | %.0f |", c, p.GFLOP, p.FloorMiB)
		var ms, rss [2]float64
		for i, k := range []string{"skipgraph", "torch"} {
			s := runs[k][c]
			if s == nil {
				row += " - | - | - | - |"
				continue
			}
			ms[i], rss[i] = stats.Median(s.ms), stats.Median(s.rss)
			best := stats.Median(s.best)
			share := "-"
			if peak > 0 && ms[i] > 0 {
				share = fmt.Sprintf("%.0f%% (%.0f%%)", p.GFLOP/(ms[i]/1000)/peak*100, p.GFLOP/(best/1000)/peak*100)
			}
			row += fmt.Sprintf(" %.0f (%.0f) | %s | %.0f | %.2f |", ms[i], best, share, rss[i], rss[i]/p.FloorMiB)
		}
		if ms[0] > 0 && ms[1] > 0 {
			row += fmt.Sprintf(" %.2f | %.2f |", ms[0]/ms[1], rss[0]/rss[1])
		} else {
			row += " - | - |"
		}
		if s := runs["skipgraph"][c]; s != nil && stats.Median(s.upd) > 0 {
			// SGD with momentum reads parameter, gradient and momentum and writes two of them
			gbs := 5 * p.TrainableMiB * (1 << 20) / 1e9 / (stats.Median(s.upd) / 1000)
			row += fmt.Sprintf(" %.0f (%.1f) |", stats.Median(s.upd), gbs)
		} else {
			row += " - |"
		}
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w, "\nfloor = trainable parameters + gradients + optimizer state + activations kept for the backward pass (skipgraph plan); times are medians over the rounds of each run's median step and, in brackets, of its fastest step; shares likewise; host update ms: the part of the skipgraph step spent in the in-place optimizer update (- where ORT runs the update in the graph), and its bandwidth: 5 x the trainable parameters' bytes (SGD with momentum reads parameter, gradient and momentum, writes parameter and momentum) / its time")
	return nil
}

// rounded returns x rounded to whole numbers, for printing.
func rounded(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Round(v)
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
