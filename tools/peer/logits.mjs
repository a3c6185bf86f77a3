// logits.mjs - llama.cpp (through node-llama-cpp's prebuilt CPU binary) as
// the independent oracle for Fluid's logits: greedy decoding of each prompt,
// printing one JSON document in the format of
// ../shared/testdata/llamacpp/mini-*.json (see its README.md).
//
//   node tools/peer/logits.mjs --model file.gguf [--prompts '["text", ...]']
//        [--steps 16] [--top 8] [--threads 2] [--flash-attention off|on]
//   node tools/peer/logits.mjs --check
//
// Without --prompts, the prompts are a JSON list of strings on stdin.
// Output (stdout): [{prompt, prompt_tokens, steps: [{top: [[id, logit], ...]}],
// greedy: [id, ...]}, ...], one entry per prompt; logits are llama.cpp's raw
// output row (before any sampling), top K by logit, best first.  On failure:
// exit status 1 and {"ok": false, "error": ...} on stdout, so a caller can
// tell "no oracle here" from a crash.  --check only loads the library and
// its CPU backend and prints {"ok": true, "version", "llama_cpp",
// "system_info"}: whether this machine has an oracle at all.
//
// How each prompt runs (the way llama.cpp's own tools do it):
//  * tokens: llama.cpp's tokenizer with special tokens parsed and the
//    model's leading-space rule, BOS prepended (node-llama-cpp's tokenize()
//    never adds BOS itself);
//  * the KV history is cleared, the prompt is one llama_decode() batch with a
//    single logits row (its last token); then every greedy token is one
//    llama_decode() of one token: step k+1 is computed after feeding greedy
//    token k, so the steps follow llama.cpp's own greedy path;
//  * F16 KV cache (the default) and flash attention off, as the shared data
//    was made (on: the same logits to ~3e-3 on mini, but up to 0.09 apart
//    at TinyLlama's shapes; --flash-attention on to see it);
//  * greedy = llama.cpp's greedy sampler alone (temperature 0: no top-k/p,
//    no repeat penalty, no bias), which picks the lowest id among equal
//    maxima and leaves the logits untouched, so the logits returned next to
//    the token are the model's own.
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";

function fail(why) {
    process.stdout.write(JSON.stringify({ ok: false, error: why }) + "\n");
    process.exit(1);
}

const { values: a } = parseArgs({
    options: {
        model: { type: "string" },
        prompts: { type: "string" },
        steps: { type: "string", default: "16" },
        top: { type: "string", default: "8" },
        threads: { type: "string", default: "2" },
        "flash-attention": { type: "string", default: "off" },
        check: { type: "boolean", default: false },
    },
});
if (!a.model && !a.check)
    fail("usage: logits.mjs --model file.gguf [--prompts JSON] [--steps N] [--top K] [--threads T]");
const steps = Number(a.steps), top = Number(a.top), threads = Number(a.threads);
if (![steps, top, threads].every(Number.isInteger) || steps < 1 || top < 1 || threads < 1)
    fail("bad numeric argument");
if (!["on", "off"].includes(a["flash-attention"]))
    fail("--flash-attention: on or off");

let prompts = [];
if (!a.check) {
    try {
        prompts = JSON.parse(a.prompts ?? readFileSync(0, "utf8"));
    } catch (e) {
        fail(`prompts are not JSON: ${e.message}`);
    }
    if (!Array.isArray(prompts) || prompts.length === 0 || !prompts.every(p => typeof p === "string"))
        fail("prompts: a non-empty JSON list of strings");
}

let lib;
try {
    lib = await import("node-llama-cpp");
} catch (e) {
    fail(`cannot import node-llama-cpp (run tools/peer-deps.sh): ${e.message}`);
}
const { getLlama, LlamaLogLevel } = lib;

// One output row for the token fed at that position: greedy token and top-K.
const NEXT = { generateNext: { token: true, logits: { filter: { tokens: [], includeTop: top } },
                               options: { temperature: 0 } } };

async function run(seq, model, prompt) {
    const bos = model.tokens.bos;
    if (bos == null)
        throw new Error("model has no BOS token");
    const tokens = [bos, ...model.tokenize(prompt, true)];
    await seq.clearHistory();
    const out = { prompt, prompt_tokens: tokens, steps: [], greedy: [] };
    let input = tokens.map((t, i) => (i === tokens.length - 1 ? [t, NEXT] : t));
    for (let k = 0; k < steps; k++) {
        const res = await seq.controlledEvaluate(input);
        const next = res[input.length - 1]?.next;
        if (next?.token == null || next.logits == null)
            throw new Error(`no output at step ${k} of ${JSON.stringify(prompt)}`);
        // The map is sorted by logit, best first (node-llama-cpp's contract).
        // 6 decimals, as in the shared files: float32 logits of size ~1-10
        // carry about 7 significant digits, the rest would be noise.
        out.steps.push({ top: [...next.logits.entries()].slice(0, top).map(([t, l]) => [t, Number(l.toFixed(6))]) });
        out.greedy.push(next.token);
        input = [[next.token, NEXT]];
    }
    return out;
}

try {
    // build "never": only the prebuilt binary; gpu false: the CPU backend.
    const llama = await getLlama({ build: "never", gpu: false, maxThreads: threads, logLevel: LlamaLogLevel.error });
    if (a.check) {
        const pkg = JSON.parse(readFileSync(new URL("./node_modules/node-llama-cpp/package.json", import.meta.url), "utf8"));
        process.stdout.write(JSON.stringify({ ok: true, version: pkg.version, llama_cpp: llama.llamaCppRelease?.release ?? null,
                                              system_info: llama.systemInfo }) + "\n");
        await llama.dispose();
        process.exit(0);
    }
    const model = await llama.loadModel({ modelPath: a.model, gpuLayers: 0 });
    const longest = Math.max(...prompts.map(p => model.tokenize(p, true).length)) + 1;
    const context = await model.createContext({
        contextSize: Math.max(longest + steps, 256),
        batchSize: Math.max(longest, 32),
        threads,
        flashAttention: a["flash-attention"] === "on",
        sequences: 1,
    });
    const seq = context.getSequence();
    const results = [];
    for (const p of prompts)
        results.push(await run(seq, model, p));
    await context.dispose();
    await model.dispose();
    await llama.dispose();
    // One entry per line, steps one per line: diffable, like the shared files.
    const lines = results.map(r => {
        const st = r.steps.map(s => "  " + JSON.stringify(s)).join(",\n");
        return `{"prompt": ${JSON.stringify(r.prompt)}, "prompt_tokens": ${JSON.stringify(r.prompt_tokens)}, ` +
            `"steps": [\n${st}\n], "greedy": ${JSON.stringify(r.greedy)}}`;
    });
    process.stdout.write("[\n" + lines.join(",\n") + "\n]\n");
} catch (e) {
    fail(`node-llama-cpp failed: ${e?.message ?? e}`);
}
