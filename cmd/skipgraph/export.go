package main

import (
	"flag"
	"fmt"

	"github.com/skipgraph/skipgraph/train"
)

func init() {
	register(&command{
		name:    "export",
		summary: "write the bundle's source export with the trained weights in its initializers",
		usage:   "BUNDLE --params TRAIN_OUT -o model.onnx [--source PATH] [--force]",
		example: "skipgraph export bundle --params run -o clip-tuned.onnx",
		flags: func(fs *flag.FlagSet) func([]string) error {
			params := fs.String("params", "", "training output folder, or a .safetensors file of torch-named parameters (required)")
			o := fs.String("o", "", "model file to write; a folder for a split source (required)")
			source := fs.String("source", "", "the source export, when it is no longer where the manifest says (its sha256 must match)")
			force := fs.Bool("force", false, "replace the output if it exists")
			return func(args []string) error {
				args, err := parseInterspersed(fs, args)
				if err != nil {
					return usageError("export", "%v", err)
				}
				if len(args) != 1 || *params == "" || *o == "" {
					return usageError("export", "export takes one bundle, --params TRAIN_OUT and -o model.onnx")
				}
				files, err := train.Export(train.ExportConfig{Bundle: args[0], Params: *params, Out: *o, Source: *source, Force: *force})
				if err != nil {
					return err
				}
				for _, f := range files {
					fmt.Fprintf(out, "wrote %s\n", f)
				}
				return nil
			}
		},
	})
}
