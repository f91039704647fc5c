package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func init() {
	register(&command{
		name:    "run",
		summary: "run a model on ONNX Runtime with inputs from .npy or JSON files",
		usage:   "MODEL.onnx --input NAME=FILE ... [-o DIR] [--device cpu|cuda]",
		example: "skipgraph run model.onnx --input pixel_values=px.npy --input input_ids=ids.json -o outputs/",
		flags: func(fs *flag.FlagSet) func([]string) error {
			var inputs multiFlag
			fs.Var(&inputs, "input", "NAME=FILE: feed input NAME from a .npy file or a JSON {shape, dtype, data} file (repeatable)")
			outDir := fs.String("o", "", "write each output to DIR/NAME.npy (default: print a summary)")
			device := fs.String("device", "cpu", "execution provider: cpu or cuda")
			return func(args []string) error {
				if len(args) != 1 {
					return usageError("run", "run takes one model file")
				}
				return runModel(args[0], inputs, *outDir, *device)
			}
		},
	})
}

func runModel(path string, inputs []string, outDir, device string) error {
	feeds := map[string]*tensorio.Tensor{}
	for _, spec := range inputs {
		name, file, ok := strings.Cut(spec, "=")
		if !ok || name == "" || file == "" {
			return usageError("run", "--input %q: want NAME=FILE", spec)
		}
		if _, dup := feeds[name]; dup {
			return usageError("run", "--input %s is given twice; give each input once", name)
		}
		var t *tensorio.Tensor
		var err error
		switch strings.ToLower(filepath.Ext(file)) {
		case ".npy":
			t, err = tensorio.LoadNPY(file)
		case ".json":
			t, err = tensorio.LoadJSON(file)
		default:
			return errs.Input("--input %s: %s is neither .npy nor .json", name, file)
		}
		if err != nil {
			return errs.AsInput(err)
		}
		feeds[name] = t
	}
	sess, err := runtime.NewSession(path, &runtime.Options{Device: device})
	if err != nil {
		return err
	}
	defer sess.Close()
	var missing []string
	for _, in := range sess.Inputs() {
		t := feeds[in.Name]
		if t == nil {
			missing = append(missing, in.Name+" ("+in.String()+")")
			continue
		}
		if t.DType != in.DType {
			return errs.Input("--input %s: the file holds %s, the model wants %s", in.Name, t.DType, in.DType)
		}
		if !shapeFits(t.Shape, in.Shape) {
			return errs.Input("--input %s: the file holds shape %v, the model wants %s", in.Name, t.Shape, in.String())
		}
	}
	if len(missing) > 0 {
		return errs.Input("%s: give every input with --input NAME=FILE; missing: %s", path, strings.Join(missing, ", "))
	}
	for name := range feeds {
		if _, ok := sess.Input(name); !ok {
			return errs.Input("--input %s: %s has no input of that name (inputs: %s)", name, path, strings.Join(sess.InputNames(), ", "))
		}
	}
	res, err := sess.Run(feeds)
	if err != nil {
		// the model accepted the inputs' names, types and shapes: their values are at fault
		// (an id out of range, sizes that do not agree with each other)
		return errs.Input("%s: ONNX Runtime cannot run it on these inputs; check their values and sizes: %w", path, err)
	}
	names := make([]string, 0, len(res))
	for n := range res {
		names = append(names, n)
	}
	sort.Strings(names)
	if outDir != "" {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return errs.Input("%s: %w", outDir, err)
		}
	}
	inputFiles := []string{path}
	for _, spec := range inputs {
		_, file, _ := strings.Cut(spec, "=")
		inputFiles = append(inputFiles, file)
	}
	for _, n := range names {
		if outDir == "" {
			break
		}
		p := filepath.Join(outDir, safeFileName(n)+".npy")
		if err := (safeio.Output{Path: p, What: "an output", Inputs: inputFiles}).CheckInputs(); err != nil {
			return err
		}
	}
	for _, n := range names {
		t := res[n]
		if outDir != "" {
			p := filepath.Join(outDir, safeFileName(n)+".npy")
			if err := tensorio.SaveNPY(p, t); err != nil {
				return err
			}
			fmt.Fprintf(out, "%s\t%s -> %s\n", n, t, p)
			continue
		}
		fmt.Fprintf(out, "%s\t%s\t%s\n", n, t, preview(t))
	}
	return nil
}

// safeFileName replaces path separators and other awkward characters in a value name.
func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r == 0 {
			return '_'
		}
		return r
	}, s)
}

// preview shows the first few values of a tensor.
func preview(t *tensorio.Tensor) string {
	const n = 6
	if f, err := t.AsFloat64(); err == nil {
		var parts []string
		for i, x := range f {
			if i == n {
				parts = append(parts, "...")
				break
			}
			parts = append(parts, fmt.Sprintf("%.5g", x))
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return ""
}

// shapeFits reports whether a tensor of shape got can feed an input of shape want (-1: any size;
// nil: any rank).
func shapeFits(got, want []int64) bool {
	if want == nil {
		return true
	}
	if len(got) != len(want) {
		return false
	}
	for i, d := range want {
		if d >= 0 && got[i] != d {
			return false
		}
	}
	return true
}
