package synth

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/skipgraph/skipgraph/internal/atomicfile"
)

// byteUnits is the byte-level BPE alphabet (GPT-2's bytes_to_unicode): printable Latin-1 bytes
// stand for themselves, the others for code points from 256 up, in byte order.
func byteUnits() []string {
	var units [256]string
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			units[b] = string(rune(b))
		} else {
			units[b] = string(rune(256 + n))
			n++
		}
	}
	return units[:]
}

// WriteTokenizer writes a small CLIP byte-level BPE tokenizer (Hugging Face tokenizer.json)
// into dir: the 512 byte units, merges that make each of words one token, and the start and
// end tokens, the end token last (id vocab-1, as CLIP vocabularies have it). It returns the
// vocabulary size, which a model using the tokenizer must have as its token embedding rows.
func WriteTokenizer(dir string, words []string) (int, error) {
	return WriteTokenizerSize(dir, words, 0)
}

// WriteTokenizerSize is WriteTokenizer with a vocabulary padded to size tokens (unused filler
// tokens before the start and end tokens), e.g. 49408 to fit a model of CLIP's vocabulary; 0
// leaves it unpadded.
func WriteTokenizerSize(dir string, words []string, size int) (int, error) {
	units := byteUnits()
	vocab := map[string]int{}
	add := func(tok string) {
		if _, ok := vocab[tok]; !ok {
			vocab[tok] = len(vocab)
		}
	}
	for _, u := range units {
		add(u)
	}
	for _, u := range units {
		add(u + "</w>")
	}
	var merges []string
	seen := map[string]bool{}
	for _, w := range words {
		w = strings.ToLower(w)
		var parts []string
		for _, b := range []byte(w) {
			parts = append(parts, units[b])
		}
		if len(parts) < 2 {
			continue
		}
		parts[len(parts)-1] += "</w>"
		acc := parts[0]
		for _, p := range parts[1:] {
			m := acc + " " + p
			if !seen[m] {
				seen[m] = true
				merges = append(merges, m)
			}
			acc += p
			add(acc)
		}
	}
	for i := 0; len(vocab) < size-2; i++ {
		add(fmt.Sprintf("<|unused_%d|>", i))
	}
	add("<|startoftext|>")
	add("<|endoftext|>")
	n := len(vocab)
	tj := map[string]any{
		"version":    "1.0",
		"truncation": nil,
		"padding":    nil,
		"added_tokens": []map[string]any{
			{"id": n - 2, "content": "<|startoftext|>", "special": true},
			{"id": n - 1, "content": "<|endoftext|>", "special": true},
		},
		"post_processor": map[string]any{"type": "RobertaProcessing", "cls": []any{"<|startoftext|>", n - 2}, "sep": []any{"<|endoftext|>", n - 1}},
		"model": map[string]any{
			"type": "BPE", "unk_token": "<|endoftext|>", "end_of_word_suffix": "</w>",
			"vocab": vocab, "merges": merges,
		},
	}
	b, err := json.MarshalIndent(tj, "", " ")
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	return n, atomicfile.Write(filepath.Join(dir, "tokenizer.json"), append(b, '\n'))
}

// WriteDemo writes a tiny random CLIP export (Hugging Face layout, 32x32 images, 4 layers of width 64
// per tower, context 16) with a tokenizer whose vocabulary makes each of words one token, into dir as model.onnx
// and tokenizer.json. It returns the model's path.
func WriteDemo(dir string, words []string, seed int64) (string, error) {
	n, err := WriteTokenizer(dir, words)
	if err != nil {
		return "", err
	}
	d := Sizes["tiny"]
	d.Vocab = n
	d.Context = 16
	d.VisionWidth, d.VisionLayers, d.VisionHeads, d.VisionMLP = 64, 4, 4, 128
	d.TextWidth, d.TextLayers, d.TextHeads, d.TextMLP = 64, 4, 4, 128
	d.Embed = 32
	if _, err := Write(Config{Style: StyleHF, Dims: &d, Opset: 14, Seed: seed}, dir); err != nil {
		return "", err
	}
	return filepath.Join(dir, "model.onnx"), nil
}

// PromptWords returns the words of class names and templates (placeholders removed), for
// WriteTokenizer.
func PromptWords(classes, templates []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range append(append([]string{}, classes...), templates...) {
		s = strings.ReplaceAll(s, "{}", " ")
		for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
		}) {
			if !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	return out
}
