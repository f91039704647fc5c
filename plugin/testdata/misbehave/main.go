// Command misbehave is a test plugin that misbehaves in the way its file name says
// (skipgraph-strategy-MODE): crash, hang, hangstart, exit, malformed, badpatch, cycle, v2, or tensors
// (which behaves, reading the largest initializer from the host and reporting its sum).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/skipgraph/skipgraph/plugin"
)

var mode = strings.TrimPrefix(filepath.Base(os.Args[0]), plugin.FilePrefix)

type misbehave struct{}

func (misbehave) Info() plugin.Info {
	return plugin.Info{Name: mode, Version: "0", Doc: "misbehaves: " + mode}
}

func (misbehave) Plan(ctx context.Context, req *plugin.Request) (*plugin.Plan, error) {
	switch mode {
	case "crash":
		go func() { panic("boom") }()
		time.Sleep(time.Minute)
	case "hang":
		select {}
	case "cycle":
		// the first node that reads a computed value reads the last node's output instead
		nodes := req.Skeleton.Nodes
		last := nodes[len(nodes)-1]
		for _, n := range nodes {
			if n.Name != "" && len(n.Inputs) > 0 {
				return &plugin.Plan{Patch: &plugin.Patch{Rewire: []plugin.Rewire{{Node: n.Name, Input: 0, Value: last.Outputs[0]}}}}, nil
			}
		}
	case "badpatch":
		return &plugin.Plan{Patch: &plugin.Patch{Rewire: []plugin.Rewire{{Node: "no/such/node", Input: 0, Value: req.Skeleton.Inputs[0].Name}}}}, nil
	case "tensors":
		var big *plugin.SkelTensor
		for i, t := range req.Skeleton.Initializers {
			if t.DType == "float32" && (big == nil || size(t) > size(*big)) {
				big = &req.Skeleton.Initializers[i]
			}
		}
		v, err := plugin.TensorFloat32s(ctx, req, big.Name)
		if err != nil {
			return nil, err
		}
		var sum float64
		for _, x := range v {
			sum += float64(x)
		}
		return &plugin.Plan{Params: map[string]string{"name": big.Name, "n": strconv.Itoa(len(v)), "sum": strconv.FormatFloat(sum, 'g', -1, 64)}}, nil
	}
	return &plugin.Plan{}, nil
}

func size(t plugin.SkelTensor) int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// garbage serves a Strategy service whose Plan answers bytes that are not a plan.
type garbage struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (garbage) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	reply := func(b []byte) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
		return func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(wrapperspb.BytesValue)); err != nil {
				return nil, err
			}
			return wrapperspb.Bytes(b), nil
		}
	}
	info, _ := json.Marshal(map[string]any{"protocol": plugin.ProtocolVersion, "info": misbehave{}.Info()})
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "skipgraph.plugin.v1.Strategy",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "Info", Handler: reply(info)},
			{MethodName: "Plan", Handler: reply([]byte(`{"freeze": 42}`))},
		},
	}, struct{}{})
	return nil
}

func (garbage) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("server only")
}

func main() {
	switch mode {
	case "hangstart":
		time.Sleep(time.Hour)
	case "exit":
		fmt.Fprintln(os.Stderr, "misbehave: refusing to start")
		os.Exit(3)
	case "malformed":
		goplugin.Serve(&goplugin.ServeConfig{
			HandshakeConfig:  plugin.Handshake,
			VersionedPlugins: map[int]goplugin.PluginSet{plugin.ProtocolVersion: {plugin.PluginName: garbage{}}},
			GRPCServer:       goplugin.DefaultGRPCServer,
		})
		return
	case "v2":
		goplugin.Serve(&goplugin.ServeConfig{
			HandshakeConfig:  plugin.Handshake,
			VersionedPlugins: map[int]goplugin.PluginSet{2: {plugin.PluginName: &plugin.GRPCPlugin{Impl: misbehave{}}}},
			GRPCServer:       goplugin.DefaultGRPCServer,
		})
		return
	}
	plugin.Serve(misbehave{})
}
