package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
)

func init() {
	register(&command{
		name:    "inspect",
		summary: "show a model's interface, opsets, ops, parameters and the CLIP structure found in it",
		usage:   "[--json] MODEL.onnx",
		example: "skipgraph inspect model.onnx\nskipgraph inspect --json model.onnx > structure.json",
		flags: func(fs *flag.FlagSet) func([]string) error {
			asJSON := fs.Bool("json", false, "print JSON instead of tables")
			return func(args []string) error {
				if len(args) != 1 {
					return usageError("inspect", "inspect takes one model file")
				}
				return inspect(args[0], *asJSON)
			}
		},
	})
}

// modelReport is inspect's JSON form.
type modelReport struct {
	File           string            `json:"file"`
	IRVersion      int64             `json:"ir_version"`
	Producer       string            `json:"producer"`
	Opsets         []graph.Opset     `json:"opsets"`
	Inputs         []ioReport        `json:"inputs"`
	Outputs        []ioReport        `json:"outputs"`
	Nodes          int               `json:"nodes"`
	Ops            map[string]int    `json:"ops"`
	Parameters     int64             `json:"parameters"`
	ParameterBytes int64             `json:"parameter_bytes"`
	Initializers   int               `json:"initializers"`
	ExternalData   []string          `json:"external_data,omitempty"`
	Metadata       []onnxio.Metadata `json:"metadata,omitempty"`
	Structure      *clip.Structure   `json:"clip,omitempty"`
	StructureError string            `json:"clip_error,omitempty"`
}

type ioReport struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func inspect(path string, asJSON bool) error {
	m, err := onnxio.Load(path)
	if err != nil {
		return err
	}
	info := onnxio.ModelInfo(m)
	g := m.Graph
	r := modelReport{File: path, IRVersion: m.IRVersion, Producer: strings.TrimSpace(info.ProducerName + " " + info.ProducerVersion),
		Opsets: m.Opsets, Nodes: g.NumNodes(), Ops: map[string]int{}, Initializers: len(g.Initializers), Metadata: info.Metadata}
	for _, v := range g.Inputs {
		if v.Const == nil {
			r.Inputs = append(r.Inputs, ioReport{v.Name, v.Type.String()})
		}
	}
	for _, v := range g.Outputs {
		r.Outputs = append(r.Outputs, ioReport{v.Name, v.Type.String()})
	}
	for _, n := range g.Nodes() {
		op := n.OpType
		if n.Domain != "" {
			op = n.Domain + "::" + op
		}
		r.Ops[op]++
	}
	ext := map[string]bool{}
	for _, v := range g.Initializers {
		if v.Const.DType.IsFloat() {
			r.Parameters += v.Const.NumElements()
		}
		r.ParameterBytes += v.Const.NumBytes()
		if v.Const.Location != "" {
			ext[v.Const.Location] = true
		}
	}
	for loc := range ext {
		r.ExternalData = append(r.ExternalData, loc)
	}
	sort.Strings(r.ExternalData)
	if s, err := clip.Discover(m); err == nil {
		r.Structure = s
	} else {
		r.StructureError = err.Error()
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return writeReport(out, &r)
}

func writeReport(w io.Writer, r *modelReport) error {
	fmt.Fprintf(w, "model      %s\n", r.File)
	fmt.Fprintf(w, "producer   %s\n", orDash(r.Producer))
	var ops []string
	for _, o := range r.Opsets {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		ops = append(ops, fmt.Sprintf("%s %d", d, o.Version))
	}
	fmt.Fprintf(w, "ir         %d, opsets %s\n", r.IRVersion, strings.Join(ops, ", "))
	fmt.Fprintf(w, "parameters %s floats in %d initializers, %s\n", human(r.Parameters), r.Initializers, bytesHuman(r.ParameterBytes))
	if len(r.ExternalData) > 0 {
		fmt.Fprintf(w, "external   %s\n", strings.Join(r.ExternalData, ", "))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\ninputs\t")
	for _, v := range r.Inputs {
		fmt.Fprintf(tw, "  %s\t%s\n", v.Name, v.Type)
	}
	fmt.Fprintln(tw, "outputs\t")
	for _, v := range r.Outputs {
		fmt.Fprintf(tw, "  %s\t%s\n", v.Name, v.Type)
	}
	tw.Flush()
	names := make([]string, 0, len(r.Ops))
	for k := range r.Ops {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if r.Ops[names[i]] != r.Ops[names[j]] {
			return r.Ops[names[i]] > r.Ops[names[j]]
		}
		return names[i] < names[j]
	})
	fmt.Fprintf(w, "\nops (%d nodes)\n", r.Nodes)
	var line []string
	for i, n := range names {
		line = append(line, fmt.Sprintf("%s %d", n, r.Ops[n]))
		if len(line) == 6 || i == len(names)-1 {
			fmt.Fprintf(w, "  %s\n", strings.Join(line, ", "))
			line = nil
		}
	}
	fmt.Fprintln(w)
	if r.Structure == nil {
		fmt.Fprintf(w, "CLIP structure: not found: %s\n", r.StructureError)
		return nil
	}
	return r.Structure.WriteTable(w)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// human renders a count as 1.2M, 34.5k ...
func human(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// bytesHuman renders a byte count as 12.3 MiB ...
func bytesHuman(n int64) string { return bytesHumanF(float64(n)) }

// bytesHumanF renders a byte count held in a float64 (an estimate, which may exceed any int64)
// as 12.3 MiB ...
func bytesHumanF(n float64) string {
	switch {
	case n >= 1<<60:
		return fmt.Sprintf("%.3g EiB", n/(1<<60))
	case n >= 1<<50:
		return fmt.Sprintf("%.2f PiB", n/(1<<50))
	case n >= 1<<40:
		return fmt.Sprintf("%.2f TiB", n/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}
