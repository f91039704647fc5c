// Command ortprof summarises an ONNX Runtime profile (the JSON that Options.ProfilePrefix makes):
// per operator type and per node, the kernel time averaged over the profiled runs, and the
// largest outputs.
//
//	ortprof [-top 25] [-skip 1] PROFILE.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// event is one entry of ORT's profile (Chrome trace format).
type event struct {
	Cat  string         `json:"cat"`
	Name string         `json:"name"`
	Dur  float64        `json:"dur"`
	Args map[string]any `json:"args"`
}

// arg returns a string argument of the event ("" when absent or not a string).
func (e event) arg(k string) string {
	s, _ := e.Args[k].(string)
	return s
}

func main() {
	top := flag.Int("top", 25, "rows per table")
	skip := flag.Int("skip", 1, "leading model runs to leave out (warm-up)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: ortprof [-top N] [-skip N] PROFILE.json")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *top, *skip); err != nil {
		fmt.Fprintln(os.Stderr, "ortprof:", err)
		os.Exit(1)
	}
}

func run(path string, top, skip int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	byOp := map[string]float64{}
	countOp := map[string]int{}
	byNode := map[string]float64{}
	nodeOp := map[string]string{}
	outSize := map[string]float64{}
	runs, total := 0, 0.0
	peakInUse, arenaHeld := 0.0, 0.0
	for _, r := range raw {
		var e event
		if json.Unmarshal(r, &e) != nil {
			continue
		}
		if e.Cat == "Session" && e.Name == "model_run" {
			runs++
			if runs > skip {
				total += e.Dur
			}
			continue
		}
		// Node events of a run come before that run's model_run event.
		if e.Cat != "Node" || !strings.HasSuffix(e.Name, "_kernel_time") || runs < skip {
			continue
		}
		op := e.arg("op_name")
		name := strings.TrimSuffix(e.Name, "_kernel_time")
		byOp[op] += e.Dur
		countOp[op]++
		byNode[name] += e.Dur
		nodeOp[name] = op
		if s, err := strconv.ParseFloat(e.arg("output_size"), 64); err == nil {
			outSize[name] = s
		}
		if s, err := strconv.ParseFloat(e.arg("mem_in_use_peak"), 64); err == nil {
			peakInUse = max(peakInUse, s)
		}
		if s, err := strconv.ParseFloat(e.arg("mem_arena_held"), 64); err == nil {
			arenaHeld = max(arenaHeld, s)
		}
	}
	n := float64(max(runs-skip, 1))
	fmt.Printf("%d runs profiled, %d counted; mean model_run %.0f ms\n\n", runs, runs-skip, total/n/1000)
	kernel := 0.0
	for _, v := range byOp {
		kernel += v
	}
	fmt.Printf("arena: peak in use %.0f MiB, most held %.0f MiB\n", peakInUse/(1<<20), arenaHeld/(1<<20))
	fmt.Printf("kernel time per run %.0f ms\n\n%-28s %10s %7s %6s\n", kernel/n/1000, "op", "ms/run", "share", "nodes")
	for _, k := range sortedBy(byOp)[:min(top, len(byOp))] {
		fmt.Printf("%-28s %10.1f %6.1f%% %6d\n", k, byOp[k]/n/1000, 100*byOp[k]/kernel, int(float64(countOp[k])/n))
	}
	fmt.Printf("\n%-70s %-18s %10s %10s\n", "node", "op", "ms/run", "out MiB")
	for _, k := range sortedBy(byNode)[:min(top, len(byNode))] {
		fmt.Printf("%-70s %-18s %10.1f %10.1f\n", clip(k, 70), nodeOp[k], byNode[k]/n/1000, outSize[k]/(1<<20))
	}
	fmt.Printf("\n%-70s %-18s %10s\n", "largest outputs", "op", "MiB")
	for _, k := range sortedBy(outSize)[:min(top, len(outSize))] {
		fmt.Printf("%-70s %-18s %10.1f\n", clip(k, 70), nodeOp[k], outSize[k]/(1<<20))
	}
	return nil
}

func sortedBy(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	return keys
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n+3:]
}
