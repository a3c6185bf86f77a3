// tokenize.mjs - llama.cpp's tokenizer (node-llama-cpp's prebuilt binary,
// the model loaded vocabulary-only) and the model's own chat template
// (rendered by @huggingface/jinja, the Jinja engine of transformers.js), as
// the oracle for Fluid's `tokenize` and `chat` formatting.
//
//   node tools/peer/tokenize.mjs --model file.gguf --texts '["text", ...]'
//   node tools/peer/tokenize.mjs --model file.gguf --chat '[[{"role", "content"}, ...], ...]'
//
// --texts: each text as llama.cpp's llama_tokenize(add_special = true,
//   parse_special = true) gives it: BOS first when the vocabulary says so
//   (tokenizer.ggml.add_bos_token, node-llama-cpp's shouldPrependBosToken),
//   then the text with special tokens parsed and the vocabulary's
//   space-prefix rule (tokenizer.ggml.add_space_prefix).
// --chat: each conversation rendered with the GGUF's tokenizer.chat_template
//   (bos_token, eos_token from the vocabulary, add_generation_prompt true),
//   then a leading BOS text removed, as llama.cpp's common_chat_templates_apply
//   does to avoid a double BOS, and tokenized as --texts does.
// Output (stdout): [{text, tokens}, ...], one per input; on failure exit
// status 1 and {"ok": false, "error": ...}.
import { parseArgs } from "node:util";

function fail(why) {
    process.stdout.write(JSON.stringify({ ok: false, error: why }) + "\n");
    process.exit(1);
}

const { values: a } = parseArgs({
    options: { model: { type: "string" }, texts: { type: "string" }, chat: { type: "string" } },
});
if (!a.model || (a.texts == null) === (a.chat == null))
    fail("usage: tokenize.mjs --model file.gguf (--texts JSON | --chat JSON)");
let input;
try {
    input = JSON.parse(a.texts ?? a.chat);
} catch (e) {
    fail(`not JSON: ${e.message}`);
}
if (!Array.isArray(input))
    fail("a JSON list expected");

let getLlama, LlamaLogLevel, Template;
try {
    ({ getLlama, LlamaLogLevel } = await import("node-llama-cpp"));
    ({ Template } = await import("@huggingface/jinja"));
} catch (e) {
    fail(`cannot import node-llama-cpp / @huggingface/jinja (run tools/peer-deps.sh): ${e.message}`);
}

try {
    const llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: a.model, gpuLayers: 0, vocabOnly: true });
    const tokens = (text) => [...(model.tokens.shouldPrependBosToken ? [model.tokens.bos] : []),
                              ...model.tokenize(text, true)];
    let texts = input;
    if (a.chat != null) {
        const source = model.fileInfo.metadata?.tokenizer?.chat_template;
        if (typeof source !== "string")
            fail("the model has no tokenizer.chat_template");
        const bos = model.tokens.bosString ?? "", eos = model.tokens.eosString ?? "";
        const template = new Template(source);
        texts = input.map((messages) => {
            const text = template.render({ messages, bos_token: bos, eos_token: eos, add_generation_prompt: true });
            return bos && text.startsWith(bos) ? text.slice(bos.length) : text;
        });
    }
    const out = texts.map((text) => ({ text, tokens: tokens(text) }));
    await model.dispose();
    await llama.dispose();
    process.stdout.write(JSON.stringify(out) + "\n");
} catch (e) {
    fail(`node-llama-cpp failed: ${e?.message ?? e}`);
}
