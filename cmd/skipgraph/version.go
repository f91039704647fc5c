package main

import (
	"flag"
	"fmt"
	"runtime/debug"

	"github.com/skipgraph/skipgraph/internal/version"
	ort "github.com/skipgraph/skipgraph/runtime"
)

func init() {
	for _, name := range []string{"version", "doctor"} {
		register(&command{
			name:    name,
			summary: "print skipgraph's version, the ONNX Runtime it loads, its providers, the GPU and the CUDA libraries found",
			usage:   "",
			example: "skipgraph " + name,
			flags: func(fs *flag.FlagSet) func([]string) error {
				return func(args []string) error {
					if len(args) != 0 {
						return usageError(name, "%s takes no arguments", name)
					}
					fmt.Fprintf(out, "skipgraph    %s\n", version.Version)
					if bi, ok := debug.ReadBuildInfo(); ok {
						fmt.Fprintf(out, "go           %s\n", bi.GoVersion)
					}
					ort.Diagnose().Write(out)
					return nil
				}
			},
		})
	}
}
