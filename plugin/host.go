package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/status"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/plugin/pluginpb"
	"github.com/skipgraph/skipgraph/strategy"
)

// DefaultTimeout bounds a plugin's start and each of its answers unless Options say otherwise.
const DefaultTimeout = 30 * time.Second

func init() {
	// gRPC's own logging would print transport errors of a dying plugin beside skipgraph's one
	// line; the errors reach the caller anyway.
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
}

// Options configure Open.
type Options struct {
	// Timeout bounds the start and handshake, and each call (Info, Plan); 0 means DefaultTimeout.
	Timeout time.Duration
	// Stderr, when set, receives the plugin's standard error as it comes. Either way the last
	// lines are kept to explain a crash.
	Stderr io.Writer
}

// Plugin is a strategy served by a plugin process. It implements strategy.Strategy; its Info is
// fetched once by Open. Close stops the process.
type Plugin struct {
	path    string
	info    strategy.Info
	client  *goplugin.Client
	cmd     *exec.Cmd
	remote  *Remote
	timeout time.Duration
	stderr  *tail

	mu   sync.Mutex
	dead error
}

// Open starts the plugin binary at path, completes the handshake (refusing another protocol
// version), and asks for its Info. Every failure is an input error (errs.Input) in one line that
// names the plugin.
func Open(ctx context.Context, path string, opts Options) (*Plugin, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if err := checkExecutable(path); err != nil {
		return nil, errs.Input("plugin %s: %w", path, err)
	}
	p := &Plugin{path: path, timeout: opts.Timeout, stderr: &tail{max: 16 << 10}, cmd: exec.Command(path)}
	ownGroup(p.cmd)
	var stderr io.Writer = p.stderr
	if opts.Stderr != nil {
		stderr = io.MultiWriter(p.stderr, opts.Stderr)
	}
	p.client = goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: VersionedPlugins(nil),
		Cmd:              p.cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
		Stderr:           stderr,
		StartTimeout:     opts.Timeout,
		Managed:          true,
	})
	track(p)
	rpc, err := p.client.Client()
	if err != nil {
		killGroup(p.cmd) // nothing of a plugin that failed its start is kept waiting for
		p.Close()
		return nil, p.startError(err)
	}
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		p.Close()
		return nil, errs.Input("plugin %s: %s", path, oneLine(err.Error()))
	}
	p.remote = raw.(*Remote)
	cctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	info, err := p.remote.Info(cctx)
	if err != nil {
		var bad *badAnswer
		if errors.As(err, &bad) {
			err = errs.Input("plugin %s returned %w", path, err)
		} else {
			err = p.fail(cctx, "Info", err)
		}
		p.Close()
		return nil, err
	}
	if err := checkInfo(info); err != nil {
		p.Close()
		return nil, errs.Input("plugin %s describes itself wrongly: %w", path, err)
	}
	p.info = info
	return p, nil
}

// Info returns the strategy's description as the plugin gave it.
func (p *Plugin) Info() strategy.Info { return p.info }

// Path returns the plugin binary's absolute path.
func (p *Plugin) Path() string { return p.path }

// Protocol returns the negotiated plugin protocol version.
func (p *Plugin) Protocol() int { return p.client.NegotiatedVersion() }

// Plan asks the plugin for its plan. The host's tensor data, when attached to ctx with
// WithTensors, is served to the plugin for the duration of the call. The answer is checked
// against the request's skeleton (CheckPlan); a crash, a timeout, a malformed or invalid plan
// are input errors naming the plugin, and after a crash or timeout the process is stopped.
func (p *Plugin) Plan(ctx context.Context, req *strategy.Request) (*strategy.Plan, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead != nil {
		return nil, p.dead
	}
	cctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	plan, err := p.remote.Plan(cctx, req, TensorsFrom(ctx))
	if err != nil {
		var bad *badAnswer
		if errors.As(err, &bad) {
			return nil, errs.Input("plugin %s returned %w", p.path, err)
		}
		return nil, p.fail(cctx, "Plan", err)
	}
	if err := CheckPlan(req.Skeleton, plan); err != nil {
		return nil, errs.Input("plugin %s returned an invalid plan: %w", p.path, err)
	}
	return plan, nil
}

