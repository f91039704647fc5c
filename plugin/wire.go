package plugin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/skipgraph/skipgraph/plugin/pluginpb"
	"github.com/skipgraph/skipgraph/strategy"
)

// ProtocolVersion is the skipgraph plugin protocol this build speaks. It changes only when the
// messages change incompatibly; a plugin speaking another version is refused at the handshake.
const ProtocolVersion = 1

// PluginName is the name of the strategy plugin in go-plugin's plugin set.
const PluginName = "strategy"

// The magic cookie tells a plugin binary that skipgraph started it. It never changes.
const (
	MagicCookieKey   = "SKIPGRAPH_PLUGIN"
	MagicCookieValue = "skipgraph-strategy-6b1f3c2e9a"
)

// Handshake is the go-plugin handshake of host and plugins. The protocol version is negotiated
// through versioned plugin sets (see VersionedPlugins), so it is left zero here.
var Handshake = goplugin.HandshakeConfig{
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// VersionedPlugins returns the plugin sets for each supported protocol version, serving s (nil
// on the host side).
func VersionedPlugins(s strategy.Strategy) map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{
		ProtocolVersion: {PluginName: &GRPCPlugin{Impl: s}},
	}
}

// MaxChunkBytes caps the data of one Tensors.Read answer.
const MaxChunkBytes = 1 << 20

const (
	// compressAbove is the encoded size above which a message is gzip-compressed.
	compressAbove = 32 << 10
)

// maxDecoded bounds a decompressed message (a variable so that tests can lower it).
var maxDecoded = 256 << 20

// infoReply answers Strategy.Info.
type infoReply struct {
	Protocol int           `json:"protocol"`
	Info     strategy.Info `json:"info"`
}

// planRequest is Strategy.Plan's request.
type planRequest struct {
	Request *strategy.Request `json:"request"`
	// Tensors is the broker id of the host's Tensors service for this call; 0 when none.
	Tensors uint32 `json:"tensors,omitempty"`
}

// readRequest is Tensors.Read's request; the answer is the raw little-endian bytes of elements
// [Offset, Offset+n) of initializer Name, n <= Count, at most MaxChunkBytes.
type readRequest struct {
	Name   string `json:"name"`
	Offset int64  `json:"offset"`
	Count  int64  `json:"count"`
}

// encode renders v as JSON, gzip-compressed when larger than compressAbove.
func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(b) <= compressAbove {
		return b, err
	}
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	w.Write(b)
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decode reads what encode wrote into v. With strict, unknown fields are errors.
func decode(b []byte, v any, strict bool) error {
	var r io.Reader = bytes.NewReader(b)
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		r = io.LimitReader(zr, int64(maxDecoded)+1)
		raw, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if len(raw) > maxDecoded {
			return fmt.Errorf("message larger than %d MiB when decompressed", maxDecoded>>20)
		}
		r = bytes.NewReader(raw)
	}
	dec := json.NewDecoder(r)
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// GRPCPlugin is the go-plugin side of a strategy: on the plugin side it serves Impl, on the host
// side it produces the client that Open wraps. Serve and Open use it; it is exported for hosts
// and tests that drive go-plugin themselves (e.g. with goplugin.TestPluginGRPCConn).
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	// Impl is the strategy served (plugin side only).
	Impl strategy.Strategy
}

// GRPCServer registers the Strategy service.
func (p *GRPCPlugin) GRPCServer(b *goplugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterStrategyServer(s, &server{impl: p.Impl, broker: b})
	return nil
}

// GRPCClient returns the host's view of the plugin (a *Remote).
func (p *GRPCPlugin) GRPCClient(_ context.Context, b *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &Remote{client: pluginpb.NewStrategyClient(c), broker: b}, nil
}
