package bundle

import (
	"encoding/json"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/version"
)

// Producer is the producer_name of every graph skipgraph writes.
const Producer = "skipgraph"

// Metadata keys (metadata_props) of the graphs skipgraph writes. Values that hold structure are
// JSON in the manifest's own spelling.
const (
	// MetaGraph says which graph of the bundle this is ("features", "train_step", "eval"), or
	// "export" for a model written by 'skipgraph export'.
	MetaGraph = "skipgraph.graph"
	// MetaFormat is the manifest format of the bundle.
	MetaFormat = "skipgraph.bundle_format"
	// MetaStrategies lists the strategies with their resolved parameters (JSON).
	MetaStrategies = "skipgraph.strategies"
	// MetaOptimizer is the optimizer configuration (JSON).
	MetaOptimizer = "skipgraph.optimizer"
	// MetaLRGroups are the learning-rate groups with their default rates (JSON).
	MetaLRGroups = "skipgraph.lr_groups"
)

// Stamp marks g as written by skipgraph: producer_name "skipgraph" with its version, and the
// bundle's settings in metadata_props under the Meta* keys.
func (m *Manifest) Stamp(g *graph.Model, which GraphKey) {
	onnxio.SetProducer(g, Producer, version.Version)
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
	for _, kv := range [][2]string{
		{MetaGraph, string(which)},
		{MetaFormat, m.Format},
		{MetaStrategies, js(m.Strategies)},
		{MetaOptimizer, js(m.Optimizer)},
		{MetaLRGroups, js(m.LRGroups)},
	} {
		onnxio.SetMetadata(g, kv[0], kv[1])
	}
}
