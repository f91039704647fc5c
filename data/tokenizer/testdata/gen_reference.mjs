// Writes reference.json: ids and attention masks of the prompts below under
// the small vocabulary in hf_json/, as computed by an independent CLIP
// tokenizer implementation (the JavaScript one in @huggingface/transformers,
// which implements the Hugging Face fast-tokenizer pipeline for CLIP).
//
// The Go tests only read reference.json; node is never needed to test.
// To regenerate (after changing the vocabulary or the prompts):
//
//   mkdir -p /tmp/jsref && cd /tmp/jsref && npm init -y &&
//     npm install --ignore-scripts @huggingface/transformers@4.3.2
//   cd data/tokenizer/testdata &&
//     TRANSFORMERS_JS=/tmp/jsref/node_modules/@huggingface/transformers/dist/transformers.node.mjs \
//     node gen_reference.mjs
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const mod = process.env.TRANSFORMERS_JS
  ? pathToFileURL(process.env.TRANSFORMERS_JS).href
  : "@huggingface/transformers";
const { AutoTokenizer, env } = await import(mod);
env.allowRemoteModels = false;
env.localModelPath = here + path.sep;

const prompts = [
  "",
  "   ",
  "a photo of a dog.",
  "A Photo Of A DOG.",
  "a photo of a red_circle",
  "  a   blurry\tphoto\n\nof a  cat!!  ",
  "the dog's ball, it's a cat's toy; they're here & we've seen I'm sure we'll go, he'd say",
  "numbers: 2024, 3.14 and -7e10 (approx.)",
  "café naïve résumé Ærøskøbing ÉCOLE",
  "ΣΊΣΥΦΟΣ σίσυφος",
  "İstanbul",
  "東京 タワー 🐱🐶 emoji!",
  "<|startoftext|>a photo<|endoftext|> of a dog",
  "a photo of a dog <|endoftext|>",
  "photos of dogs and cats; images of birds! a close-up photo of a large striped pattern. a bright photo of a vertical stripe with many many more words than fit",
  "x".repeat(200),
  "a-b_c/d\\e|f~g`h^i",
  "don't DON'T 'quoted' \"double\"",
  "tab\tseparated\u00a0nbsp\u2003emspace",
];

const contextLengths = [16, 77];
const tok = await AutoTokenizer.from_pretrained("hf_json");
const cases = [];
for (const text of prompts) {
  const c = { text, tokens: Array.from(tok.encode(text, { add_special_tokens: false })) };
  const full = Array.from(tok.encode(text), Number);
  for (const n of contextLengths) {
    if (full.length <= n) {
      const out = tok(text, { padding: "max_length", truncation: true, max_length: n });
      c["ids_" + n] = Array.from(out.input_ids.data, Number);
      c["mask_" + n] = Array.from(out.attention_mask.data, Number);
    } else {
      // transformers.js truncates after adding the special tokens, which
      // drops the end token; OpenAI's clip.tokenize and the Python
      // transformers library keep it last. Apply their rule to the
      // JavaScript encoding.
      c["ids_" + n] = [...full.slice(0, n - 1), full[full.length - 1]];
      c["mask_" + n] = new Array(n).fill(1);
      c.truncated = true;
    }
  }
  c.decoded = c.tokens.length ? tok.decode(c.tokens) : "";
  cases.push(c);
}
const out = {
  generator: "gen_reference.mjs with @huggingface/transformers (AutoTokenizer, hf_json/)",
  context_lengths: contextLengths,
  cases,
};
fs.writeFileSync(path.join(here, "reference.json"), JSON.stringify(out, null, 1) + "\n");
console.log(`wrote ${cases.length} cases`);
