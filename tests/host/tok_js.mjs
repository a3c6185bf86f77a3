// tok_js.mjs - encode strings with the npm package llama-tokenizer-js
// (an independent SentencePiece-BPE encoder of the Llama 2 vocabulary), for
// tests/host/test_tokenizer.py.
//
// usage: node tok_js.mjs NODE_MODULES_DIR [encode|decode] < input.json
//   encode: stdin is a JSON array of strings; stdout is a JSON array with,
//           for each, llamaTokenizer.encode(s) (BOS and leading space added,
//           the package's defaults).  An element may also be
//           [s, add_bos, add_preceding_space] to pass those flags.
//   decode: stdin is a JSON array of id arrays; stdout is a JSON array of
//           llamaTokenizer.decode(ids) (drops BOS and one leading space).
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
const mode = process.argv[3] || "encode";
if (!modules) {
  console.error("usage: node tok_js.mjs NODE_MODULES_DIR [encode|decode]");
  process.exit(1);
}
const entry = path.join(modules, "llama-tokenizer-js", "llama-tokenizer.js");
const tokenizer = (await import(pathToFileURL(entry).href)).default;

const input = JSON.parse(readFileSync(0, "utf8"));
const output =
  mode === "decode"
    ? input.map((ids) => tokenizer.decode(ids))
    : input.map((s) =>
        Array.isArray(s) ? tokenizer.encode(s[0], s[1], s[2]) : tokenizer.encode(s));
process.stdout.write(JSON.stringify(output));
