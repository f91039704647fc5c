package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// formats are the test vocabulary's layouts; all hold the same vocabulary.
var formats = []string{"hf_json", "hf_json_pairs", "hf_slow", "openai"}

func mustLoad(t testing.TB, dir string) *Tokenizer {
	t.Helper()
	tok, err := Load(filepath.Join("testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type refCase struct {
	Text      string  `json:"text"`
	Tokens    []int64 `json:"tokens"`
	IDs16     []int64 `json:"ids_16"`
	Mask16    []int64 `json:"mask_16"`
	IDs77     []int64 `json:"ids_77"`
	Mask77    []int64 `json:"mask_77"`
	Decoded   string  `json:"decoded"`
	Truncated bool    `json:"truncated"`
}

func loadReference(t *testing.T) []refCase {
	data, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []refCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) == 0 {
		t.Fatal("reference.json has no cases")
	}
	return ref.Cases
}

// TestReference compares every format with ids computed by an independent
// implementation (see testdata/gen_reference.mjs).
func TestReference(t *testing.T) {
	cases := loadReference(t)
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			tok := mustLoad(t, format)
			if got := tok.VocabSize(); got != 648 {
				t.Errorf("VocabSize = %d, want 648", got)
			}
			for _, c := range cases {
				if got := tok.Encode(c.Text); !slices.Equal(got, c.Tokens) {
					t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.Tokens)
				}
				for _, n := range []struct {
					n         int
					ids, mask []int64
				}{{16, c.IDs16, c.Mask16}, {77, c.IDs77, c.Mask77}} {
					ids, mask := tok.EncodeRow(c.Text, n.n)
					want := slices.Clone(n.ids)
					for i := range want {
						if n.mask[i] == 0 {
							want[i] = tok.PadID // OpenAI pads with 0
						}
					}
					if !slices.Equal(ids, want) || !slices.Equal(mask, n.mask) {
						t.Errorf("EncodeRow(%q, %d)\n got %v %v\nwant %v %v", c.Text, n.n, ids, mask, want, n.mask)
					}
				}
				if !strings.Contains(c.Text, "<|") {
					if got, want := tok.Decode(c.Tokens), strings.TrimSpace(c.Decoded); got != want {
						t.Errorf("Decode(Encode(%q)) = %q, want %q", c.Text, got, want)
					}
				}
			}
		})
	}
}

