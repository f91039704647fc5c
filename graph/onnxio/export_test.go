package onnxio_test

import (
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio/internal/testmodel"
)

// testmodelSmall returns the small test model.
func testmodelSmall() *graph.Model { return testmodel.Small(1) }
