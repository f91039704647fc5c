package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/cost"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/data/tokenizer"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/train"
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
	// Preprocess is the image preprocessing that eval and train use with this model, and
	// where it comes from; PreprocessError says why none can be used.
	Preprocess      *data.PreprocessSource `json:"preprocess,omitempty"`
	PreprocessError string                 `json:"preprocess_error,omitempty"`
	// Tokenizer is the tokenizer found beside the model, with the configuration files read.
	Tokenizer      *tokenizerReport `json:"tokenizer,omitempty"`
	TokenizerError string           `json:"tokenizer_error,omitempty"`
}

// tokenizerReport says which tokenizer files were found beside a model.
type tokenizerReport struct {
	File          string   `json:"file"`
	Config        []string `json:"config,omitempty"`
	ContextLength int      `json:"context_length"`
	Vocab         int      `json:"vocab"`
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
	near := []string{filepath.Dir(path), filepath.Dir(filepath.Dir(path))}
	size := 0
	if r.Structure != nil && r.Structure.Vision != nil && len(r.Structure.Vision.Inputs) > 0 {
		if v := g.Value(r.Structure.Vision.Inputs[0]); v != nil {
			if dims := v.Type.Shape; len(dims) == 4 && dims[2].Known() {
				size = int(dims[2].Value)
			}
		}
	}
	if _, how, err := data.PreprocessorFor(size, near...); err == nil {
		r.Preprocess = how
	} else {
		r.PreprocessError = err.Error()
	}
	if tok, err := train.FindTokenizer("", near...); err == nil {
		r.Tokenizer = &tokenizerReport{File: tok.Source, Config: tok.Config, ContextLength: tok.ContextLength, Vocab: tok.VocabSize()}
	} else {
		r.TokenizerError = err.Error()
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
	if r.Preprocess != nil {
		from := "CLIP's constants"
		if r.Preprocess.File != "" {
			from = r.Preprocess.File
		}
		fmt.Fprintf(w, "images     %s\n           from %s\n", strings.TrimSuffix(r.Preprocess.Summary, " (CLIP's constants: no "+data.PreprocessorConfigFile+" beside the model)"), from)
	} else {
		fmt.Fprintf(w, "images     %s\n", r.PreprocessError)
	}
	if t := r.Tokenizer; t != nil {
		cfg := "no " + tokenizer.HFConfigFile
		if len(t.Config) > 0 {
			cfg = strings.Join(t.Config, ", ")
		}
		fmt.Fprintf(w, "tokenizer  %s (%d tokens, context %d)\n           config: %s\n\n", t.File, t.Vocab, t.ContextLength, cfg)
	} else {
		fmt.Fprintf(w, "tokenizer  %s\n\n", r.TokenizerError)
	}
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
func human(n int64) string { return cost.FormatCount(n) }

// bytesHuman renders a byte count as 12.3 MiB ...
func bytesHuman(n int64) string { return cost.FormatBytes(n) }
