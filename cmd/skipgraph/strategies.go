package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/skipgraph/skipgraph/plugin"
	"github.com/skipgraph/skipgraph/strategy"
)

func init() {
	register(&command{
		name:    "strategies",
		summary: "list the skip strategies, built-in and plugins, with their parameters",
		usage:   "[--plugin PATH]... [--json]",
		example: "skipgraph strategies --plugin ./skipgraph-strategy-attnonly\nskipgraph strategies --json",
		flags: func(fs *flag.FlagSet) func([]string) error {
			pf := addPluginFlags(fs)
			asJSON := fs.Bool("json", false, "print JSON")
			return func(args []string) error {
				if len(args) != 0 {
					return usageError("strategies", "strategies takes no arguments")
				}
				list, err := listStrategies(context.Background(), pf)
				if err != nil {
					return err
				}
				if *asJSON {
					b, err := json.MarshalIndent(list, "", "  ")
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "%s\n", b)
					return nil
				}
				printStrategies(list)
				return nil
			}
		},
	})
}

// strategyList is what 'skipgraph strategies --json' prints.
type strategyList struct {
	// Strategies are the built-ins, then the plugins in search order.
	Strategies []strategyEntry `json:"strategies"`
	// PluginDirs are the folders searched for plugins besides --plugin.
	PluginDirs []string `json:"plugin_dirs"`
}

// strategyEntry is one strategy, or one plugin file that failed.
type strategyEntry struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Doc     string `json:"doc,omitempty"`
	// Source is "built-in" or "plugin".
	Source string `json:"source"`
	// Path is the plugin file; Protocol its plugin protocol version.
	Path     string `json:"path,omitempty"`
	Protocol int    `json:"protocol,omitempty"`
	// Params are the parameters with how to set them on the command line.
	Params []paramEntry `json:"params"`
	// ShadowedBy names the strategy source that wins for this name (see --strategy).
	ShadowedBy string `json:"shadowed_by,omitempty"`
	// Error says why a plugin does not work.
	Error string `json:"error,omitempty"`
}

// paramEntry is a parameter and its flag.
type paramEntry struct {
	strategy.Param
	Flag string `json:"flag"`
}

// listStrategies starts every plugin found, collects every strategy's description, and stops the
// plugins again. A broken plugin becomes an entry with Error set.
func listStrategies(ctx context.Context, pf *pluginFlags) (*strategyList, error) {
	cat, err := pf.catalog()
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	list := &strategyList{PluginDirs: plugin.Dirs(), Strategies: []strategyEntry{}}
	builtin := map[string]int{}
	for _, st := range strategy.Builtins() {
		builtin[st.Info().Name] = len(list.Strategies)
		list.Strategies = append(list.Strategies, entryOf(st.Info(), "built-in", true))
	}
	winner := map[string]string{}
	for _, e := range cat.All(ctx) {
		if e.Err != nil {
			list.Strategies = append(list.Strategies, strategyEntry{Name: e.Name, Source: "plugin", Path: e.Path, Params: []paramEntry{}, Error: e.Err.Error()})
			continue
		}
		info := e.Plugin.Info()
		ent := entryOf(info, "plugin", false)
		ent.Path, ent.Protocol = e.Path, e.Plugin.Protocol()
		i, isBuiltin := builtin[info.Name]
		switch {
		case winner[info.Name] != "":
			ent.ShadowedBy = winner[info.Name]
		case isBuiltin && !e.Explicit:
			ent.ShadowedBy = "built-in"
		case isBuiltin:
			list.Strategies[i].ShadowedBy = e.Path
			winner[info.Name] = e.Path
		default:
			winner[info.Name] = e.Path
		}
		list.Strategies = append(list.Strategies, ent)
	}
	return list, nil
}

// entryOf describes a strategy; built-ins have their own flags, every strategy has --set.
func entryOf(info strategy.Info, source string, flags bool) strategyEntry {
	e := strategyEntry{Name: info.Name, Version: info.Version, Doc: info.Doc, Source: source, Params: []paramEntry{}}
	for _, p := range info.Params {
		f := fmt.Sprintf("--set %s.%s=%s", info.Name, p.Name, strings.ToUpper(p.Type))
		if flags {
			f = fmt.Sprintf("--%s %s", flagName(info.Name, p.Name), strings.ToUpper(p.Type))
		}
		e.Params = append(e.Params, paramEntry{Param: p, Flag: f})
	}
	return e
}

// printStrategies prints the list for people.
func printStrategies(list *strategyList) {
	for _, e := range list.Strategies {
		from := e.Source
		if e.Path != "" {
			from = e.Path
		}
		if e.Error != "" {
			name := e.Name
			if name == "" {
				name = "?"
			}
			fmt.Fprintf(out, "%s (%s): BROKEN: %s\n\n", name, from, e.Error)
			continue
		}
		fmt.Fprintf(out, "%s %s (%s)", e.Name, e.Version, from)
		if e.ShadowedBy != "" {
			fmt.Fprintf(out, " [shadowed by %s]", e.ShadowedBy)
		}
		fmt.Fprintf(out, "\n  %s\n", e.Doc)
		for _, p := range e.Params {
			def := ""
			if p.Default != "" {
				def = fmt.Sprintf(" (default %s)", p.Default)
			}
			fmt.Fprintf(out, "    %-34s %s%s\n", p.Flag, p.Doc, def)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "plugins are searched in: --plugin, %s\n", strings.Join(list.PluginDirs, ", "))
}
