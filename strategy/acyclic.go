package strategy

import (
	"fmt"
)

// checkAcyclic refuses a patch whose rewires (with its new nodes) make the graph cyclic, so that
// the message can name the plugin rather than come from the host's sort later.
func checkAcyclic(skel *Skeleton, patch *Patch) error {
	type node struct {
		name   string
		inputs []string
	}
	var all []node
	key := map[string]int{} // a node's key (its name, or @ and its first output) -> index
	producer := map[string]int{}
	for i, n := range skel.Nodes {
		all = append(all, node{name: n.Name, inputs: append([]string(nil), n.Inputs...)})
		if n.Name != "" {
			key[n.Name] = i
		} else if len(n.Outputs) > 0 {
			key["@"+n.Outputs[0]] = i
			all[i].name = "@" + n.Outputs[0]
		}
		for _, o := range n.Outputs {
			producer[o] = i
		}
	}
	for _, n := range patch.Nodes {
		for _, o := range n.Outputs {
			producer[o] = len(all)
		}
		all = append(all, node{name: n.Name, inputs: n.Inputs})
	}
	for _, rw := range patch.Rewire {
		if i, ok := key[rw.Node]; ok && rw.Input >= 0 && rw.Input < len(all[i].inputs) {
			all[i].inputs[rw.Input] = rw.Value
		}
	}
	// depth-first search with colours: 1 on the stack, 2 done
	colour := make([]byte, len(all))
	var visit func(i int) error
	visit = func(i int) error {
		colour[i] = 1
		for _, in := range all[i].inputs {
			j, ok := producer[in]
			if in == "" || !ok {
				continue
			}
			switch colour[j] {
			case 1:
				return fmt.Errorf("patch makes a cycle through node %q (it reads %q); a rewire may only read values computed before the node", all[j].name, in)
			case 0:
				if err := visit(j); err != nil {
					return err
				}
			}
		}
		colour[i] = 2
		return nil
	}
	for i := range all {
		if colour[i] == 0 {
			if err := visit(i); err != nil {
				return err
			}
		}
	}
	return nil
}
