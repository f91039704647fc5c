package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/internal/testenv"
)

// trainCorpus is the text the small test vocabulary is learned from.
const trainCorpus = `a photo of a dog. a photo of a cat. a photo of the red circle.
a photo of a green square. a blurry photo of a blue triangle. this is a photo of stripes.
an image of a bird, a car, a plane and a ship. the dog's ball. it's a cat's toy.
photos of dogs and cats; images of birds! numbers 2024 and 3.14 are here.
a close-up photo of a large striped pattern. a small photo of the horizontal stripes.
a bright photo of a vertical stripe. a dark photo of the dotted texture. caf\u00e9 na\u00efve r\u00e9sum\u00e9.
photo photo photo image image image dog dog cat cat the the of of a a`

// testMerges is how many merges the small vocabulary keeps.
const testMerges = 300

// trainMerges learns BPE merges from corpus the classic way: count adjacent
// pairs over the pre-split words (with "</w>" on the last unit), merge the
// most frequent pair (ties broken by the pair's text), repeat.
func trainMerges(corpus string, n int) [][2]string {
	enc, _ := byteUnits()
	counts := map[string]int{}
	for _, w := range pretokenPattern.FindAllString(clean(corpus), -1) {
		counts[w]++
	}
	type word struct {
		units []string
		n     int
	}
	var words []word
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var u []string
		for i := 0; i < len(k); i++ {
			u = append(u, string(enc[k[i]]))
		}
		u[len(u)-1] += EndOfWord
		words = append(words, word{u, counts[k]})
	}
	known := map[string]bool{}
	for b := range 256 {
		known[string(enc[b])] = true
		known[string(enc[b])+EndOfWord] = true
	}
	var merges [][2]string
	for len(merges) < n {
		pairs := map[[2]string]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w.units); i++ {
				pairs[[2]string{w.units[i], w.units[i+1]}] += w.n
			}
		}
		var best [2]string
		bestN := 0
		for p, c := range pairs {
			if known[p[0]+p[1]] {
				continue
			}
			if c > bestN || (c == bestN && p[0]+" "+p[1] < best[0]+" "+best[1]) {
				best, bestN = p, c
			}
		}
		if bestN < 1 {
			break
		}
		merges = append(merges, best)
		known[best[0]+best[1]] = true
		for wi := range words {
			u := words[wi].units
			var out []string
			for i := 0; i < len(u); i++ {
				if i+1 < len(u) && u[i] == best[0] && u[i+1] == best[1] {
					out = append(out, u[i]+u[i+1])
					i++
				} else {
					out = append(out, u[i])
				}
			}
			words[wi].units = out
		}
	}
	return merges
}

// openAIVocab builds the vocabulary in OpenAI's order.
func openAIVocab(merges [][2]string) []string {
	enc, order := byteUnits()
	var v []string
	for _, b := range order {
		v = append(v, string(enc[b]))
	}
	for _, b := range order {
		v = append(v, string(enc[b])+EndOfWord)
	}
	for _, m := range merges {
		v = append(v, m[0]+m[1])
	}
	return append(v, StartOfText, EndOfText)
}

// orderedJSON writes a token->id object in id order, as exports do.
func orderedJSON(vocab []string) []byte {
	var b bytes.Buffer
	b.WriteString("{")
	for i, tok := range vocab {
		if i > 0 {
			b.WriteString(",")
		}
		k, _ := json.Marshal(tok)
		fmt.Fprintf(&b, "%s:%d", k, i)
	}
	b.WriteString("}")
	return b.Bytes()
}

// testFiles returns the small vocabulary in every supported layout.
func testFiles(t *testing.T) map[string][]byte {
	merges := trainMerges(trainCorpus, testMerges)
	vocab := openAIVocab(merges)
	eot := len(vocab) - 1
	sot := len(vocab) - 2
	files := map[string][]byte{}

	// OpenAI: header, merges, gzip; no trailing newline (as the original).
	var lines []string
	lines = append(lines, "\"bpe_simple_vocab_16e6.txt#version: 0.2")
	for _, m := range merges {
		lines = append(lines, m[0]+" "+m[1])
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Join(lines, "\n")))
	zw.Close()
	files["openai/"+OpenAIBPEFile] = gz.Bytes()

	// Hugging Face slow files.
	files["hf_slow/"+HFVocabFile] = orderedJSON(vocab)
	mtxt := "#version: 0.2\n"
	for _, m := range merges {
		mtxt += m[0] + " " + m[1] + "\n"
	}
	files["hf_slow/"+HFMergesFile] = []byte(mtxt)
	files["hf_slow/"+HFSpecialTokensFile] = []byte(`{"bos_token":{"content":"<|startoftext|>","lstrip":false,"normalized":true,"rstrip":false,"single_word":false},"eos_token":{"content":"<|endoftext|>","lstrip":false,"normalized":true,"rstrip":false,"single_word":false},"pad_token":"<|endoftext|>","unk_token":{"content":"<|endoftext|>","lstrip":false,"normalized":true,"rstrip":false,"single_word":false}}` + "\n")
	cfg := `{"tokenizer_class":"CLIPTokenizer","bos_token":"<|startoftext|>","eos_token":"<|endoftext|>","pad_token":"<|endoftext|>","unk_token":"<|endoftext|>","model_max_length":77,"do_lower_case":true,"clean_up_tokenization_spaces":false}` + "\n"
	files["hf_slow/"+HFConfigFile] = []byte(cfg)

	// Hugging Face fast tokenizer.json, merges as strings and as pairs.
	tj := func(pairs bool) []byte {
		var mj []byte
		if pairs {
			mj, _ = json.Marshal(merges)
		} else {
			var s []string
			for _, m := range merges {
				s = append(s, m[0]+" "+m[1])
			}
			mj, _ = json.Marshal(s)
		}
		return []byte(fmt.Sprintf(`{
  "version": "1.0",
  "truncation": null,
  "padding": null,
  "added_tokens": [
    {"id": %d, "content": "<|startoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true},
    {"id": %d, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "NFC"},
    {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
    {"type": "Lowercase"}
  ]},
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"}, "behavior": "Removed", "invert": true},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
  ]},
  "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", %d], "cls": ["<|startoftext|>", %d], "trim_offsets": false, "add_prefix_space": false},
  "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
  "model": {"type": "BPE", "dropout": null, "unk_token": "<|endoftext|>", "continuing_subword_prefix": "", "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
    "vocab": %s,
    "merges": %s}
}
`, sot, eot, eot, sot, orderedJSON(vocab), mj))
	}
	files["hf_json/"+HFTokenizerFile] = tj(false)
	files["hf_json/"+HFConfigFile] = []byte(cfg)
	files["hf_json_pairs/"+HFTokenizerFile] = tj(true)
	return files
}

// TestTestdataVocab regenerates the small vocabularies with -update and
// otherwise checks that testdata matches the generator.
func TestTestdataVocab(t *testing.T) {
	for name, want := range testFiles(t) {
		testenv.Golden(t, filepath.Join("testdata", filepath.FromSlash(name)), want)
	}
}