func TestKnownSplits(t *testing.T) {
	tok := mustLoad(t, "hf_json")
	tests := []struct {
		text string
		want []string
	}{
		{"a photo of a dog.", []string{"a</w>", "photo</w>", "of</w>", "a</w>", "dog</w>", ".</w>"}},
		{"Dogs!!", []string{"dogs</w>", "!", "!</w>"}},
		{"it's", []string{"it</w>", "'s</w>"}},
		{"2024", []string{"2</w>", "0</w>", "2</w>", "4</w>"}},
		{"red_circle", []string{"red</w>", "_</w>", "circle</w>"}},
		{"café", []string{"ca", "f", "Ã", "©</w>"}},
		{"", nil},
		{"<|endoftext|>", []string{"<|endoftext|>"}},
	}
	for _, tt := range tests {
		var got []string
		for _, id := range tok.Encode(tt.text) {
			got = append(got, tok.Token(id))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Encode(%q) tokens = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	tok := mustLoad(t, "openai")
	for _, s := range []string{"a photo of a dog", "striped pattern with 3 dots", "ünïcödé ☃ text", "x"} {
		if got := tok.Decode(tok.Encode(s)); got != s {
			t.Errorf("Decode(Encode(%q)) = %q", s, got)
		}
		ids, _ := tok.EncodeRow(s, 0)
		if got := tok.Decode(ids); got != s {
			t.Errorf("Decode(EncodeRow(%q)) = %q", s, got)
		}
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		format        string
		pad           int64
		unescape      bool
		start, end    int64
		contextLength int
	}{
		{"openai", 0, true, 646, 647, 77},
		{"hf_json", 647, false, 646, 647, 77},
		{"hf_json_pairs", 647, false, 646, 647, 77},
		{"hf_slow", 647, false, 646, 647, 77},
	}
	for _, tt := range tests {
		tok := mustLoad(t, tt.format)
		if tok.PadID != tt.pad || tok.UnescapeHTML != tt.unescape || tok.StartID != tt.start || tok.EndID != tt.end || tok.ContextLength != tt.contextLength {
			t.Errorf("%s: pad %d unescape %v start %d end %d ctx %d; want %d %v %d %d %d", tt.format,
				tok.PadID, tok.UnescapeHTML, tok.StartID, tok.EndID, tok.ContextLength,
				tt.pad, tt.unescape, tt.start, tt.end, tt.contextLength)
		}
	}
}

func TestHTMLUnescape(t *testing.T) {
	oa := mustLoad(t, "openai")
	hf := mustLoad(t, "hf_json")
	if !slices.Equal(oa.Encode("cats &amp;amp; dogs"), oa.Encode("cats & dogs")) {
		t.Error("OpenAI format: double HTML unescape not applied")
	}
	if slices.Equal(hf.Encode("cats &amp; dogs"), hf.Encode("cats & dogs")) {
		t.Error("HF format: HTML was unescaped, want it kept")
	}
	hf.UnescapeHTML = true
	if !slices.Equal(hf.Encode("cats &amp; dogs"), hf.Encode("cats & dogs")) {
		t.Error("UnescapeHTML=true had no effect")
	}
}

func TestEncodeBatch(t *testing.T) {
	tok := mustLoad(t, "hf_json")
	ids, mask := tok.EncodeBatch([]string{"a dog", "", "a photo of a cat"}, 5)
	want := [][]int64{{646, 320, 529, 647, 647}, {646, 647, 647, 647, 647}, {646, 320, 516, 513, 647}}
	wantMask := [][]int64{{1, 1, 1, 1, 0}, {1, 1, 0, 0, 0}, {1, 1, 1, 1, 1}}
	for i := range want {
		if !slices.Equal(ids[i], want[i]) || !slices.Equal(mask[i], wantMask[i]) {
			t.Errorf("row %d: %v %v, want %v %v", i, ids[i], mask[i], want[i], wantMask[i])
		}
	}
	// Context length below 2 is raised to 2 (start + end).
	ids, mask = tok.EncodeBatch([]string{"a dog"}, 1)
	if !slices.Equal(ids[0], []int64{646, 647}) || !slices.Equal(mask[0], []int64{1, 1}) {
		t.Errorf("contextLen 1: %v %v", ids[0], mask[0])
	}
	ids, _ = tok.EncodeBatch([]string{"a"}, 0)
	if len(ids[0]) != 77 {
		t.Errorf("contextLen 0: len %d, want 77", len(ids[0]))
	}
}

func TestPadFromSidecar(t *testing.T) {
	dir := t.TempDir()
	data, _ := os.ReadFile("testdata/hf_json/tokenizer.json")
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "special_tokens_map.json"), []byte(`{"pad_token": "!"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"model_max_length": 1000000000000000019884624838656}`), 0o644)
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tok.PadID != 0 || tok.ContextLength != 77 {
		t.Errorf("pad %d ctx %d, want 0 77", tok.PadID, tok.ContextLength)
	}
}

