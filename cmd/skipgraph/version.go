package main

import (
	"flag"
	"fmt"
	"runtime/debug"

	"github.com/skipgraph/skipgraph/internal/version"
	ort "github.com/skipgraph/skipgraph/runtime"
)

func init() {
	register(&command{
		name:    "version",
		summary: "print skipgraph's version and the ONNX Runtime it loads",
		usage:   "",
		example: "skipgraph version",
		flags: func(fs *flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if len(args) != 0 {
					return usageError("version", "version takes no arguments")
				}
				fmt.Fprintf(out, "skipgraph %s\n", version.Version)
				if bi, ok := debug.ReadBuildInfo(); ok {
					fmt.Fprintf(out, "go         %s\n", bi.GoVersion)
				}
				if err := ort.Init(); err != nil {
					fmt.Fprintf(out, "onnxruntime not loaded: %v\n", err)
					return nil
				}
				fmt.Fprintf(out, "onnxruntime %s (%s)\n", ort.Version(), ort.LibraryPath())
				return nil
			}
		},
	})
}
