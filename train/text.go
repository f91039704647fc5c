package train

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/data/tokenizer"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/tensorio"
)

// TextInputs are the tokenised class prompts of one template: one row per class.
type TextInputs struct {
	// IDs and Mask are int64 [classes, context].
	IDs, Mask *tensorio.Tensor
}

// Prompts are the tokenised class prompts of every template.
type Prompts struct {
	// Classes are the class names, by label.
	Classes []string
	// Templates are the prompt templates; the first one is the training text input.
	Templates []string
	// ByTemplate holds the tokenised prompts of each template, in the order of Templates.
	ByTemplate []TextInputs
}

// First returns the first template's prompts (the text input of training).
func (p *Prompts) First() TextInputs { return p.ByTemplate[0] }

// TokenizePrompts fills every template with every class name and tokenises the prompts into
// rows of contextLen ids.
func TokenizePrompts(tok *tokenizer.Tokenizer, classes, templates []string, contextLen int) (*Prompts, error) {
	if len(templates) == 0 {
		templates = []string{data.DefaultTemplate}
	}
	if len(classes) == 0 {
		return nil, errs.Input("no classes to make prompts for")
	}
	if contextLen < 1 || contextLen > bundle.MaxContextLength {
		return nil, errs.Input("text context length %d: want 1 to %d", contextLen, bundle.MaxContextLength)
	}
	p := &Prompts{Classes: classes, Templates: templates}
	all := data.Prompts(templates, classes)
	for ti := range templates {
		texts := make([]string, len(classes))
		for c := range classes {
			texts[c] = all[c][ti]
		}
		ids, mask := tok.EncodeBatch(texts, contextLen)
		n := int64(len(texts))
		ctx := int64(len(ids[0]))
		flatIDs := make([]int64, 0, n*ctx)
		flatMask := make([]int64, 0, n*ctx)
		for i := range ids {
			flatIDs = append(flatIDs, ids[i]...)
			flatMask = append(flatMask, mask[i]...)
		}
		it, err := tensorio.FromSlice([]int64{n, ctx}, flatIDs)
		if err != nil {
			return nil, err
		}
		mt, err := tensorio.FromSlice([]int64{n, ctx}, flatMask)
		if err != nil {
			return nil, err
		}
		p.ByTemplate = append(p.ByTemplate, TextInputs{IDs: it, Mask: mt})
	}
	return p, nil
}

// FindTokenizer loads the tokenizer at path, or, when path is empty, looks for one in each of
// the folders given (in order).
func FindTokenizer(path string, near ...string) (*tokenizer.Tokenizer, error) {
	if path != "" {
		t, err := tokenizer.Load(path)
		if err != nil {
			return nil, errs.AsInput(err)
		}
		return t, nil
	}
	var tried []string
	for _, dir := range near {
		if dir == "" {
			continue
		}
		for _, name := range []string{tokenizer.HFTokenizerFile, tokenizer.HFVocabFile, tokenizer.OpenAIBPEFile} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				t, err := tokenizer.Load(dir)
				if err != nil {
					return nil, errs.AsInput(err)
				}
				return t, nil
			}
		}
		tried = append(tried, dir)
	}
	return nil, errs.Input("no tokenizer found (looked in %s); pass --tokenizer with the folder holding tokenizer.json, vocab.json + merges.txt, or bpe_simple_vocab_16e6.txt.gz", strings.Join(tried, ", "))
}

// TokenEmbeddingRows returns the number of rows of the text token embedding in a bundle's
// parameters, or 0 when the manifest does not show it.
func TokenEmbeddingRows(man *bundle.Manifest) int {
	for _, p := range man.Parameters {
		if p.Tower != "text" || p.Role != "embedding" || len(p.Shape) != 2 {
			continue
		}
		for _, c := range p.Canonical {
			if strings.Contains(c, "token_embedding") {
				if p.Transposed {
					return int(p.Shape[1])
				}
				return int(p.Shape[0])
			}
		}
	}
	return 0
}

// CheckVocab reports a tokenizer whose vocabulary does not match the model's token embedding.
func CheckVocab(tok *tokenizer.Tokenizer, rows int, model string) error {
	if rows <= 0 {
		return nil
	}
	if tok.VocabSize() != rows {
		return errs.Input("%s: the tokenizer has %d tokens but the model's token embedding has %d rows; use the tokenizer of the same export (--tokenizer)", tok.Source, tok.VocabSize(), rows)
	}
	return nil
}

// bundleNear lists where a bundle's tokenizer may lie: the bundle, the source model's folder
// and its parent.
func bundleNear(dir string, man *bundle.Manifest) []string {
	out := []string{dir}
	if len(man.Source.Files) > 0 {
		src := filepath.Dir(man.Source.Files[0].Path)
		out = append(out, src, filepath.Dir(src))
	}
	return out
}

// loadData reads the data set's splits (from its folders or its split file) with its class
// subset; a folder without train/ is used whole for training (src's fractions divide it when
// positive).
func loadData(src data.Source) (*data.Splits, error) {
	dir := src.Dir
	if st, err := os.Stat(dir); err != nil {
		return nil, errs.Input("data folder %s: %w", dir, safeio.PathCause(err))
	} else if !st.IsDir() {
		return nil, errs.Input("data folder %s: not a folder; want one sub-folder of images per class", dir)
	}
	s, err := src.Load()
	if err != nil {
		return nil, errs.AsInput(err)
	}
	return s, nil
}

// verify decodes every image of the data sets; the error names the file.
func verify(sets ...*data.Dataset) error {
	for _, d := range sets {
		if d == nil {
			continue
		}
		if err := d.Verify(); err != nil {
			return errs.AsInput(err)
		}
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}
