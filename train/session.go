package train

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/rewrite/classsel"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// feedsFor picks from all the inputs the session has.
func feedsFor(s *runtime.Session, all map[string]*tensorio.Tensor) map[string]*tensorio.Tensor {
	out := map[string]*tensorio.Tensor{}
	for _, n := range s.InputNames() {
		if t := all[n]; t != nil {
			out[n] = t
		}
	}
	return out
}

// Scorer runs a CLIP model (a plain export, or a bundle's eval.onnx with given parameters) as
// two parts: the text tower to normalised text features, and the image tower to normalised
// image features, so that the class prompts go through the text tower once.
type Scorer struct {
	text, image       *runtime.Session
	textOut, imageOut string
	// defaults are the initial values of the parameter inputs.
	defaults map[string]*tensorio.Tensor
	// TextIDs and TextMask name the text inputs ("" when absent); Image names the image input.
	TextIDs, TextMask, Image string
	// LogitScale is exp(logit_scale) of the model, for reporting logits.
	LogitScale float64
	// VocabRows is the number of rows of the token embedding (0 when unknown).
	VocabRows int
	// ImageSize is the image input's side in pixels (0 when not fixed by the model).
	ImageSize int
	// ContextLength is the text context length.
	ContextLength int
}

// OpenScorer loads a CLIP model and opens its two towers on ONNX Runtime.
func OpenScorer(path string, opts *runtime.Options) (*Scorer, error) {
	m, err := onnxio.Load(path)
	if err != nil {
		return nil, err
	}
	st, err := clip.Discover(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Text == nil || st.Vision == nil || st.Head.TextEmbeds == "" || st.Head.ImageEmbeds == "" {
		return nil, fmt.Errorf("%s: the model lacks a text tower, an image tower or their normalised embeddings; give a combined CLIP export", path)
	}
	s := &Scorer{textOut: st.Head.TextEmbeds, imageOut: st.Head.ImageEmbeds, ContextLength: st.Text.Positions}
	if s.ContextLength == 0 {
		s.ContextLength = st.Text.SeqLen
	}
	s.LogitScale = math.Exp(st.Head.LogitScale.Value)
	if !st.Head.LogitScale.Exp {
		s.LogitScale = st.Head.LogitScale.Value
	}
	for _, in := range st.Text.Inputs {
		v := m.Graph.Value(in)
		switch {
		case in == "attention_mask":
			s.TextMask = in
		case s.TextIDs == "" && v != nil && v.Type.Elem == graph.Int64:
			s.TextIDs = in
		}
	}
	if len(st.Vision.Inputs) > 0 {
		s.Image = st.Vision.Inputs[0]
		if v := m.Graph.Value(s.Image); v != nil && len(v.Type.Shape) == 4 && v.Type.Shape[2].Known() {
			s.ImageSize = int(v.Type.Shape[2].Value)
		}
	}
	for _, p := range st.Params {
		if p.Tower != clip.Text || p.Role != clip.RoleEmbedding || !strings.Contains(p.Canonical, "token_embedding") {
			continue
		}
		if v := m.Graph.Value(p.Initializer); v != nil && v.Const != nil && len(v.Const.Dims) == 2 {
			s.VocabRows = int(v.Const.Dims[0])
			if p.Transposed {
				s.VocabRows = int(v.Const.Dims[1])
			}
		}
	}
	// Parameters that are inputs backed by an initializer (a bundle's eval.onnx) become plain
	// inputs, fed with their initial values unless trained ones are given.
	s.defaults = map[string]*tensorio.Tensor{}
	for _, v := range append([]*graph.Value(nil), m.Graph.Inputs...) {
		if v.Const == nil {
			continue
		}
		raw, err := v.Const.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%s: initializer %s: %w", path, v.Name, err)
		}
		t, err := tensorio.FromBytes(tensorio.DType(v.Const.DType), v.Const.Dims, raw)
		if err != nil {
			return nil, fmt.Errorf("%s: initializer %s: %w", path, v.Name, err)
		}
		if _, err := m.Graph.InitializerToInput(v); err != nil {
			return nil, err
		}
		s.defaults[v.Name] = t
	}
	name := filepath.Base(path)
	if s.text, err = bundle.OpenPart(m, name+" (text tower)", []string{s.textOut}, opts); err != nil {
		return nil, err
	}
	if s.image, err = bundle.OpenPart(m, name+" (image tower)", []string{s.imageOut}, opts); err != nil {
		s.text.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the sessions.
func (s *Scorer) Close() {
	if s.text != nil {
		s.text.Close()
	}
	if s.image != nil {
		s.image.Close()
	}
}

// TextFeatures returns the normalised text features [rows, embed] of tokenised prompts; params
// (may be nil) override initializers that are inputs of the model.
func (s *Scorer) TextFeatures(in TextInputs, params map[string]*tensorio.Tensor) (*tensorio.Tensor, error) {
	all, err := s.feeds(params)
	if err != nil {
		return nil, err
	}
	if s.TextIDs != "" {
		all[s.TextIDs] = in.IDs
	}
	if s.TextMask != "" {
		all[s.TextMask] = in.Mask
	}
	res, err := s.text.Run(feedsFor(s.text, all))
	if err != nil {
		return nil, err
	}
	return classsel.NormalizeRows(res[s.textOut])
}

// ImageFeatures returns the normalised image features [n, embed] of preprocessed images.
func (s *Scorer) ImageFeatures(pixels *tensorio.Tensor, params map[string]*tensorio.Tensor) (*tensorio.Tensor, error) {
	all, err := s.feeds(params)
	if err != nil {
		return nil, err
	}
	all[s.Image] = pixels
	res, err := s.image.Run(feedsFor(s.image, all))
	if err != nil {
		return nil, err
	}
	return classsel.NormalizeRows(res[s.imageOut])
}

// feeds returns the parameter inputs: the given values (converted to the input's element type)
// over the defaults.
func (s *Scorer) feeds(params map[string]*tensorio.Tensor) (map[string]*tensorio.Tensor, error) {
	all := map[string]*tensorio.Tensor{}
	for k, v := range s.defaults {
		all[k] = v
	}
	for k, v := range params {
		d := s.defaults[k]
		if d == nil {
			return nil, fmt.Errorf("the model has no parameter input %s", k)
		}
		if v.DType != d.DType {
			var err error
			switch d.DType {
			case tensorio.Float16:
				v, err = tensorio.ToFloat16(v)
			case tensorio.Float32:
				v, err = tensorio.ToFloat32(v)
			default:
				err = fmt.Errorf("parameter input %s is %s; only float32 and float16 are fed", k, d.DType)
			}
			if err != nil {
				return nil, err
			}
		}
		all[k] = v
	}
	return all, nil
}

// ClassFeatures returns the zero-shot classifier of the prompts (CSkip's prototypes): per
// class, the mean over the templates of the normalised text features, renormalised
// (classsel.Prototypes).
func (s *Scorer) ClassFeatures(p *Prompts, params map[string]*tensorio.Tensor) (*tensorio.Tensor, error) {
	var per []*tensorio.Tensor
	for _, ti := range p.ByTemplate {
		f, err := s.TextFeatures(ti, params)
		if err != nil {
			return nil, err
		}
		per = append(per, f)
	}
	return classsel.Prototypes(per)
}

// predict returns, per image, the class with the largest cosine similarity.
func predict(images, classes *tensorio.Tensor) []int {
	im, cl := images.Float32s(), classes.Float32s()
	d := int(images.Shape[1])
	nc := int(classes.Shape[0])
	out := make([]int, images.Shape[0])
	for i := range out {
		row := im[i*d : (i+1)*d]
		best, bi := math.Inf(-1), 0
		for c := 0; c < nc; c++ {
			var s float64
			for k, v := range cl[c*d : (c+1)*d] {
				s += float64(v) * float64(row[k])
			}
			if s > best {
				best, bi = s, c
			}
		}
		out[i] = bi
	}
	return out
}
