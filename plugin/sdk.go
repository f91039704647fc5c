package plugin

import (
	"fmt"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/strategy"
)

// The strategy types, re-exported so that a plugin needs only this package.
type (
	// Strategy is the interface a plugin serves (strategy.Strategy).
	Strategy = strategy.Strategy
	// Info describes a strategy (strategy.Info).
	Info = strategy.Info
	// Param is one parameter of a strategy, also a CLI flag (strategy.Param).
	Param = strategy.Param
	// Request is what a strategy plans from (strategy.Request).
	Request = strategy.Request
	// Plan is what a strategy asks of the host (strategy.Plan).
	Plan = strategy.Plan
	// Boundary is a stop-gradient boundary (strategy.Boundary).
	Boundary = strategy.Boundary
	// PassCall asks the host to run one of its passes (strategy.PassCall).
	PassCall = strategy.PassCall
	// Patch is a small graph edit (strategy.Patch).
	Patch = strategy.Patch
	// PatchNode is a node a patch adds (strategy.PatchNode).
	PatchNode = strategy.PatchNode
	// PatchAttr is an attribute of a patch node (strategy.PatchAttr).
	PatchAttr = strategy.PatchAttr
	// Rewire points a node input at another value (strategy.Rewire).
	Rewire = strategy.Rewire
	// Skeleton is the weightless model (strategy.Skeleton).
	Skeleton = strategy.Skeleton
	// SkelNode is a node of the skeleton (strategy.SkelNode).
	SkelNode = strategy.SkelNode
	// SkelTensor is an initializer's metadata (strategy.SkelTensor).
	SkelTensor = strategy.SkelTensor
)

// Tower names, as in Boundary.Tower and the Tower argument of the lookups.
const (
	Vision = string(clip.Vision)
	Text   = string(clip.Text)
)

// Tower returns the tower ("vision" or "text") of the request's model, or an error saying that
// the model has none.
func Tower(req *Request, tower string) (*clip.Tower, error) {
	t := req.Structure.Tower(clip.TowerKind(tower))
	if t == nil {
		return nil, fmt.Errorf("the model has no %s tower", tower)
	}
	return t, nil
}

// Layer returns layer i of a tower.
func Layer(req *Request, tower string, i int) (*clip.Layer, error) {
	t, err := Tower(req, tower)
	if err != nil {
		return nil, err
	}
	if i < 0 || i >= len(t.Layers) {
		return nil, fmt.Errorf("the %s tower has no layer %d (it has %d)", tower, i, len(t.Layers))
	}
	return t.Layers[i], nil
}

// LayerParams returns the parameters of layer i of a tower, in graph order.
func LayerParams(req *Request, tower string, i int) []*clip.Param {
	var out []*clip.Param
	for _, p := range req.Structure.Params {
		if string(p.Tower) == tower && p.Role == clip.RoleLayer && p.Layer == i {
			out = append(out, p)
		}
	}
	return out
}

// ModelParam returns the model parameter with a canonical (torch) name, such as
// vision_model.encoder.layers.7.self_attn.q_proj.weight, or nil.
func ModelParam(req *Request, canonical string) *clip.Param { return req.Structure.Param(canonical) }

// BoundaryValue names the residual-stream value entering layer i of a tower; i equal to the
// number of layers names the value leaving the last layer.
func BoundaryValue(req *Request, tower string, i int) (string, error) {
	t, err := Tower(req, tower)
	if err != nil {
		return "", err
	}
	switch n := len(t.Layers); {
	case i >= 0 && i < n:
		return t.Layers[i].In, nil
	case i == n && n > 0:
		return t.Layers[n-1].Out, nil
	}
	return "", fmt.Errorf("the %s tower has no layer boundary %d (use 0..%d)", tower, i, len(t.Layers))
}

// StopAt returns the stop-gradient boundary before layer i of a tower; with cache, the frozen
// prefix's output is computed once and fed to the train step.
func StopAt(req *Request, tower string, i int, cache bool) (Boundary, error) {
	v, err := BoundaryValue(req, tower, i)
	if err != nil {
		return Boundary{}, err
	}
	return Boundary{Tower: tower, Layer: i, Value: v, Cache: cache}, nil
}

// Node returns the skeleton node with a name, or the unnamed node referred to as "@" and its first
// output's name (clip.NodeRef), or nil.
func Node(req *Request, ref string) *SkelNode {
	for i := range req.Skeleton.Nodes {
		n := &req.Skeleton.Nodes[i]
		if n.Name == ref || (n.Name == "" && len(n.Outputs) > 0 && "@"+n.Outputs[0] == ref) {
			return n
		}
	}
	return nil
}

// Initializer returns an initializer's metadata (small ones carry their values), or nil.
func Initializer(req *Request, name string) *SkelTensor {
	for i := range req.Skeleton.Initializers {
		if req.Skeleton.Initializers[i].Name == name {
			return &req.Skeleton.Initializers[i]
		}
	}
	return nil
}

// HasValue reports whether the model has a value (graph input, initializer or node output) with
// the given name.
func HasValue(req *Request, name string) bool {
	if Initializer(req, name) != nil {
		return true
	}
	for _, v := range req.Skeleton.Inputs {
		if v.Name == name {
			return true
		}
	}
	for _, n := range req.Skeleton.Nodes {
		for _, o := range n.Outputs {
			if o == name {
				return true
			}
		}
	}
	return false
}