// closeGrace is how long Close waits for a plugin to exit by itself before killing its
// process group.
const closeGrace = 2 * time.Second

// Close stops the plugin process and every process it started (its process group). It is safe
// to call more than once.
func (p *Plugin) Close() {
	if p.client == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		p.client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeGrace):
		// a child holding the plugin's stdout keeps go-plugin waiting: kill the whole group
		killGroup(p.cmd)
		<-done
	}
	// children that outlive the plugin without holding its pipes go too
	killGroup(p.cmd)
	untrack(p)
}

// Closed reports whether the plugin process has exited.
func (p *Plugin) Closed() bool { return p.client == nil || p.client.Exited() }

// KillAll stops every plugin process this program started and has not stopped yet, with the
// processes they started. Call it before exiting on a signal.
func KillAll() {
	live.Lock()
	ps := make([]*Plugin, 0, len(live.m))
	for p := range live.m {
		ps = append(ps, p)
	}
	live.Unlock()
	for _, p := range ps {
		killGroup(p.cmd)
	}
	for _, p := range ps {
		p.Close()
	}
}

// live are the plugins started and not yet closed.
var live = struct {
	sync.Mutex
	m map[*Plugin]bool
}{m: map[*Plugin]bool{}}

func track(p *Plugin) {
	live.Lock()
	live.m[p] = true
	live.Unlock()
}

func untrack(p *Plugin) {
	live.Lock()
	delete(live.m, p)
	live.Unlock()
}

// fail turns a failed call into one line, and stops the plugin when it is unusable.
func (p *Plugin) fail(ctx context.Context, op string, err error) error {
	st, _ := status.FromError(err)
	var out error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || st.Code() == codes.DeadlineExceeded:
		out = errs.Input("plugin %s did not answer %s within %s and was stopped (raise --plugin-timeout if it needs longer)", p.path, op, p.timeout)
	case ctx.Err() != nil:
		out = fmt.Errorf("plugin %s: %s: %w", p.path, op, ctx.Err())
	case st.Code() == codes.Unavailable || p.client.Exited():
		p.waitExit()
		out = errs.Input("plugin %s crashed during %s (%s)", p.path, op, p.stderr.reason())
	default:
		// The strategy itself answered with an error: the plugin stays usable.
		return errs.Input("plugin %s: %s", p.path, oneLine(st.Message()))
	}
	p.dead = out
	p.Close()
	return out
}

