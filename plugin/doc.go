// Package plugin runs skip strategies as separate programs over hashicorp/go-plugin's gRPC
// transport, and is the SDK their authors build against.
//
// # For plugin authors
//
// A plugin is a main package that calls Serve with a strategy.Strategy:
//
//	func main() { plugin.Serve(myStrategy{}) }
//
// Build it into an executable named skipgraph-strategy-NAME and either pass it with
// --plugin PATH or drop it into a folder on $SKIPGRAPH_PLUGIN_PATH or into
// os.UserConfigDir()/skipgraph/plugins. The request types are re-exported here (Request, Plan,
// Boundary, Patch, ...) together with lookups by canonical name (ModelParam, LayerParams,
// BoundaryValue, Layer, Node, Initializer) and chunked reads of weight values from the host
// (TensorBytes, TensorFloat32s). docs/plugins.md walks through a complete example.
//
// # For the host
//
// Open starts one plugin binary, checks its handshake and protocol version, and returns a
// *Plugin, which implements strategy.Strategy: bundle.Convert drives it exactly like a built-in.
// Catalog finds plugin files (Dirs, Find) and opens them lazily by strategy name.
//
// # Wire
//
// go-plugin's handshake uses the magic cookie SKIPGRAPH_PLUGIN (value fixed forever) and the
// plugin protocol version ProtocolVersion, negotiated through go-plugin's versioned plugin sets.
// The services are published in pluginpb/plugin.proto, from which package pluginpb is
// generated: each message holds a JSON document in field 1 (gzip-compressed when large; a gzip
// stream is recognised by its magic bytes). Service skipgraph.plugin.v1.Strategy has Info and
// Plan; the host serves skipgraph.plugin.v1.Tensors over go-plugin's GRPCBroker for the duration
// of each Plan call, from which a plugin reads weight values in chunks of at most MaxChunkBytes.
// docs/plugins.md says what a plugin in another language must do.
package plugin
