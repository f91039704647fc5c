package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/safeio"
)

// File names that Load looks for.
const (
	HFTokenizerFile     = "tokenizer.json"
	HFVocabFile         = "vocab.json"
	HFMergesFile        = "merges.txt"
	HFConfigFile        = "tokenizer_config.json"
	HFSpecialTokensFile = "special_tokens_map.json"
	OpenAIBPEFile       = "bpe_simple_vocab_16e6.txt.gz"
)

// openAIMergeLimit is the line bound OpenAI's tokenizer slices merges with:
// lines 1 .. 49152-256-2 of the file (48894 merges).
const openAIMergeLimit = 49152 - 256 - 2 + 1

// maxFileBytes bounds what the loaders read (and decompress).
const maxFileBytes = 256 << 20

// Load reads a CLIP tokenizer from a folder (or from one of the files
// below given directly). In order of preference it uses tokenizer.json,
// vocab.json with merges.txt, or OpenAI's bpe_simple_vocab_16e6.txt.gz (any
// bpe_*.txt.gz). tokenizer_config.json and special_tokens_map.json, when
// present beside the Hugging Face files, give the special tokens, the pad
// token and the context length.
func Load(path string) (*Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; give a folder holding %s, %s + %s, or %s", path, safeio.PathCause(err), HFTokenizerFile, HFVocabFile, HFMergesFile, OpenAIBPEFile)
	}
	if !st.IsDir() {
		return loadFile(path)
	}
	dir := path
	exists := func(name string) bool {
		s, err := os.Stat(filepath.Join(dir, name))
		return err == nil && !s.IsDir()
	}
	switch {
	case exists(HFTokenizerFile):
		return LoadHFTokenizerJSON(filepath.Join(dir, HFTokenizerFile))
	case exists(HFVocabFile) && exists(HFMergesFile):
		return LoadHFVocabMerges(filepath.Join(dir, HFVocabFile), filepath.Join(dir, HFMergesFile))
	case exists(HFVocabFile):
		return nil, fmt.Errorf("%s: found %s but no %s beside it; add the merges file of the same export", dir, HFVocabFile, HFMergesFile)
	case exists(HFMergesFile):
		return nil, fmt.Errorf("%s: found %s but no %s beside it; add the vocabulary file of the same export", dir, HFMergesFile, HFVocabFile)
	case exists(OpenAIBPEFile):
		return LoadOpenAIBPE(filepath.Join(dir, OpenAIBPEFile))
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "bpe_*.txt.gz")); len(m) > 0 {
		return LoadOpenAIBPE(m[0])
	}
	return nil, fmt.Errorf("%s: no tokenizer files found; want %s, %s + %s, or %s", dir, HFTokenizerFile, HFVocabFile, HFMergesFile, OpenAIBPEFile)
}

func loadFile(path string) (*Tokenizer, error) {
	base := filepath.Base(path)
	dir := filepath.Dir(path)
	switch {
	case base == HFVocabFile:
		return LoadHFVocabMerges(path, filepath.Join(dir, HFMergesFile))
	case base == HFMergesFile:
		return LoadHFVocabMerges(filepath.Join(dir, HFVocabFile), path)
	case strings.HasSuffix(base, ".gz"):
		return LoadOpenAIBPE(path)
	case strings.HasSuffix(base, ".json"):
		return LoadHFTokenizerJSON(path)
	}
	return nil, fmt.Errorf("%s: unknown tokenizer file; want %s, %s, %s or %s", path, HFTokenizerFile, HFVocabFile, HFMergesFile, OpenAIBPEFile)
}

func readFile(path string) ([]byte, error) {
	f, err := safeio.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, safeio.PathCause(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB; not a tokenizer file", path, maxFileBytes>>20)
	}
	return data, nil
}

// specialConfig is what tokenizer_config.json / special_tokens_map.json (or
// a tokenizer.json) say about special tokens.
type specialConfig struct {
	bos, eos, pad string
	padID         *int64
	maxLen        int
	// files are the configuration files read.
	files []string
}

// tokenField decodes a special-token entry: a string or {"content": ...}.
type tokenField string

func (f *tokenField) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = tokenField(s)
		return nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
			return nil
		}
		return errors.New(`want a string or {"content": "..."}`)
	}
	*f = tokenField(obj.Content)
	return nil
}

type hfConfigJSON struct {
	BOS            tokenField `json:"bos_token"`
	EOS            tokenField `json:"eos_token"`
	Pad            tokenField `json:"pad_token"`
	ModelMaxLength *float64   `json:"model_max_length"`
}

