package main

import (
	"flag"
	"io"
	"log/slog"
)

// verbose is set by --verbose, which every command takes: debug logging (log/slog, text lines
// on stderr), the plugins' own output, and the stack of an internal error.
var verbose bool

func addVerboseFlag(fs *flag.FlagSet) {
	fs.BoolVar(&verbose, "verbose", false, "debug output on stderr: what runs, plugin output, stacks of internal errors")
}

// setupLogging points the default slog logger at w: debug level with --verbose, warnings only
// without.
func setupLogging(w io.Writer) {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})))
}
