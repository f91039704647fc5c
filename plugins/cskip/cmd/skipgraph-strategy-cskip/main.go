// Command skipgraph-strategy-cskip serves the built-in CSkip strategy as a plugin binary, the same
// code skipgraph runs in-process: it exists to check that both routes give the same bundle, and
// as the smallest example of a plugin main.
package main

import (
	"github.com/skipgraph/skipgraph/plugin"
	"github.com/skipgraph/skipgraph/plugins/cskip"
)

func main() { plugin.Serve(cskip.Strategy{}) }
