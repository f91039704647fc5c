package clip

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the structure as indented JSON.
func (s *Structure) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// WriteTable writes a readable summary for `skipgraph inspect`: the export, the head, one row
// per tower, then per tower its parts and one row per layer with its parameter count and
// boundary values.
func (s *Structure) WriteTable(w io.Writer) error {
	bw := bufio.NewWriter(w)
	kind := "combined"
	if s.Split {
		kind = "split"
	}
	fmt.Fprintf(bw, "CLIP export: family %s, opset %d, %s\n", s.Family, s.Opset, kind)
	ls := s.Head.LogitScale
	switch {
	case !s.Head.Present:
		fmt.Fprintf(bw, "head: absent; logit scale %g (default)\n", ls.Value)
	default:
		src := "folded constant"
		if ls.Exp {
			src = fmt.Sprintf("exp of initializer %q = exp(%.4g)", ls.Initializer, ls.Raw)
		} else if ls.Initializer != "" {
			src = fmt.Sprintf("initializer %q", ls.Initializer)
		}
		fmt.Fprintf(bw, "head: logit scale %.6g (%s); logits_per_image %s, logits_per_text %s\n",
			ls.Value, src, orDash(s.Head.LogitsPerImage), orDash(s.Head.LogitsPerText))
	}
	fmt.Fprintf(bw, "class axes: input_ids %d, text stream %d, text embeds %d, logits_per_image %d, logits_per_text %d\n\n",
		s.ClassAxes.InputIDs, s.ClassAxes.TextStream, s.ClassAxes.TextEmbeds, s.ClassAxes.LogitsPerImage, s.ClassAxes.LogitsPerText)

	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOWER\tLAYOUT\tLAYERS\tWIDTH\tHEADS\tHEAD DIM\tMLP\tSEQ\tPARAMS\tINPUTS")
	for _, t := range s.Towers() {
		seq := "-"
		if t.SeqLen > 0 {
			seq = fmt.Sprint(t.SeqLen)
		}
		n, _ := s.countParams(t.Kind, nil)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%s\n", t.Kind, t.Layout, len(t.Layers), t.Width,
			t.Heads, t.HeadDim, t.MLPWidth, seq, n, strings.Join(t.Inputs, ", "))
	}
	tw.Flush()
	for _, t := range s.Towers() {
		fmt.Fprintf(bw, "\n%s tower\n", t.Kind)
		e := t.Embedding
		var parts []string
		for _, p := range []struct{ k, v string }{{"patch", e.PatchWeight}, {"class", e.ClassEmbedding},
			{"token", e.TokenEmbedding}, {"position", e.PositionEmbedding}} {
			if p.v != "" {
				parts = append(parts, p.k+" "+p.v)
			}
		}
		fmt.Fprintf(bw, "  embedding:  %s -> %s\n", strings.Join(parts, ", "), e.Output)
		if t.PreNorm != nil {
			fmt.Fprintf(bw, "  pre-norm:   %s -> %s\n", t.PreNorm.Weight, t.PreNorm.Output)
		}
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  LAYER\tNODES\tPARAMS\tELEMENTS\tATTN\tMLP\tIN\tOUT")
		for _, l := range t.Layers {
			layer := l.Index
			n, el := s.countParams(t.Kind, &layer)
			attn := "q,k,v"
			if l.Attention.Packed {
				attn = "packed"
			}
			fmt.Fprintf(tw, "  %d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", l.Index, len(l.Nodes), n, el, attn, l.MLP.Activation, l.In, l.Out)
		}
		tw.Flush()
		if t.PostNorm != nil {
			fmt.Fprintf(bw, "  post-norm:  %s -> %s\n", t.PostNorm.Weight, t.PostNorm.Output)
		}
		pool := t.Pooling.Kind
		if t.Pooling.Form != "" {
			pool += " (" + t.Pooling.Form
			if t.Pooling.Form == "eos_equal" {
				pool += fmt.Sprintf(", eos %d", t.Pooling.EOSToken)
			}
			pool += ")"
		}
		fmt.Fprintf(bw, "  pooling:    %s at %s\n", pool, orDash(t.Pooling.Gather))
		if t.Projection != nil {
			fmt.Fprintf(bw, "  projection: %s [%d -> %d] -> %s\n", t.Projection.Weight, t.Projection.InFeatures, t.Projection.OutFeatures, t.Output)
		}
		for _, m := range t.Masks {
			src := "from " + strings.Join(m.Inputs, ", ")
			if m.Constant {
				src = "constant"
			}
			fmt.Fprintf(bw, "  mask:       %s %s (%s)\n", m.Kind, m.Value, src)
		}
	}
	if len(s.Unmapped) > 0 {
		fmt.Fprintf(bw, "\nunmapped float initializers: %s\n", strings.Join(s.Unmapped, ", "))
	}
	return bw.Flush()
}

// countParams counts the parameters (and their elements) of a tower, or of one of its layers.
func (s *Structure) countParams(k TowerKind, layer *int) (n int, elements int64) {
	for _, p := range s.Params {
		if p.Tower != k || (layer != nil && p.Layer != *layer) {
			continue
		}
		n++
		e := int64(1)
		for _, d := range p.Shape {
			e *= d
		}
		elements += e
	}
	return n, elements
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
