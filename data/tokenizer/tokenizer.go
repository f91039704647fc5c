package tokenizer

import (
	"container/heap"
	"fmt"
	"html"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// EndOfWord is the suffix CLIP's BPE appends to the last unit of a word.
const EndOfWord = "</w>"

// DefaultContextLength is CLIP's text context length, used when the files
// name none.
const DefaultContextLength = 77

// Default special tokens of CLIP vocabularies.
const (
	StartOfText = "<|startoftext|>"
	EndOfText   = "<|endoftext|>"
)

// maxCacheEntries bounds the per-word BPE cache.
const maxCacheEntries = 1 << 14

// pretokenPattern is CLIP's pre-split pattern without the special-token
// alternatives (special tokens are split off before cleanup). Text reaching
// it has been whitespace-collapsed, so ASCII \s is exact.
var pretokenPattern = regexp.MustCompile(`'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`)

// Tokenizer is a CLIP byte-level BPE tokenizer. It is safe for concurrent
// use once its exported fields are no longer changed.
type Tokenizer struct {
	// Source names the file the vocabulary was read from.
	Source string
	// Config names the configuration files read beside it (tokenizer_config.json,
	// special_tokens_map.json), which set the special tokens and the context length.
	Config []string
	// StartID is the id of the start-of-text token put first in every row.
	StartID int64
	// EndID is the id of the end-of-text token put after the text; it stays
	// the last token when a row is truncated.
	EndID int64
	// PadID fills rows after the end token. It defaults from the files:
	// the pad token they name, else the end-of-text id for Hugging Face
	// files and 0 for OpenAI's file (as clip.tokenize does).
	PadID int64
	// ContextLength is the row length EncodeBatch uses when asked for 0.
	ContextLength int
	// UnescapeHTML applies HTML unescaping twice before cleanup, as OpenAI's
	// tokenizer does. It defaults to true for OpenAI's file and false for
	// Hugging Face files (whose fast tokenizers do not unescape).
	UnescapeHTML bool

	vocab    map[string]int64
	tokens   []string // id -> token; "" where no token has the id
	ranks    map[string]int
	enc      [256]rune
	dec      map[rune]byte
	specials []string         // matched literally in raw text, longest first
	special  map[string]int64 // special token -> id
	isSpec   map[int64]bool

	mu    sync.Mutex
	cache map[string][]int64
}

// mergeKey is the key of a merge pair in the rank table.
func mergeKey(a, b string) string { return a + "\x00" + b }

// build validates a vocabulary and its merges and returns a tokenizer.
// mergeWhere describes merge i for error messages.
func build(source string, vocab map[string]int64, merges [][2]string, mergeWhere func(i int) string, specials map[string]int64) (*Tokenizer, error) {
	t := &Tokenizer{
		Source:        source,
		ContextLength: DefaultContextLength,
		vocab:         vocab,
		ranks:         make(map[string]int, len(merges)),
		dec:           make(map[rune]byte, 256),
		special:       map[string]int64{},
		isSpec:        map[int64]bool{},
		cache:         map[string][]int64{},
	}
	// Ids are dense in real vocabularies; bound them so that one bad id
	// cannot make the id table huge.
	maxID := int64(2*len(vocab) + 1024)
	var top int64 = -1
	for tok, id := range vocab {
		if id < 0 || id >= maxID {
			return nil, fmt.Errorf("%s: token %q has id %d, want 0 <= id < %d (twice the vocabulary size); fix the vocabulary", source, tok, id, maxID)
		}
		top = max(top, id)
	}
	t.tokens = make([]string, top+1)
	owner := make([]bool, top+1)
	// Sort for deterministic error messages.
	keys := make([]string, 0, len(vocab))
	for tok := range vocab {
		keys = append(keys, tok)
	}
	sort.Strings(keys)
	for _, tok := range keys {
		id := vocab[tok]
		if owner[id] {
			return nil, fmt.Errorf("%s: id %d is used by both %q and %q; fix the vocabulary", source, id, t.tokens[id], tok)
		}
		owner[id] = true
		t.tokens[id] = tok
	}
	var order [256]byte
	t.enc, order = byteUnits()
	for _, b := range order {
		u := string(t.enc[b])
		t.dec[t.enc[b]] = b
		for _, tok := range []string{u, u + EndOfWord} {
			if _, ok := vocab[tok]; !ok {
				return nil, fmt.Errorf("%s: vocabulary lacks %q (byte 0x%02x); not a CLIP byte-level BPE vocabulary", source, tok, b)
			}
		}
	}
	for i, m := range merges {
		for _, part := range []string{m[0], m[1], m[0] + m[1]} {
			if _, ok := vocab[part]; !ok {
				return nil, fmt.Errorf("%s: %s (%q %q): %q is not in the vocabulary", source, mergeWhere(i), m[0], m[1], part)
			}
		}
		t.ranks[mergeKey(m[0], m[1])] = i
	}
	for tok, id := range specials {
		if tok == "" {
			continue
		}
		t.special[tok] = id
		t.isSpec[id] = true
		t.specials = append(t.specials, tok)
	}
	sort.Slice(t.specials, func(i, j int) bool {
		if len(t.specials[i]) != len(t.specials[j]) {
			return len(t.specials[i]) > len(t.specials[j])
		}
		return t.specials[i] < t.specials[j]
	})
	return t, nil
}

// VocabSize returns the number of ids: one more than the largest id.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// ID returns the id of a vocabulary token and whether it exists.
func (t *Tokenizer) ID(token string) (int64, bool) {
	id, ok := t.vocab[token]
	return id, ok
}

// Token returns the vocabulary token of an id, or "" when none has it.
func (t *Tokenizer) Token(id int64) string {
	if id < 0 || id >= int64(len(t.tokens)) {
		return ""
	}
	return t.tokens[id]
}

// Clean applies CLIP's text cleanup: optional HTML unescape, Unicode NFC,
// whitespace collapsed to single spaces, leading and trailing space removed,
// and lower-casing.
func (t *Tokenizer) Clean(text string) string {
	if t.UnescapeHTML {
		text = html.UnescapeString(html.UnescapeString(text))
	}
	return clean(text)
}

func clean(text string) string {
	text = norm.NFC.String(strings.ToValidUTF8(text, "\uFFFD"))
	return lower(strings.Join(strings.FieldsFunc(text, unicode.IsSpace), " "))
}

// lower lower-cases s with the full Unicode mapping that Python, Rust and
// JavaScript use: U+0130 becomes "i\u0307" and capital sigma becomes final
// sigma at the end of a word.
func lower(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch r {
		case '\u0130':
			b.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(s, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
}

func isCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '^', '`', '\u00A8', '\u00AD', '\u00AF', '\u00B4', '\u00B7', '\u00B8', '\u2018', '\u2019', '\u2024', '\u2027':
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// finalSigma reports whether the capital sigma at byte offset i of s ends a
// word (Unicode's Final_Sigma condition).
func finalSigma(s string, i int) bool {
	before := false
	for j := i; j > 0; {
		r, n := utf8.DecodeLastRuneInString(s[:j])
		j -= n
		if isCaseIgnorable(r) {
			continue
		}
		before = isCased(r)
		break
	}
	if !before {
		return false
	}
	for j := i + len("Σ"); j < len(s); {
		r, n := utf8.DecodeRuneInString(s[j:])
		j += n
		if isCaseIgnorable(r) {
			continue
		}
		return !isCased(r)
	}
	return true
}

// Encode returns the BPE ids of text without start, end or padding tokens.
// Special tokens written literally in text (such as "<|endoftext|>") map to
// their ids.
func (t *Tokenizer) Encode(text string) []int64 {
	if t.UnescapeHTML {
		text = html.UnescapeString(html.UnescapeString(text))
	}
	var ids []int64
	// next[k] is the next occurrence of special k at or after pos (-1:
	// none left); each special's search only moves forward.
	next := make([]int, len(t.specials))
	for k, sp := range t.specials {
		next[k] = strings.Index(text, sp)
	}
	pos := 0
	for {
		best, bestK := len(text), -1
		for k, sp := range t.specials {
			if next[k] >= 0 && next[k] < pos {
				if i := strings.Index(text[pos:], sp); i >= 0 {
					next[k] = pos + i
				} else {
					next[k] = -1
				}
			}
			// Earliest wins; at a tie the longer (earlier in the list).
			if next[k] >= 0 && next[k] < best {
				best, bestK = next[k], k
			}
		}
		ids = t.encodePlain(ids, text[pos:best])
		if bestK < 0 {
			return ids
		}
		sp := t.specials[bestK]
		ids = append(ids, t.special[sp])
		pos = best + len(sp)
	}
}

func (t *Tokenizer) encodePlain(ids []int64, text string) []int64 {
	text = clean(text)
	if text == "" {
		return ids
	}
	for _, piece := range pretokenPattern.FindAllString(text, -1) {
		ids = append(ids, t.bpe(piece)...)
	}
	return ids
}

// bpe maps one pre-token to ids through the byte units and the merges.
func (t *Tokenizer) bpe(piece string) []int64 {
	t.mu.Lock()
	cached, ok := t.cache[piece]
	t.mu.Unlock()
	if ok {
		return cached
	}
	units := make([]string, 0, len(piece))
	for i := 0; i < len(piece); i++ {
		units = append(units, string(t.enc[piece[i]]))
	}
	units[len(units)-1] += EndOfWord
	words := mergeUnits(units, t.ranks)
	ids := make([]int64, len(words))
	for i, w := range words {
		ids[i] = t.vocab[w] // present: validated at load
	}
	t.mu.Lock()
	if len(t.cache) >= maxCacheEntries {
		clear(t.cache)
	}
	t.cache[piece] = ids
	t.mu.Unlock()
	return ids
}

// symbol is one node of the doubly linked list of units during merging.
type symbol struct {
	s          string
	prev, next int // indices, -1 at the ends
	gen        int // bumped when the symbol changes or dies
	dead       bool
}

// candidate is a mergeable adjacent pair on the heap.
type candidate struct {
	rank, left        int
	leftGen, rightGen int
	right             int
}

type candHeap []candidate

func (h candHeap) Len() int { return len(h) }
func (h candHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].left < h[j].left
}
func (h candHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)   { *h = append(*h, x.(candidate)) }
func (h *candHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeUnits applies merges by rank: repeatedly the adjacent pair with the
// lowest rank is merged, leftmost first among equal pairs. This is the same
// result as OpenAI's loop (which merges every occurrence of the best pair
// per pass) for merge tables learned by BPE, and runs in O(n log n).
func mergeUnits(units []string, ranks map[string]int) []string {
	if len(units) < 2 {
		return units
	}
	syms := make([]symbol, len(units))
	for i, u := range units {
		syms[i] = symbol{s: u, prev: i - 1, next: i + 1}
	}
	syms[len(syms)-1].next = -1
	h := &candHeap{}
	push := func(l int) {
		r := syms[l].next
		if r < 0 {
			return
		}
		if rank, ok := ranks[mergeKey(syms[l].s, syms[r].s)]; ok {
			heap.Push(h, candidate{rank: rank, left: l, right: r, leftGen: syms[l].gen, rightGen: syms[r].gen})
		}
	}
	for i := 0; i+1 < len(syms); i++ {
		push(i)
	}
	for h.Len() > 0 {
		c := heap.Pop(h).(candidate)
		l, r := &syms[c.left], &syms[c.right]
		if l.dead || r.dead || l.gen != c.leftGen || r.gen != c.rightGen || l.next != c.right {
			continue
		}
		l.s += r.s
		l.gen++
		r.dead = true
		r.gen++
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = c.left
		}
		if l.prev >= 0 {
			push(l.prev)
		}
		push(c.left)
	}
	out := make([]string, 0, len(units))
	for i := 0; i >= 0; i = syms[i].next {
		out = append(out, syms[i].s)
	}
	return out
}

// EncodeRow returns one row of exactly contextLen ids and its attention
// mask: the start token, the text's ids, the end token, then padding. Text
// that does not fit is truncated and the end token kept as the last token.
// A contextLen of 0 or less means t.ContextLength; values below 2 are
// raised to 2.
func (t *Tokenizer) EncodeRow(text string, contextLen int) (ids, mask []int64) {
	if contextLen <= 0 {
		contextLen = t.ContextLength
	}
	contextLen = max(contextLen, 2)
	body := t.Encode(text)
	ids = make([]int64, contextLen)
	mask = make([]int64, contextLen)
	n := min(len(body), contextLen-2)
	ids[0] = t.StartID
	copy(ids[1:], body[:n])
	ids[n+1] = t.EndID
	for i := range ids {
		if i < n+2 {
			mask[i] = 1
		} else {
			ids[i] = t.PadID
		}
	}
	return ids, mask
}

// EncodeBatch encodes texts as rows of contextLen ids (see EncodeRow) and
// their attention masks (1 for the start token, text and end token, 0 for
// padding).
func (t *Tokenizer) EncodeBatch(texts []string, contextLen int) (ids, mask [][]int64) {
	ids = make([][]int64, len(texts))
	mask = make([][]int64, len(texts))
	for i, s := range texts {
		ids[i], mask[i] = t.EncodeRow(s, contextLen)
	}
	return ids, mask
}

// Decode turns ids back into text: start tokens and other special tokens are
// dropped, decoding stops at the first end token (so padding after it is
// ignored), the byte units are mapped back to UTF-8 (invalid sequences become
// U+FFFD), "</w>" becomes a space and surrounding space is trimmed. Unknown
// ids are skipped.
func (t *Tokenizer) Decode(ids []int64) string {
	var raw []byte
	for _, id := range ids {
		if id == t.EndID {
			break
		}
		if id == t.StartID || t.isSpec[id] {
			continue
		}
		tok := t.Token(id)
		if tok == "" {
			continue
		}
		body, eow := strings.CutSuffix(tok, EndOfWord)
		for _, r := range body {
			if b, ok := t.dec[r]; ok {
				raw = append(raw, b)
			} else {
				raw = append(raw, string(r)...)
			}
		}
		if eow {
			raw = append(raw, ' ')
		}
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(raw), "\uFFFD"))
}
