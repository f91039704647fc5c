// Package tokenizer implements CLIP's byte-level BPE tokenizer.
//
// It reproduces the behaviour of OpenAI CLIP's SimpleTokenizer and of the
// Hugging Face CLIP tokenizers: text cleanup (optional HTML unescape,
// whitespace collapse, strip, NFC), lower-casing, CLIP's regular-expression
// pre-split, the bytes-to-unicode mapping, BPE merges applied by rank with a
// "</w>" end-of-word marker, start and end tokens, truncation that keeps the
// end token last, padding and an attention mask.
//
// Vocabularies are read from the files that CLIP exports ship: a Hugging
// Face tokenizer.json, vocab.json plus merges.txt (with
// tokenizer_config.json / special_tokens_map.json when present), or OpenAI's
// bpe_simple_vocab_16e6.txt.gz. [Load] finds whichever is present in a
// folder.
//
// Differences from the references: ftfy's text repair is not reproduced
// (only Unicode NFC, which ftfy also applies), whitespace follows Go's
// unicode.IsSpace (the Unicode White_Space property, as the Rust and
// JavaScript tokenizers use), and letter/number classes follow the Unicode
// version of the Go toolchain.
package tokenizer