// naiveBPE is OpenAI's merge loop, kept as the specification.
func naiveBPE(word []string, ranks map[string]int) []string {
	word = slices.Clone(word)
	for len(word) > 1 {
		best, bestRank := -1, 0
		for i := 0; i+1 < len(word); i++ {
			if r, ok := ranks[mergeKey(word[i], word[i+1])]; ok && (best < 0 || r < bestRank) {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		a, b := word[best], word[best+1]
		var out []string
		for i := 0; i < len(word); i++ {
			if i+1 < len(word) && word[i] == a && word[i+1] == b {
				out = append(out, a+b)
				i++
			} else {
				out = append(out, word[i])
			}
		}
		word = out
	}
	return word
}

func TestMergeMatchesOpenAILoop(t *testing.T) {
	tok := mustLoad(t, "hf_json")
	rng := rand.New(rand.NewPCG(1, 2))
	letters := []rune("aeiouphotdgcsrlnbmy'.")
	for range 3000 {
		n := 1 + rng.IntN(14)
		var units []string
		for range n {
			units = append(units, string(letters[rng.IntN(len(letters))]))
		}
		units[len(units)-1] += EndOfWord
		got := mergeUnits(slices.Clone(units), tok.ranks)
		want := naiveBPE(units, tok.ranks)
		if !slices.Equal(got, want) {
			t.Fatalf("merge %q: got %q, want %q", units, got, want)
		}
	}
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestLoadErrors(t *testing.T) {
	vocab, _ := os.ReadFile("testdata/hf_slow/vocab.json")
	merges, _ := os.ReadFile("testdata/hf_slow/merges.txt")
	tj, _ := os.ReadFile("testdata/hf_json/tokenizer.json")
	tests := []struct {
		name  string
		files map[string][]byte
		want  []string
	}{
		{"empty folder", nil, []string{"no tokenizer files found"}},
		{"vocab only", map[string][]byte{"vocab.json": vocab}, []string{"no merges.txt"}},
		{"merges only", map[string][]byte{"merges.txt": merges}, []string{"no vocab.json"}},
		{"malformed merges line", map[string][]byte{"vocab.json": vocab, "merges.txt": []byte("#version: 0.2\nh o\nx y z\n")},
			[]string{"merges.txt", "malformed merges line 3"}},
		{"merge not in vocab", map[string][]byte{"vocab.json": vocab, "merges.txt": []byte("#version: 0.2\nq z\n")},
			[]string{"merges.txt line 2", `"qz" is not in the vocabulary`}},
		{"vocab not an object", map[string][]byte{"vocab.json": []byte(`[1,2]`), "merges.txt": merges}, []string{"vocab.json", "JSON object"}},
		{"missing byte unit", map[string][]byte{"vocab.json": []byte(`{"a": 0}`), "merges.txt": merges}, []string{"vocab.json", "lacks"}},
		{"bad json", map[string][]byte{"tokenizer.json": []byte(`{"model": `)}, []string{"tokenizer.json", "invalid JSON"}},
		{"wordpiece", map[string][]byte{"tokenizer.json": []byte(`{"model": {"type": "WordPiece"}}`)}, []string{"tokenizer.json", `"WordPiece"`}},
		{"no eow suffix", map[string][]byte{"tokenizer.json": []byte(`{"model": {"type": "BPE", "vocab": {}, "merges": []}}`)}, []string{"end_of_word_suffix is missing"}},
		{"bad merge entry", map[string][]byte{"tokenizer.json": bytes.Replace(tj, []byte(`"merges": [`), []byte(`"merges": [7, `), 1)},
			[]string{"tokenizer.json", "model.merges[0]"}},
		{"bad sidecar", map[string][]byte{"tokenizer.json": tj, "tokenizer_config.json": []byte(`{"pad_token": 5}`)}, []string{"tokenizer_config.json"}},
		{"unknown pad", map[string][]byte{"tokenizer.json": tj, "special_tokens_map.json": []byte(`{"pad_token": "<pad>"}`)}, []string{"pad token \"<pad>\""}},
		{"not gzip", map[string][]byte{OpenAIBPEFile: []byte("plain")}, []string{OpenAIBPEFile, "not a gzip file"}},
		{"openai malformed", map[string][]byte{OpenAIBPEFile: gz("header\nh o\nbad\n")}, []string{OpenAIBPEFile, "malformed merges line 3"}},
		{"openai bad merge", map[string][]byte{OpenAIBPEFile: gz("header\nh o\nxy q\n")}, []string{OpenAIBPEFile, "line 3", `"xy"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error has several lines: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing path: %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	for _, p := range []string{"hf_json/tokenizer.json", "hf_slow/vocab.json", "hf_slow/merges.txt", "openai/" + OpenAIBPEFile} {
		tok, err := Load(filepath.Join("testdata", p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got := tok.Encode("a dog"); !slices.Equal(got, []int64{320, 529}) {
			t.Errorf("%s: Encode = %v", p, got)
		}
	}
}

func TestLower(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ABC", "abc"},
		{"ΣΊΣΥΦΟΣ", "σίσυφος"},
		{"Σ", "σ"},
		{"ΑΣ.", "ας."},
		{"İ", "i\u0307"},
	}
	for _, tt := range tests {
		if got := lower(tt.in); got != tt.want {
			t.Errorf("lower(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzEncode(f *testing.F) {
	tok := mustLoad(f, "hf_json")
	for _, s := range []string{"", "a photo of a dog.", "<|endoftext|>x", "\xff\xfe", "ΣΣ", "'s'''", strings.Repeat("ab", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		for _, id := range ids {
			if id < 0 || id >= int64(tok.VocabSize()) {
				t.Fatalf("id %d out of range", id)
			}
		}
		row, mask := tok.EncodeRow(s, 8)
		if len(row) != 8 || len(mask) != 8 || row[0] != tok.StartID {
			t.Fatalf("bad row %v %v", row, mask)
		}
		_ = tok.Decode(ids)
		_ = tok.Decode([]int64{-1, 1 << 40, 5})
	})
}

// FuzzTokenizerJSON fuzzes tokenizer.json parsing. Whole files are large
// (the 512 byte units alone), which makes the fuzzer's minimisation slow,
// so the fuzzed parts are the top-level fields and the merges, around a
// fixed valid vocabulary; raw seeds cover the JSON error paths.
func FuzzTokenizerJSON(f *testing.F) {
	data, err := os.ReadFile("testdata/hf_json/tokenizer.json")
	if err != nil {
		f.Fatal(err)
	}
	var doc struct {
		Model struct {
			Vocab  json.RawMessage `json:"vocab"`
			Merges json.RawMessage `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`"added_tokens": [{"id": 646, "content": "<|startoftext|>"}, {"id": 647, "content": "<|endoftext|>"}],`), []byte(doc.Model.Merges))
	f.Add([]byte(`"padding": {"pad_id": 3}, "truncation": {"max_length": 9}, "post_processor": {"cls": ["a", 1], "sep": ["b", 2]},`), []byte(`[["h", "o"], "ho t", 5]`))
	f.Add([]byte(`"added_tokens": [{"id": 99999999999, "content": "x"}],`), []byte(`[]`))
	f.Add([]byte(`}`), []byte(`{`))
	f.Fuzz(func(t *testing.T, head, merges []byte) {
		var b bytes.Buffer
		b.WriteString("{")
		b.Write(head)
		b.WriteString(` "model": {"type": "BPE", "end_of_word_suffix": "</w>", "vocab": `)
		b.Write(doc.Model.Vocab)
		b.WriteString(`, "merges": `)
		b.Write(merges)
		b.WriteString("}}")
		for _, in := range [][]byte{b.Bytes(), head} {
			tok, err := parseTokenizerJSON("tokenizer.json", in, specialConfig{})
			if err == nil {
				tok.EncodeBatch([]string{"a photo of a dog"}, 0)
			} else if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has several lines: %v", err)
			}
		}
	})
}

func FuzzVocabMerges(f *testing.F) {
	vocab, _ := os.ReadFile("testdata/hf_slow/vocab.json")
	merges, _ := os.ReadFile("testdata/hf_slow/merges.txt")
	f.Add(vocab, merges)
	f.Add([]byte(`{"a":0}`), []byte("a a\n"))
	f.Fuzz(func(t *testing.T, v, m []byte) {
		tok, err := parseVocabMerges("vocab.json", v, "merges.txt", m, specialConfig{})
		if err == nil {
			tok.EncodeBatch([]string{"a photo of a dog"}, 0)
		}
	})
}

func FuzzOpenAIBPE(f *testing.F) {
	data, _ := os.ReadFile("testdata/openai/" + OpenAIBPEFile)
	f.Add(data)
	f.Add(gz("h\nh o\n"))
	f.Add([]byte("junk"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := parseOpenAIBPE(OpenAIBPEFile, b)
		if err == nil {
			tok.EncodeBatch([]string{"a photo of a dog"}, 0)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	tok := mustLoad(b, "openai")
	text := strings.Repeat("A blurry photo of the dog's ball, 3.14 café ΣΑΣ <|endoftext|> xxxxxxxxxxxxxxxxxxxxxxxx ", 200)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.cache = map[string][]int64{}
		tok.Encode(text)
	}
}

func TestEncodeLongInputs(t *testing.T) {
	tok := mustLoad(t, "hf_json")
	for _, s := range []string{
		strings.Repeat("a", 1<<20),
		strings.Repeat("<|endoftext|>", 1<<15),
		strings.Repeat("'Σ", 1<<15),
		strings.Repeat("\u0301", 1<<16) + "Σ",
	} {
		ids := tok.Encode(s)
		if len(ids) == 0 {
			t.Errorf("no ids for a %d-byte input", len(s))
		}
	}
}
