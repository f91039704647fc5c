// Package version holds skipgraph's release, written into every graph it produces and printed
// by 'skipgraph version'.
package version

// Version is the skipgraph release; set at build time with
// -ldflags "-X github.com/skipgraph/skipgraph/internal/version.Version=...".
var Version = "0.1.0-dev"
