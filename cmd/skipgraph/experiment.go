package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/experiment"
)

func init() {
	register(&command{
		name:    "experiment",
		summary: "run an evaluation protocol (base2new, fewshot, xd, dg) over data sets and seeds; resumable, shardable; writes the paper-style table",
		usage:   "CONFIG [-o DIR] [--prepare | --shard I/N | --collect]",
		example: "skipgraph experiment b2n.yaml -o results          # every job, then results.md/.json/.csv\n" +
			"skipgraph experiment b2n.yaml -o results --shard 0/4   # one share of the jobs (I counts from 0)\n" +
			"skipgraph experiment b2n.yaml -o results --collect     # merge the shards' results into the table",
		flags: func(fs *flag.FlagSet) func([]string) error {
			o := fs.String("o", "", "experiment folder (default: out in CONFIG); a rerun skips the jobs it finished")
			shard := fs.String("shard", "", "run only share I of N of the jobs (I/N, 0 <= I < N)")
			collect := fs.Bool("collect", false, "run nothing: merge the recorded results of every job into the table")
			prepare := fs.Bool("prepare", false, "run nothing: create the experiment folder and convert the model (once, before starting shards)")
			quiet := fs.Bool("q", false, "no progress output")
			return func(args []string) error {
				if len(args) != 1 {
					return usageError("experiment", "experiment takes one experiment file (YAML or JSON)")
				}
				cfg, err := experiment.Load(args[0])
				if err != nil {
					return err
				}
				var rep *experiment.Report
				if *prepare {
					if *collect || *shard != "" {
						return usageError("experiment", "--prepare runs no job; drop --collect and --shard")
					}
					var progress io.Writer
					if !*quiet {
						progress = errOut
					}
					dir, err := experiment.Prepare(context.Background(), cfg, *o, progress)
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "bundle %s ready; start the shards\n", dir)
					return nil
				}
				if *collect {
					if *shard != "" {
						return usageError("experiment", "--collect runs nothing; drop --shard")
					}
					if rep, err = experiment.Collect(cfg, *o); err != nil {
						return err
					}
				} else {
					opt := experiment.Options{Out: *o}
					if *shard != "" {
						if opt.Shard, err = experiment.ParseShard(*shard); err != nil {
							return err
						}
					}
					if !*quiet {
						opt.Progress = errOut
					}
					ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
					defer stop()
					rep, err = experiment.Run(ctx, cfg, opt)
					if errors.Is(err, experiment.ErrStopped) {
						return errs.AsInput(err)
					}
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "%d jobs run, %d done earlier\n", len(rep.Ran), len(rep.Skipped))
				}
				if rep.Summary != nil {
					fmt.Fprintln(out)
					rep.Summary.WriteAccuracyMarkdown(out)
					fmt.Fprintln(out)
					for _, f := range rep.Files {
						fmt.Fprintf(out, "wrote %s\n", f)
					}
				}
				return nil
			}
		},
	})
}
