package plugin

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/plugin/pluginpb"
	"github.com/skipgraph/skipgraph/strategy"
)

// Serve runs s as a plugin: it answers skipgraph's handshake and serves s until skipgraph
// closes the connection. Call it from a plugin's main; it does not return. Started by hand
// rather than by skipgraph, the binary says so and exits with status 1.
func Serve(s strategy.Strategy) {
	go exitWithParent()
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: VersionedPlugins(s),
		GRPCServer:       goplugin.DefaultGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "plugin",
			Level:      hclog.Error,
			Output:     os.Stderr,
			JSONFormat: true,
		}),
	})
}

// exitWithParent ends the plugin when the process that started it is gone (killed without
// closing the plugin), so that no plugin outlives skipgraph.
func exitWithParent() {
	parent := os.Getppid()
	for range time.Tick(500 * time.Millisecond) {
		if os.Getppid() != parent {
			os.Exit(0)
		}
	}
}

// server is the plugin side of the Strategy service.
type server struct {
	pluginpb.UnimplementedStrategyServer
	impl   strategy.Strategy
	broker *goplugin.GRPCBroker
}

// Info implements pluginpb.StrategyServer.
func (s *server) Info(context.Context, *pluginpb.InfoRequest) (*pluginpb.InfoReply, error) {
	b, err := encode(infoReply{Protocol: ProtocolVersion, Info: s.impl.Info()})
	if err != nil {
		return nil, err
	}
	return &pluginpb.InfoReply{Json: b}, nil
}

// Plan implements pluginpb.StrategyServer.
func (s *server) Plan(ctx context.Context, in *pluginpb.PlanRequest) (*pluginpb.PlanReply, error) {
	b, err := s.plan(ctx, in.GetJson())
	if err != nil {
		return nil, err
	}
	return &pluginpb.PlanReply{Json: b}, nil
}

func (s *server) plan(ctx context.Context, in []byte) (out []byte, err error) {
	var req planRequest
	if err := decode(in, &req, false); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "malformed plan request: %v", err)
	}
	if req.Request == nil || req.Request.Skeleton == nil || req.Request.Structure == nil {
		return nil, status.Error(codes.InvalidArgument, "plan request without skeleton or structure")
	}
	if req.Tensors != 0 {
		r := &remoteTensors{broker: s.broker, id: req.Tensors}
		defer r.close()
		ctx = WithTensors(ctx, r)
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, status.Errorf(codes.Internal, "the strategy panicked: %v", r)
		}
	}()
	p, err := s.impl.Plan(ctx, req.Request)
	if err != nil {
		code := codes.Unknown
		if errs.IsInput(err) {
			code = codes.InvalidArgument
		}
		return nil, status.Error(code, err.Error())
	}
	if p == nil {
		return nil, status.Error(codes.Internal, "the strategy returned no plan and no error")
	}
	out, err = encode(p)
	if err != nil {
		return nil, status.Error(codes.Internal, fmt.Sprintf("encoding the plan: %v", err))
	}
	return out, nil
}
