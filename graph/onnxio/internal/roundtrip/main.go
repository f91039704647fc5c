//go:build unix

// Command roundtrip loads an ONNX model and saves it again, printing the wall time and the
// process's peak resident memory, so the codec's memory use can be measured in a fresh process.
//
//	roundtrip -gen 600 big.onnx      # write a model with about 600 MB of random weights
//	roundtrip big.onnx out.onnx      # Load + Save, report time and peak RSS
//	roundtrip -copy big.onnx out.onnx  # plain file copy of the same bytes, for comparison
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/graph/onnxio/internal/testmodel"
)

func main() {
	gen := flag.Int("gen", 0, "write a generated model with about this many MB of weights to the first argument and exit")
	cp := flag.Bool("copy", false, "copy the file instead of loading and saving it")
	external := flag.Bool("external", false, "save with external data")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: roundtrip [-gen MB | -copy | -external] in.onnx [out.onnx]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 || flag.NArg() > 2 {
		flag.Usage()
		os.Exit(2)
	}
	in := flag.Arg(0)
	out := in + ".out.onnx"
	if flag.NArg() == 2 {
		out = flag.Arg(1)
	}
	if err := run(in, out, *gen, *cp, *external); err != nil {
		fmt.Fprintln(os.Stderr, "roundtrip:", err)
		os.Exit(errs.ExitCode(err))
	}
}

func run(in, out string, gen int, cp, external bool) error {
	if gen > 0 {
		return onnxio.Save(testmodel.Big(gen, 1), in, onnxio.SaveOptions{})
	}
	st, err := os.Stat(in)
	if err != nil {
		return errs.AsInput(err)
	}
	start := time.Now()
	var loaded time.Duration
	if cp {
		err = testmodel.CopyFile(in, out)
	} else {
		m, err := onnxio.Load(in)
		if err != nil {
			return err
		}
		loaded = time.Since(start)
		err = onnxio.Save(m, out, onnxio.SaveOptions{ExternalData: external})
	}
	if err != nil {
		return err
	}
	wall := time.Since(start)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	rss := ru.Maxrss * 1024 // KiB on Linux
	what := "load+save"
	if cp {
		what = "copy"
	}
	fmt.Printf("%s: file %.1f MB, wall %.3f s (load %.3f s), peak RSS %.1f MB = %.2fx the file\n",
		what, float64(st.Size())/1e6, wall.Seconds(), loaded.Seconds(), float64(rss)/1e6, float64(rss)/float64(st.Size()))
	return nil
}
