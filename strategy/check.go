package strategy

import (
	"fmt"

	"github.com/skipgraph/skipgraph/graph/opschema"
)

// CheckPlan checks every name a plan refers to against the skeleton it was made from: frozen and
// trained parameters must be initializers, stop-gradient boundaries existing values of a tower,
// patch nodes must read existing values (or ones the patch defines) and define new ones, and
// rewires must name existing nodes and inputs. A plugin host runs it where the plan is received,
// so that its message can name the plugin; the bundle runs it on every plan, with the checks
// only the full graph allows (parameter dtypes, host passes, operator versions) after it.
func CheckPlan(skel *Skeleton, p *Plan) error {
	if p == nil {
		return fmt.Errorf("no plan")
	}
	if skel == nil {
		return fmt.Errorf("no skeleton to check the plan against")
	}
	inits := map[string]bool{}
	for _, t := range skel.Initializers {
		inits[t.Name] = true
	}
	values := map[string]bool{}
	for name := range inits {
		values[name] = true
	}
	for _, v := range skel.Inputs {
		values[v.Name] = true
	}
	nodes := map[string]*SkelNode{}
	for i := range skel.Nodes {
		n := &skel.Nodes[i]
		for _, o := range n.Outputs {
			if o != "" {
				values[o] = true
			}
		}
		if n.Name != "" {
			nodes[n.Name] = n
		} else if len(n.Outputs) > 0 {
			nodes["@"+n.Outputs[0]] = n
		}
	}
	for _, list := range [][]string{p.Freeze, p.Train} {
		for _, name := range list {
			if !inits[name] {
				return fmt.Errorf("parameter %q is not an initializer of the model", name)
			}
		}
	}
	for _, b := range p.StopGradients {
		if b.Tower != "vision" && b.Tower != "text" {
			return fmt.Errorf("stop-gradient boundary %q: tower %q is not vision or text", b.Value, b.Tower)
		}
		if !values[b.Value] {
			return fmt.Errorf("stop-gradient boundary %q is not a value of the model", b.Value)
		}
	}
	for _, pc := range p.Passes {
		if pc.Name == "" {
			return fmt.Errorf("a host pass without a name")
		}
	}
	if p.Patch == nil {
		return nil
	}
	defined := map[string]string{}
	for _, n := range p.Patch.Nodes {
		if n.OpType == "" {
			return fmt.Errorf("patch node %q has no op type", n.Name)
		}
		if n.Domain != "" && n.Domain != "ai.onnx" {
			return fmt.Errorf("patch node %q uses domain %q; only standard ONNX ops may be added", n.Name, n.Domain)
		}
		if _, ok := opschema.Lookup(n.OpType); !ok {
			return fmt.Errorf("patch node %q: %s is not an ONNX operator; a plan may add standard ONNX operators only", n.Name, n.OpType)
		}
		if len(n.Outputs) == 0 {
			return fmt.Errorf("patch node %q has no outputs", n.Name)
		}
		for _, o := range n.Outputs {
			if values[o] {
				return fmt.Errorf("patch node %q would redefine existing value %q", n.Name, o)
			}
			if prev, dup := defined[o]; dup {
				return fmt.Errorf("patch nodes %q and %q both define %q", prev, n.Name, o)
			}
			defined[o] = n.Name
		}
		for _, a := range n.Attrs {
			if countSet(a) != 1 {
				return fmt.Errorf("patch node %q: attribute %q must have exactly one value", n.Name, a.Name)
			}
		}
	}
	for _, n := range p.Patch.Nodes {
		for _, in := range n.Inputs {
			if in != "" && !values[in] && defined[in] == "" {
				return fmt.Errorf("patch node %q reads %q, which does not exist", n.Name, in)
			}
		}
	}
	for _, rw := range p.Patch.Rewire {
		n := nodes[rw.Node]
		if n == nil {
			return fmt.Errorf("patch rewires node %q, which does not exist", rw.Node)
		}
		if rw.Input < 0 || rw.Input >= len(n.Inputs) {
			return fmt.Errorf("patch rewires input %d of node %q, which has %d inputs", rw.Input, rw.Node, len(n.Inputs))
		}
		if !values[rw.Value] && defined[rw.Value] == "" {
			return fmt.Errorf("patch rewires node %q to %q, which does not exist", rw.Node, rw.Value)
		}
	}
	return checkAcyclic(skel, p.Patch)
}

func countSet(a PatchAttr) int {
	n := 0
	for _, set := range []bool{a.Int != nil, a.Float != nil, a.String != nil, a.Ints != nil, a.Floats != nil} {
		if set {
			n++
		}
	}
	return n
}
