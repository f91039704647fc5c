package bundle

import (
	"fmt"
	"sort"
	"strings"

	"github.com/skipgraph/skipgraph/tensorio"
)

// torchPart is one canonical name held by a parameter record: the torch tensor it belongs to
// and, for a slice of a packed in-projection ("...in_proj_weight[k]"), which third.
type torchPart struct {
	rec   *ParamRecord
	torch string
	// part is 0, 1 or 2 for the [q], [k] and [v] slices, -1 for a whole tensor.
	part int
}

func parseCanonical(c string) (torch string, part int) {
	if i := strings.IndexByte(c, '['); i >= 0 && strings.HasSuffix(c, "]") {
		if j := strings.IndexByte("qkv", c[i+1]); j >= 0 && len(c) == i+3 {
			return c[:i], j
		}
	}
	return c, -1
}

// torchParts maps each torch tensor name to the parameter records that hold it.
func (m *Manifest) torchParts() map[string][]torchPart {
	out := map[string][]torchPart{}
	for i := range m.Parameters {
		r := &m.Parameters[i]
		for _, c := range r.Canonical {
			t, part := parseCanonical(c)
			out[t] = append(out[t], torchPart{r, t, part})
		}
	}
	return out
}

// splitKey splits a tensor name into a known prefix and a suffix that starts with '.'
// ("<name>.momentum" -> "<name>", ".momentum"), trying the whole name first, then ever shorter
// prefixes.
func splitKey(key string, known func(string) bool) (string, string, bool) {
	for end := len(key); end > 0; {
		if known(key[:end]) {
			return key[:end], key[end:], true
		}
		end = strings.LastIndexByte(key[:end], '.')
	}
	return "", "", false
}

// ownState reports whether key names train-step state that belongs to no parameter (dynamic
// loss scaling's scale and count): ToTorch and FromTorch keep such tensors under their names.
func (m *Manifest) ownState(key string) bool {
	return m.LossScale != nil && (key == LossScaleInput || key == LossScaleGood)
}

// ToTorch renames tensors keyed by source initializer names (parameters, or optimizer state
// named "<initializer>.<suffix>"; loss-scaling state keeps its name) to the canonical torch
// names of the manifest, in torch's
// layout: a transposed initializer is transposed back, the [q], [k], [v] slices of a packed
// in-projection are stacked into one tensor (all three must be present), and an initializer
// that holds several torch tensors is written under each name. The result loads into a PyTorch
// or Hugging Face model with load_state_dict(strict=False).
func (m *Manifest) ToTorch(ts map[string]*tensorio.Tensor) (map[string]*tensorio.Tensor, error) {
	byInit := map[string]*ParamRecord{}
	for i := range m.Parameters {
		byInit[m.Parameters[i].Initializer] = &m.Parameters[i]
	}
	type slices struct {
		parts [3]*tensorio.Tensor
	}
	out := map[string]*tensorio.Tensor{}
	stacks := map[string]*slices{}
	for _, key := range sortedKeys(ts) {
		if m.ownState(key) {
			out[key] = ts[key]
			continue
		}
		init, suffix, ok := splitKey(key, func(s string) bool { return byInit[s] != nil })
		if !ok {
			return nil, fmt.Errorf("tensor %s: no parameter of the bundle is named so", key)
		}
		r := byInit[init]
		for _, c := range r.Canonical {
			torch, part := parseCanonical(c)
			t := ts[key]
			if r.Transposed {
				var err error
				if t, err = transpose2D(t); err != nil {
					return nil, fmt.Errorf("tensor %s: %w", key, err)
				}
			}
			if part < 0 {
				out[torch+suffix] = t
				continue
			}
			s := stacks[torch+suffix]
			if s == nil {
				s = &slices{}
				stacks[torch+suffix] = s
			}
			s.parts[part] = t
		}
	}
	for name, s := range stacks {
		for j, p := range s.parts {
			if p == nil {
				return nil, fmt.Errorf("tensor %s: its [%c] slice is missing", name, "qkv"[j])
			}
		}
		t, err := concatRows(s.parts[:])
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// FromTorch is the inverse of ToTorch: it takes tensors keyed by canonical torch names (with an
// optional ".<suffix>" for optimizer state) in torch's layout and returns them keyed by source
// initializer names in the initializers' layout. Names the manifest does not know are returned
// in unknown (a full state dict holds buffers such as position_ids).
func (m *Manifest) FromTorch(ts map[string]*tensorio.Tensor) (out map[string]*tensorio.Tensor, unknown []string, err error) {
	parts := m.torchParts()
	out = map[string]*tensorio.Tensor{}
	for _, key := range sortedKeys(ts) {
		if m.ownState(key) {
			out[key] = ts[key]
			continue
		}
		torch, suffix, ok := splitKey(key, func(s string) bool { return parts[s] != nil })
		if !ok {
			unknown = append(unknown, key)
			continue
		}
		for _, p := range parts[torch] {
			name := p.rec.Initializer + suffix
			if out[name] != nil {
				continue // an initializer holding several torch tensors: the first one wins
			}
			t := ts[key]
			if p.part >= 0 {
				if t, err = rowThird(t, p.part); err != nil {
					return nil, nil, fmt.Errorf("tensor %s: %w", key, err)
				}
			}
			if p.rec.Transposed {
				if t, err = transpose2D(t); err != nil {
					return nil, nil, fmt.Errorf("tensor %s: %w", key, err)
				}
			}
			out[name] = t
		}
	}
	return out, unknown, nil
}

func sortedKeys(ts map[string]*tensorio.Tensor) []string {
	keys := make([]string, 0, len(ts))
	for k := range ts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// transpose2D returns the transpose of a rank-2 tensor.
func transpose2D(t *tensorio.Tensor) (*tensorio.Tensor, error) {
	if t.Rank() != 2 {
		return nil, fmt.Errorf("cannot transpose a tensor of shape %v (want rank 2)", t.Shape)
	}
	raw, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	r, c, size := int(t.Shape[0]), int(t.Shape[1]), t.DType.Size()
	dst := make([]byte, len(raw))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			copy(dst[(j*r+i)*size:(j*r+i+1)*size], raw[(i*c+j)*size:(i*c+j+1)*size])
		}
	}
	return tensorio.FromBytes(t.DType, []int64{t.Shape[1], t.Shape[0]}, dst)
}

// concatRows stacks tensors of equal dtype and trailing shape along axis 0.
func concatRows(ts []*tensorio.Tensor) (*tensorio.Tensor, error) {
	var raw []byte
	shape := append([]int64{0}, ts[0].Shape[min(1, len(ts[0].Shape)):]...)
	for _, t := range ts {
		if t.Rank() == 0 || t.DType != ts[0].DType || !tensorio.SameShape(t.Shape[1:], shape[1:]) {
			return nil, fmt.Errorf("slices of shapes %v and %v (or dtypes) do not stack", ts[0].Shape, t.Shape)
		}
		b, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		raw = append(raw, b...)
		shape[0] += t.Shape[0]
	}
	return tensorio.FromBytes(ts[0].DType, shape, raw)
}

// rowThird returns the j-th third of t along axis 0.
func rowThird(t *tensorio.Tensor, j int) (*tensorio.Tensor, error) {
	if t.Rank() == 0 || t.Shape[0]%3 != 0 {
		return nil, fmt.Errorf("shape %v does not split into q, k and v along its first axis", t.Shape)
	}
	raw, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	n := len(raw) / 3
	shape := append([]int64{t.Shape[0] / 3}, t.Shape[1:]...)
	return tensorio.FromBytes(t.DType, shape, raw[j*n:(j+1)*n])
}
