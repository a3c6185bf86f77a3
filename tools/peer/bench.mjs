// bench.mjs - the peer side of `make bench`: one GGUF file through
// node-llama-cpp (prebuilt llama.cpp, CPU-only linux-x64 binaries), measured
// the way llama-bench measures, printing one JSON object on stdout.
//
//   node tools/peer/bench.mjs --model file.gguf [--threads N] [--pp 128] [--tg 64] [--reps 3] [--ctx N]
//
// It also reports the process's resident memory after the runs (rss_bytes,
// with the model and a context of --ctx tokens live) and before llama.cpp
// was loaded (rss_start_bytes: node alone).
//
// How the two tests map onto llama-bench (llama.cpp tools/llama-bench):
//
//  * pp<N> (prefill): llama-bench clears the KV cache, then llama_decode()s
//    N prompt tokens as one batch (llama_batch_get_one: only the last token
//    produces logits) and reports N / time.  Here: a context whose batch is
//    at least N tokens (node-llama-cpp sets n_ubatch = n_batch, so N <= 512
//    is one ubatch, as in llama-bench's default -ub 512), the sequence
//    history cleared, then ONE LlamaContextSequence.controlledEvaluate()
//    call with the N tokens where only the last asks for an output
//    (generateNext.token: a greedy pick over that one row of logits, ~32k
//    compares, noise next to the decode).  node-llama-cpp turns that into
//    one llama_decode() of the whole batch with a single logits row.
//
//  * tg<N> (decode): llama-bench clears the KV cache, then runs N
//    llama_decode() calls of one token each, every one producing logits,
//    and reports N / time.  Here: the history cleared, then N
//    controlledEvaluate() calls of one token each with generateNext.token
//    (each is one llama_decode() of a 1-token batch with logits, plus the
//    greedy pick; the JS<->native hop per step is tens of microseconds).
//
//  * Like llama-bench: one warm-up of each test first, the same thread count
//    for prefill and decode, R repetitions, mean and sample sd of the
//    per-repetition tok/s.  The prompt tokens are the ones Fluid's `bench`
//    uses (BOS, then 259 + i*7919 mod (n_vocab - 259)); llama-bench uses
//    random ids, which costs the same.  Flash attention off (node-llama-cpp's
//    default for llama; at a 192-token context it makes no difference).
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import os from "node:os";

function fail(why, extra = {}) {
    process.stdout.write(JSON.stringify({ ok: false, error: why, ...extra }) + "\n");
    process.exit(1);
}

const { values: a } = parseArgs({
    options: {
        model: { type: "string" },
        threads: { type: "string", default: String(os.availableParallelism()) },
        pp: { type: "string", default: "128" },
        tg: { type: "string", default: "64" },
        reps: { type: "string", default: "3" },
        ctx: { type: "string", default: "0" },
    },
});
if (!a.model)
    fail("usage: bench.mjs --model file.gguf [--threads N] [--pp N] [--tg N] [--reps R]");
const threads = Number(a.threads), pp = Number(a.pp), tg = Number(a.tg), reps = Number(a.reps);
const ctx = Number(a.ctx);   // 0: just what the test needs (at least 256)
if (![threads, pp, tg, reps, ctx].every(Number.isInteger) || threads < 1 || pp < 0 || tg < 0 || reps < 1 ||
    pp + tg === 0 || ctx < 0)
    fail("bad numeric argument");

const rssStart = process.memoryUsage().rss;   // node itself, before llama.cpp
let lib;
try {
    lib = await import("node-llama-cpp");
} catch (e) {
    fail(`cannot import node-llama-cpp (run tools/peer-deps.sh): ${e.message}`);
}
const { getLlama, LlamaLogLevel } = lib;

function stats(v) {
    const mean = v.reduce((s, x) => s + x, 0) / v.length;
    const sd = v.length > 1 ? Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (v.length - 1)) : 0;
    return { mean, sd, runs: v };
}

try {
    // build "never": only the prebuilt binary; gpu false: the CPU backend.
    const llama = await getLlama({ build: "never", gpu: false, maxThreads: threads, logLevel: LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: a.model, gpuLayers: 0 });
    const nVocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 32000;
    const n = Math.max(pp, tg);
    const toks = [model.tokens.bos ?? 1];
    for (let i = 1; i < n; i++)
        toks.push(259 + ((i * 7919) % (nVocab - 259)));

    const context = await model.createContext({
        contextSize: ctx || Math.max(pp + tg, 256),
        batchSize: Math.max(pp, 1),
        threads,
        flashAttention: false,
        sequences: 1,
    });
    const seq = context.getSequence();
    const OUT = { generateNext: { token: true } };

    async function runPP(count) {
        await seq.clearHistory();
        const input = toks.slice(0, count);
        input[count - 1] = [input[count - 1], OUT];
        const t0 = performance.now();
        await seq.controlledEvaluate(input);
        return count / ((performance.now() - t0) / 1000);
    }
    async function runTG(count) {
        await seq.clearHistory();
        const t0 = performance.now();
        for (let i = 0; i < count; i++)
            await seq.controlledEvaluate([[toks[i], OUT]]);
        return count / ((performance.now() - t0) / 1000);
    }

    const out = {
        ok: true,
        peer: "node-llama-cpp",
        version: "3.22.1",
        llama_cpp: llama.llamaCppRelease?.release ?? null,
        gpu: llama.gpu,
        threads: context.currentThreads ?? threads,
        model: a.model,
        model_bytes: model.size,
        pp: null,
        tg: null,
    };
    if (pp > 0) {
        await runPP(Math.min(pp, 8));          // warm-up
        const v = [];
        for (let r = 0; r < reps; r++)
            v.push(await runPP(pp));
        out.pp = { n: pp, ...stats(v) };
    }
    if (tg > 0) {
        await runTG(1);                        // warm-up
        const v = [];
        for (let r = 0; r < reps; r++)
            v.push(await runTG(tg));
        out.tg = { n: tg, ...stats(v) };
    }
    out.system_info = llama.systemInfo;
    out.context_size = context.contextSize;
    out.rss_bytes = process.memoryUsage().rss;       // with the model and context in use
    out.rss_start_bytes = rssStart;
    await context.dispose();
    await model.dispose();
    await llama.dispose();
    process.stdout.write(JSON.stringify(out) + "\n");
} catch (e) {
    fail(`node-llama-cpp failed: ${e?.message ?? e}`);
}