// readSidecars merges tokenizer_config.json and special_tokens_map.json
// found in dir into cfg (special_tokens_map.json wins).
func readSidecars(dir string, cfg *specialConfig) error {
	for _, name := range []string{HFConfigFile, HFSpecialTokensFile} {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		data, err := readFile(path)
		if err != nil {
			return err
		}
		if err := parseSidecar(path, data, cfg); err != nil {
			return err
		}
		cfg.files = append(cfg.files, path)
	}
	return nil
}

func parseSidecar(path string, data []byte, cfg *specialConfig) error {
	var c hfConfigJSON
	if err := json.Unmarshal(data, &c); err != nil {
		return errs.Wrap(err, "%s: %s; fix the JSON or remove the file", path, jsonErr(err))
	}
	if c.BOS != "" {
		cfg.bos = string(c.BOS)
	}
	if c.EOS != "" {
		cfg.eos = string(c.EOS)
	}
	if c.Pad != "" {
		cfg.pad = string(c.Pad)
	}
	// Hugging Face writes a huge sentinel when no length is set.
	if c.ModelMaxLength != nil && *c.ModelMaxLength >= 2 && *c.ModelMaxLength <= 1<<20 {
		cfg.maxLen = int(*c.ModelMaxLength)
	}
	return nil
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q: want %v, got JSON %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

// finish resolves the special tokens, pad and context length of t.
func (t *Tokenizer) finish(cfg specialConfig, defaultPad func() int64) error {
	resolve := func(what, tok, def string) (int64, error) {
		if tok == "" {
			tok = def
		}
		if id, ok := t.special[tok]; ok {
			return id, nil
		}
		if id, ok := t.vocab[tok]; ok {
			return id, nil
		}
		return 0, fmt.Errorf("%s: %s %q is not in the vocabulary; fix the tokenizer files", t.Source, what, tok)
	}
	var err error
	if t.StartID, err = resolve("start token", cfg.bos, StartOfText); err != nil {
		return err
	}
	if t.EndID, err = resolve("end token", cfg.eos, EndOfText); err != nil {
		return err
	}
	switch {
	case cfg.pad != "":
		if t.PadID, err = resolve("pad token", cfg.pad, ""); err != nil {
			return err
		}
	case cfg.padID != nil:
		if *cfg.padID < 0 || *cfg.padID >= int64(t.VocabSize()) {
			return fmt.Errorf("%s: pad id %d is outside the vocabulary (size %d)", t.Source, *cfg.padID, t.VocabSize())
		}
		t.PadID = *cfg.padID
	default:
		t.PadID = defaultPad()
	}
	if cfg.maxLen > 0 {
		t.ContextLength = cfg.maxLen
	}
	t.Config = cfg.files
	for _, id := range []int64{t.StartID, t.EndID} {
		t.isSpec[id] = true
	}
	return nil
}

// LoadHFVocabMerges reads a Hugging Face slow-tokenizer pair vocab.json and
// merges.txt, with tokenizer_config.json and special_tokens_map.json from
// the vocabulary's folder when present.
func LoadHFVocabMerges(vocabPath, mergesPath string) (*Tokenizer, error) {
	vdata, err := readFile(vocabPath)
	if err != nil {
		return nil, err
	}
	mdata, err := readFile(mergesPath)
	if err != nil {
		return nil, err
	}
	var cfg specialConfig
	if err := readSidecars(filepath.Dir(vocabPath), &cfg); err != nil {
		return nil, err
	}
	return parseVocabMerges(vocabPath, vdata, mergesPath, mdata, cfg)
}

func parseVocabMerges(vocabPath string, vdata []byte, mergesPath string, mdata []byte, cfg specialConfig) (*Tokenizer, error) {
	var vocab map[string]int64
	if err := json.Unmarshal(vdata, &vocab); err != nil {
		return nil, errs.Wrap(err, "%s: %s; want a JSON object of token to id", vocabPath, jsonErr(err))
	}
	if vocab == nil {
		return nil, fmt.Errorf("%s: want a JSON object of token to id, got null", vocabPath)
	}
	merges, lines, err := parseMergeLines(mergesPath, string(mdata), 0, true)
	if err != nil {
		return nil, err
	}
	specials := map[string]int64{}
	for _, tok := range []string{cfg.bos, cfg.eos, cfg.pad, StartOfText, EndOfText} {
		if id, ok := vocab[tok]; ok && strings.HasPrefix(tok, "<|") {
			specials[tok] = id
		}
	}
	t, err := build(vocabPath, vocab, merges, func(i int) string {
		return fmt.Sprintf("%s line %d", mergesPath, lines[i])
	}, specials)
	if err != nil {
		return nil, err
	}
	if err := t.finish(cfg, func() int64 { return t.EndID }); err != nil {
		return nil, err
	}
	return t, nil
}

// parseMergeLines reads "a b" lines. With optionalHeader the first line is
// skipped when it starts with "#version", otherwise it is always skipped
// (OpenAI's file). Blank lines are skipped; limit > 0 stops before that line
// index. It returns the merges and their 1-based line numbers.
func parseMergeLines(path, text string, limit int, optionalHeader bool) ([][2]string, []int, error) {
	all := strings.Split(text, "\n")
	start := 0
	if optionalHeader && len(all) > 0 && strings.HasPrefix(all[0], "#version") {
		start = 1
	}
	if !optionalHeader {
		start = 1
	}
	end := len(all)
	if limit > 0 {
		end = min(end, limit)
	}
	var merges [][2]string
	var lines []int
	for i := start; i < end; i++ {
		line := strings.TrimSuffix(all[i], "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, nil, fmt.Errorf("%s: malformed merges line %d: want two symbols separated by a space, got %q", path, i+1, clip(line))
		}
		merges = append(merges, [2]string{f[0], f[1]})
		lines = append(lines, i+1)
	}
	return merges, lines, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// LoadOpenAIBPE reads OpenAI CLIP's bpe_simple_vocab_16e6.txt.gz: a header
// line, then merges, of which lines 1 .. 48894 are used (all of them in a
// smaller file; blank lines are skipped). The vocabulary is built as OpenAI
// does: the 256 byte units, the same with "</w>", one token per merge, then
// <|startoftext|> and <|endoftext|>. Rows are padded with 0.
func LoadOpenAIBPE(path string) (*Tokenizer, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parseOpenAIBPE(path, data)
}

func parseOpenAIBPE(path string, data []byte) (*Tokenizer, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: not a gzip file (%w); give OpenAI's %s", path, err, OpenAIBPEFile)
	}
	text, err := io.ReadAll(io.LimitReader(zr, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: corrupt gzip data: %w", path, err)
	}
	if len(text) > maxFileBytes {
		return nil, fmt.Errorf("%s: decompresses to more than %d MiB; not a merges file", path, maxFileBytes>>20)
	}
	merges, lines, err := parseMergeLines(path, string(text), openAIMergeLimit, false)
	if err != nil {
		return nil, err
	}
	enc, order := byteUnits()
	vocab := make(map[string]int64, 512+len(merges)+2)
	var next int64
	add := func(tok string) {
		vocab[tok] = next // a later duplicate wins, as in OpenAI's dict
		next++
	}
	for _, b := range order {
		add(string(enc[b]))
	}
	for _, b := range order {
		add(string(enc[b]) + EndOfWord)
	}
	for _, m := range merges {
		add(m[0] + m[1])
	}
	add(StartOfText)
	add(EndOfText)
	// A duplicate merge result leaves its earlier id without a token.
	t, err := build(path, vocab, merges, func(i int) string {
		return fmt.Sprintf("line %d", lines[i])
	}, map[string]int64{StartOfText: vocab[StartOfText], EndOfText: vocab[EndOfText]})
	if err != nil {
		return nil, err
	}
	t.UnescapeHTML = true
	if err := t.finish(specialConfig{}, func() int64 { return 0 }); err != nil {
		return nil, err
	}
	return t, nil
}

// hfTokenizerJSON is the part of a Hugging Face tokenizer.json that CLIP
// needs.
type hfTokenizerJSON struct {
	AddedTokens []struct {
		ID      int64  `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Padding *struct {
		PadID    *int64 `json:"pad_id"`
		PadToken string `json:"pad_token"`
	} `json:"padding"`
	Truncation *struct {
		MaxLength int `json:"max_length"`
	} `json:"truncation"`
	PostProcessor *struct {
		Type string          `json:"type"`
		CLS  json.RawMessage `json:"cls"`
		SEP  json.RawMessage `json:"sep"`
	} `json:"post_processor"`
	Model *struct {
		Type            string            `json:"type"`
		Vocab           map[string]int64  `json:"vocab"`
		Merges          []json.RawMessage `json:"merges"`
		EndOfWordSuffix *string           `json:"end_of_word_suffix"`
	} `json:"model"`
}

// LoadHFTokenizerJSON reads a Hugging Face fast-tokenizer tokenizer.json
// (model.vocab, model.merges as "a b" strings or ["a", "b"] pairs,
// added_tokens), with tokenizer_config.json and special_tokens_map.json from
// the same folder when present.
func LoadHFTokenizerJSON(path string) (*Tokenizer, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	var cfg specialConfig
	if err := readSidecars(filepath.Dir(path), &cfg); err != nil {
		return nil, err
	}
	return parseTokenizerJSON(path, data, cfg)
}

func parseTokenizerJSON(path string, data []byte, side specialConfig) (*Tokenizer, error) {
	var tj hfTokenizerJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, errs.Wrap(err, "%s: %s; want a Hugging Face tokenizer.json", path, jsonErr(err))
	}
	m := tj.Model
	if m == nil {
		return nil, fmt.Errorf("%s: no \"model\" object; want a Hugging Face tokenizer.json", path)
	}
	if m.Type != "" && m.Type != "BPE" {
		return nil, fmt.Errorf("%s: model.type is %q, want \"BPE\"; not a CLIP tokenizer", path, m.Type)
	}
	if m.EndOfWordSuffix == nil || *m.EndOfWordSuffix != EndOfWord {
		got := "missing"
		if m.EndOfWordSuffix != nil {
			got = fmt.Sprintf("%q", *m.EndOfWordSuffix)
		}
		return nil, fmt.Errorf("%s: model.end_of_word_suffix is %s, want %q; not a CLIP tokenizer", path, got, EndOfWord)
	}
	if m.Vocab == nil {
		return nil, fmt.Errorf("%s: model.vocab is missing; want a JSON object of token to id", path)
	}
	merges := make([][2]string, 0, len(m.Merges))
	for i, raw := range m.Merges {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			a, b, ok := strings.Cut(s, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, fmt.Errorf("%s: malformed model.merges[%d] %q: want \"a b\"", path, i, clip(s))
			}
			merges = append(merges, [2]string{a, b})
			continue
		}
		var pair []string
		if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 || pair[0] == "" || pair[1] == "" {
			return nil, fmt.Errorf("%s: malformed model.merges[%d]: want \"a b\" or [\"a\", \"b\"], got %s", path, i, clip(string(raw)))
		}
		merges = append(merges, [2]string{pair[0], pair[1]})
	}
	vocab := make(map[string]int64, len(m.Vocab)+len(tj.AddedTokens))
	for k, v := range m.Vocab {
		vocab[k] = v
	}
	specials := map[string]int64{}
	for i, at := range tj.AddedTokens {
		if at.Content == "" {
			return nil, fmt.Errorf("%s: added_tokens[%d] has empty content", path, i)
		}
		if id, ok := vocab[at.Content]; ok && id != at.ID {
			return nil, fmt.Errorf("%s: added_tokens[%d] %q has id %d but model.vocab gives %d", path, i, at.Content, at.ID, id)
		}
		vocab[at.Content] = at.ID
		specials[at.Content] = at.ID
	}
	cfg := specialConfig{}
	if pp := tj.PostProcessor; pp != nil {
		cfg.bos = pairToken(pp.CLS)
		cfg.eos = pairToken(pp.SEP)
	}
	if tj.Padding != nil {
		cfg.pad = tj.Padding.PadToken
		cfg.padID = tj.Padding.PadID
	}
	if tj.Truncation != nil && tj.Truncation.MaxLength >= 2 && tj.Truncation.MaxLength <= 1<<20 {
		cfg.maxLen = tj.Truncation.MaxLength
	}
	// The side files win over tokenizer.json, as in transformers.
	if side.bos != "" {
		cfg.bos = side.bos
	}
	if side.eos != "" {
		cfg.eos = side.eos
	}
	if side.pad != "" {
		cfg.pad, cfg.padID = side.pad, nil
	}
	if side.maxLen > 0 {
		cfg.maxLen = side.maxLen
	}
	cfg.files = side.files
	t, err := build(path, vocab, merges, func(i int) string {
		return fmt.Sprintf("model.merges[%d]", i)
	}, specials)
	if err != nil {
		return nil, err
	}
	if err := t.finish(cfg, func() int64 { return t.EndID }); err != nil {
		return nil, err
	}
	return t, nil
}

// pairToken reads the token of a post-processor ["token", id] pair.
func pairToken(raw json.RawMessage) string {
	var pair []json.RawMessage
	if json.Unmarshal(raw, &pair) != nil || len(pair) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(pair[0], &s) != nil {
		return ""
	}
	return s
}