// waitExit gives an exiting plugin a moment to finish writing its last words.
func (p *Plugin) waitExit() {
	for i := 0; i < 20 && !p.client.Exited(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

var versionRE = regexp.MustCompile(`Plugin version: (\d+)`)

// startError explains a failed start or handshake.
func (p *Plugin) startError(err error) error {
	msg := err.Error()
	switch {
	case versionRE.MatchString(msg):
		v := versionRE.FindStringSubmatch(msg)[1]
		return errs.Input("plugin %s speaks skipgraph plugin protocol %s, but this skipgraph speaks protocol %d; rebuild the plugin against a matching github.com/skipgraph/skipgraph/plugin", p.path, v, ProtocolVersion)
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return errs.Input("plugin %s did not complete the handshake within %s and was stopped (raise --plugin-timeout if it needs longer)", p.path, p.timeout)
	case strings.Contains(msg, "exited before we could connect"), strings.Contains(msg, "Unrecognized remote plugin message"):
		return errs.Input("plugin %s exited before the handshake (%s); is it a skipgraph strategy plugin (plugin.Serve)?", p.path, p.stderr.reason())
	case strings.Contains(msg, "unsupported plugin protocol"):
		return errs.Input("plugin %s does not speak gRPC; skipgraph strategy plugins are served with plugin.Serve", p.path)
	}
	return errs.Input("plugin %s: %s", p.path, oneLine(msg))
}

// checkExecutable checks that path is a regular executable file.
func checkExecutable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no such file")
		}
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	if st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("not executable (chmod +x it)")
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// checkInfo checks a plugin's self-description.
func checkInfo(info strategy.Info) error {
	if !nameRE.MatchString(info.Name) {
		return fmt.Errorf("strategy name %q (want lower case letters, digits and dashes)", info.Name)
	}
	seen := map[string]bool{}
	for _, prm := range info.Params {
		if !nameRE.MatchString(prm.Name) {
			return fmt.Errorf("parameter name %q (want lower case letters, digits and dashes)", prm.Name)
		}
		if seen[prm.Name] {
			return fmt.Errorf("parameter %q given twice", prm.Name)
		}
		seen[prm.Name] = true
		switch prm.Type {
		case "int", "float", "string", "bool":
		default:
			return fmt.Errorf("parameter %q has type %q (want int, float, string or bool)", prm.Name, prm.Type)
		}
	}
	return nil
}

// Remote is the host's connection to a strategy plugin, without process management: what
// GRPCPlugin.GRPCClient returns. Open wraps it in a Plugin.
type Remote struct {
	client pluginpb.StrategyClient
	broker *goplugin.GRPCBroker
}

// badAnswer is an answer that does not decode.
type badAnswer struct{ err error }

func (e *badAnswer) Error() string { return e.err.Error() }

// Info asks for the strategy's description.
func (r *Remote) Info(ctx context.Context) (strategy.Info, error) {
	out, err := r.client.Info(ctx, &pluginpb.InfoRequest{})
	if err != nil {
		return strategy.Info{}, err
	}
	var rep infoReply
	if err := decode(out.GetJson(), &rep, false); err != nil {
		return strategy.Info{}, &badAnswer{fmt.Errorf("a malformed description: %w", err)}
	}
	return rep.Info, nil
}

// Plan asks for a plan; tensors, when not nil, is served to the plugin during the call.
func (r *Remote) Plan(ctx context.Context, req *strategy.Request, tensors TensorReader) (*strategy.Plan, error) {
	pr := planRequest{Request: req}
	if r.broker != nil {
		pr.Tensors = r.broker.NextId()
		ln, err := r.broker.Accept(pr.Tensors)
		if err != nil {
			return nil, err
		}
		srv := grpc.NewServer()
		serveTensors(srv, tensors)
		go srv.Serve(ln)
		defer srv.Stop()
	}
	in, err := encode(pr)
	if err != nil {
		return nil, err
	}
	out, err := r.client.Plan(ctx, &pluginpb.PlanRequest{Json: in})
	if err != nil {
		return nil, err
	}
	var plan *strategy.Plan
	if err := decode(out.GetJson(), &plan, true); err != nil {
		return nil, &badAnswer{fmt.Errorf("a malformed plan: %w", err)}
	}
	if plan == nil {
		return nil, &badAnswer{fmt.Errorf("a malformed plan: null")}
	}
	return plan, nil
}

// tail keeps the last bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(b), nil
}

// reason picks the line that explains an exit: a Go panic or fatal error, else the last line
// that is not a structured log record.
func (t *tail) reason() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var last string
	for _, line := range bytes.Split(t.buf, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		switch {
		case strings.HasPrefix(s, "panic: "), strings.HasPrefix(s, "fatal error: "):
			return oneLine(s)
		case s == "", strings.HasPrefix(s, "{"), strings.HasPrefix(s, "goroutine "):
		default:
			last = s
		}
	}
	if last == "" {
		return "the process exited without a message"
	}
	return oneLine(last)
}

// oneLine folds a message onto one line and bounds it.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
