package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/plugin"
	"github.com/skipgraph/skipgraph/strategy"
)

// Strategy selection on the command line, shared by the commands that plan (convert, plan):
//
//	--strategy a,b                 strategies in order (built-in or plugin names)
//	--<strategy>-<param> VALUE     a built-in strategy's parameter, e.g. --lskip-start 6
//	--set <strategy>.<param>=VALUE any strategy's parameter, plugins included (repeatable)
//	--plugin PATH                  a plugin file, or a folder of skipgraph-strategy-* files (repeatable)
//	--plugin-timeout 30s           bound on a plugin's start and on each answer
//
// Flags must exist before the command line is parsed, and a plugin's parameters are known only
// once it has started, so plugins take their parameters through --set; built-ins get both forms.
// A name resolves to a --plugin file first, then to a built-in, then to a plugin found in
// $SKIPGRAPH_PLUGIN_PATH or the per-user plugin folder.
//
// A command uses it as:
//
//	sf := addStrategyFlags(fs, "lskip,cskip")
//	return func(args []string) error {
//		specs, closePlugins, err := sf.specs(ctx)
//		if err != nil { return err }
//		defer closePlugins()
//		src, err := bundle.LoadSource(args[0])
//		...
//		_, err = bundle.Convert(planContext(ctx, src), src, dir, bundle.Options{Strategies: specs})
//	}

// pluginFlags are --plugin and --plugin-timeout.
type pluginFlags struct {
	paths   listFlag
	timeout time.Duration
}

// addPluginFlags registers --plugin and --plugin-timeout on fs.
func addPluginFlags(fs *flag.FlagSet) *pluginFlags {
	p := &pluginFlags{}
	fs.Var(&p.paths, "plugin", "strategy plugin `PATH`: a skipgraph-strategy-* executable, or a folder of them (repeatable; $"+plugin.PathEnv+" and the per-user plugin folder are searched too)")
	fs.DurationVar(&p.timeout, "plugin-timeout", plugin.DefaultTimeout, "how long a plugin may take to start and to answer")
	return p
}

// catalog finds the plugin files (nothing is started yet).
func (p *pluginFlags) catalog() (*plugin.Catalog, error) {
	if p.timeout <= 0 {
		return nil, errs.Input("--plugin-timeout must be positive")
	}
	cands, err := plugin.Find(p.paths, plugin.Dirs())
	if err != nil {
		return nil, err
	}
	stopPluginsOnSignal()
	opts := plugin.Options{Timeout: p.timeout}
	if os.Getenv("SKIPGRAPH_DEBUG") != "" {
		opts.Stderr = errOut
	}
	return plugin.NewCatalog(cands, opts), nil
}

// strategyFlags are the strategy-selection flags (see the comment above).
type strategyFlags struct {
	*pluginFlags
	fs      *flag.FlagSet
	names   string
	sets    listFlag
	builtin map[string]*paramFlag // by flag name
}

// paramFlag is one --<strategy>-<param> flag of a built-in strategy.
type paramFlag struct {
	strategy string
	param    strategy.Param
	val      string
	set      bool
}

func (f *paramFlag) String() string {
	if f == nil || f.strategy == "" {
		return ""
	}
	if f.set {
		return f.val
	}
	return f.param.Default
}

func (f *paramFlag) Set(s string) error {
	if err := strategy.CheckValue(f.param, s); err != nil {
		return err
	}
	f.val, f.set = s, true
	return nil
}

func (f *paramFlag) IsBoolFlag() bool { return f.param.Type == "bool" }

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// flagName is the flag of a built-in strategy's parameter.
func flagName(strategy, param string) string { return strategy + "-" + param }

// addStrategyFlags registers --strategy (default def), --set, --plugin, --plugin-timeout and
// one flag per parameter of each built-in strategy on fs.
func addStrategyFlags(fs *flag.FlagSet, def string) *strategyFlags {
	s := &strategyFlags{pluginFlags: addPluginFlags(fs), fs: fs, builtin: map[string]*paramFlag{}}
	var names []string
	for _, st := range strategy.Builtins() {
		names = append(names, st.Info().Name)
	}
	fs.StringVar(&s.names, "strategy", def, "comma-separated `strategies`, applied in order (built-in: "+strings.Join(names, ", ")+"; plugins too; see 'skipgraph strategies')")
	fs.Var(&s.sets, "set", "set `strategy.param=value`, for any strategy, plugins included (repeatable)")
	for _, st := range strategy.Builtins() {
		info := st.Info()
		for _, p := range info.Params {
			f := &paramFlag{strategy: info.Name, param: p}
			name := flagName(info.Name, p.Name)
			s.builtin[name] = f
			fs.Var(f, name, fmt.Sprintf("%s (`%s`): %s", info.Name, p.Type, p.Doc))
		}
	}
	return s
}

