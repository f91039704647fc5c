// Command skipgraph fine-tunes CLIP ONNX exports with Skip Tuning on ONNX Runtime.
//
// Run `skipgraph help` for the commands and `skipgraph COMMAND -h` for each one's flags and an
// example.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
)

// command is one subcommand of the CLI.
type command struct {
	name    string
	summary string
	usage   string // after "skipgraph NAME "
	example string
	flags   func(fs *flag.FlagSet) func(args []string) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes the CLI and returns the exit code: 0 ok, 2 bad input or usage, 1 internal failure.
func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "skipgraph: internal error: %v\n", r)
			if os.Getenv("SKIPGRAPH_DEBUG") != "" {
				stderr.Write(debug.Stack())
			} else {
				fmt.Fprintln(stderr, "skipgraph: this is a bug; rerun with SKIPGRAPH_DEBUG=1 for details and report it")
			}
			code = 1
		}
	}()
	out, errOut = stdout, stderr
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				fs := newFlagSet(c)
				c.flags(fs)
				fs.SetOutput(stdout)
				fs.Usage()
				return 0
			}
		}
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "skipgraph: unknown command %q; run 'skipgraph help' for the list\n", args[0])
		return 2
	}
	fs := newFlagSet(c)
	// the flag package prints the whole usage after a parse error; one line says more
	fs.SetOutput(io.Discard)
	exec := c.flags(fs)
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		fmt.Fprintf(stderr, "skipgraph %s: %v (see 'skipgraph %s -h')\n", c.name, err, c.name)
		return 2
	}
	fs.SetOutput(stderr)
	if err := checkFiniteFlags(fs, c.name); err != nil {
		fmt.Fprintf(stderr, "skipgraph %s: %v\n", c.name, err)
		return 2
	}
	if err := exec(positional); err != nil {
		msg := strings.TrimSpace(err.Error())
		if i := strings.IndexByte(msg, '\n'); i >= 0 && !errs.IsInput(err) {
			msg = strings.ReplaceAll(msg, "\n", "; ")
		}
		fmt.Fprintf(stderr, "skipgraph %s: %s\n", c.name, msg)
		return errs.ExitCode(err)
	}
	return 0
}

// out and errOut are where commands print; set by run.
var out, errOut io.Writer = os.Stdout, os.Stderr

func newFlagSet(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("skipgraph "+c.name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: skipgraph %s %s\n\n%s\n", c.name, c.usage, c.summary)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(w, "\nflags:\n")
			fs.PrintDefaults()
		}
		if c.example != "" {
			fmt.Fprintf(w, "\nexample:\n  %s\n", strings.ReplaceAll(c.example, "\n", "\n  "))
		}
	}
	return fs
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "skipgraph: fine-tune CLIP ONNX exports with Skip Tuning on ONNX Runtime\n\nusage: skipgraph COMMAND [flags] [args]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'skipgraph COMMAND -h' for a command's flags and an example.\n")
}

// usageError is an input error for a wrong number of arguments or a bad flag value.
func usageError(c string, format string, args ...any) error {
	return errs.Input("%s (see 'skipgraph %s -h')", fmt.Sprintf(format, args...), c)
}

// parseInterspersed parses flags that may stand before, between or after the positional
// arguments (skipgraph run model.onnx --input x=f.npy), and returns the positional ones.
// Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at "--" (consumed) or at the first non-flag argument.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// checkFiniteFlags refuses NaN and infinite values of the number flags that were given: no
// command has a use for them, and they would travel into manifests and schedules.
func checkFiniteFlags(fs *flag.FlagSet, name string) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok || err != nil {
			return
		}
		if x, ok := g.Get().(float64); ok && (math.IsNaN(x) || math.IsInf(x, 0)) {
			err = usageError(name, "--%s %s: want a finite number", f.Name, f.Value.String())
		}
	})
	return err
}