// specs resolves the selected strategies, starting the plugins among them, and gathers each
// one's arguments. The returned function stops the plugins; call it when done (it is a no-op
// after an error).
func (s *strategyFlags) specs(ctx context.Context) ([]bundle.StrategySpec, func(), error) {
	var names []string
	seen := map[string]bool{}
	for _, n := range strings.Split(s.names, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if seen[n] {
			return nil, nil, errs.Input("--strategy %s: %s is given twice", s.names, n)
		}
		seen[n] = true
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, nil, errs.Input("--strategy is empty; name at least one strategy (see 'skipgraph strategies')")
	}
	args := map[string]map[string]string{}
	for _, n := range names {
		args[n] = map[string]string{}
	}
	var err error
	s.fs.Visit(func(f *flag.Flag) {
		pf := s.builtin[f.Name]
		if pf == nil || err != nil {
			return
		}
		if !seen[pf.strategy] {
			err = errs.Input("--%s is set, but %s is not in --strategy %s", f.Name, pf.strategy, s.names)
			return
		}
		args[pf.strategy][pf.param.Name] = pf.val
	})
	if err != nil {
		return nil, nil, err
	}
	for _, kv := range s.sets {
		st, rest, ok1 := strings.Cut(kv, ".")
		param, val, ok2 := strings.Cut(rest, "=")
		if !ok1 || !ok2 || st == "" || param == "" {
			return nil, nil, errs.Input("--set %s: want strategy.param=value, e.g. --set lskip.start=6", kv)
		}
		if !seen[st] {
			return nil, nil, errs.Input("--set %s: %s is not in --strategy %s", kv, st, s.names)
		}
		if old, dup := args[st][param]; dup && old != val {
			return nil, nil, errs.Input("--set %s: %s.%s is already set to %q", kv, st, param, old)
		}
		args[st][param] = val
	}

	cat, err := s.catalog()
	if err != nil {
		return nil, nil, err
	}
	var specs []bundle.StrategySpec
	for _, n := range names {
		st, err := resolve(ctx, cat, n)
		if err == nil {
			_, err = strategy.ResolveArgs(st.Info(), args[n])
		}
		if err != nil {
			cat.Close()
			return nil, nil, err
		}
		specs = append(specs, bundle.StrategySpec{Strategy: st, Args: args[n]})
	}
	return specs, cat.Close, nil
}

// resolve finds a strategy by name: a --plugin file, a built-in, or a plugin in a plugin folder.
func resolve(ctx context.Context, cat *plugin.Catalog, name string) (strategy.Strategy, error) {
	if p, err := cat.Lookup(ctx, name, true); p != nil || err != nil {
		return p, err
	}
	if st, ok := strategy.Builtin(name); ok {
		return st, nil
	}
	if p, err := cat.Lookup(ctx, name, false); p != nil || err != nil {
		return p, err
	}
	var known []string
	for _, st := range strategy.Builtins() {
		known = append(known, st.Info().Name)
	}
	for _, c := range cat.Candidates() {
		if c.Name != "" {
			known = append(known, c.Name)
		}
	}
	sort.Strings(known)
	return nil, errs.Input("unknown strategy %q (known: %s; a plugin is found as %s%s on --plugin, $%s or %s)", name, strings.Join(known, ", "), plugin.FilePrefix, name, plugin.PathEnv, defaultDirForHelp())
}

// defaultDirForHelp names the per-user plugin folder for messages.
func defaultDirForHelp() string {
	if d, err := plugin.DefaultDir(); err == nil {
		return d
	}
	return "the per-user plugin folder"
}

// planContext attaches the source model's weights to ctx, so that plugins that read tensor
// values (plugin.TensorBytes) can; call it on the context given to bundle.Convert or bundle.Plan.
func planContext(ctx context.Context, src *bundle.SourceModel) context.Context {
	return plugin.WithTensors(ctx, plugin.ModelTensors(src.Model))
}

var signalOnce sync.Once

// stopPluginsOnSignal makes an interrupt or SIGTERM stop the plugins (each runs in a process
// group of its own, out of reach of the terminal's signals) before skipgraph exits.
func stopPluginsOnSignal() {
	signalOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		go func() {
			sig := <-ch
			plugin.KillAll()
			fmt.Fprintf(errOut, "skipgraph: stopped by %v\n", sig)
			code := 130
			if sig == syscall.SIGTERM {
				code = 143
			}
			os.Exit(code)
		}()
	})
}
