#!/usr/bin/env node
// Times inference of an exported Kiln text model (inputs input_ids and attention_mask, both (B, T)
// int64) in ONNX Runtime (onnxruntime-node, CPU execution provider) and prints the medians as one
// line of JSON. benchmarks/bert_bench.cpp runs it through popen next to Kiln's own timings.
//
//   node ort_bench.js MODEL.onnx [--shape BxT ...] [--warmup N] [--runs M] [--threads K]
//                                [--vocab V]
//   -> {"threads":2,"results":[{"batch":1,"seq":128,"median_ms":1.23,"runs":50}, ...],
//       "peak_rss_MB":123.4}
//
//   node ort_bench.js MODEL.onnx --serve [--threads K] [--vocab V]
//   (bert_bench --interleave: prints {"ready":true}; then for each stdin line "B T N" runs the
//   (B, T) inputs N times and prints {"mean_ms":...}; on end of input prints {"peak_rss_MB":...})
//
// Defaults: --shape 1x128 --warmup 10 --runs 50 --threads 2 (intraOpNumThreads; interOp 1)
// --vocab 8192. Every row of input_ids is full length (ids drawn in [2, vocab) by a fixed LCG) and
// attention_mask is all ones. Inputs other than input_ids / attention_mask get int64 zeros.
// peak_rss_MB is this Node process's peak resident set (ORT runtime + model + arenas + Node).
// onnxruntime-node is looked up in $KILN_NODE_MODULES first, then the usual Node.js way.
'use strict';
const fs = require('fs');
const path = require('path');

function fail(msg) {
  process.stderr.write('ort_bench.js: ' + msg + '\n');
  process.exit(1);
}

function loadOrt() {
  const dirs = process.env.KILN_NODE_MODULES ? [process.env.KILN_NODE_MODULES] : [];
  for (const dir of dirs) {
    const p = path.join(dir, 'onnxruntime-node');
    if (fs.existsSync(p)) return require(p);
  }
  try {
    return require('onnxruntime-node');
  } catch (e) {
    fail(
        'cannot load onnxruntime-node (' + e.message.split('\n')[0] + '); run ' +
        '`npm install --ignore-scripts` in the Kiln source directory');
  }
}

function parseArgs(argv) {
  const opts =
      {model: null, shapes: [], warmup: 10, runs: 50, threads: 2, vocab: 8192, serve: false};
  const positiveInt = (flag, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) fail(flag + ' wants a positive integer, got "' + v + '"');
    return n;
  };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) fail(a + ' needs a value');
      return argv[++i];
    };
    if (a === '--shape') {
      const v = next();
      const m = /^(\d+)x(\d+)$/.exec(v);
      if (!m) fail('--shape wants BxT (e.g. 32x128), got "' + v + '"');
      opts.shapes.push([positiveInt('--shape B', m[1]), positiveInt('--shape T', m[2])]);
    } else if (a === '--warmup') {
      opts.warmup = Number(next());
      if (!Number.isInteger(opts.warmup) || opts.warmup < 0) fail('--warmup wants an integer >= 0');
    } else if (a === '--runs') {
      opts.runs = positiveInt(a, next());
    } else if (a === '--threads') {
      opts.threads = positiveInt(a, next());
    } else if (a === '--vocab') {
      opts.vocab = positiveInt(a, next());
      if (opts.vocab < 3) fail('--vocab must be >= 3 (ids are drawn in [2, vocab))');
    } else if (a === '--serve') {
      opts.serve = true;
    } else if (a.startsWith('--')) {
      fail('unknown option ' + a);
    } else if (opts.model === null) {
      opts.model = a;
    } else {
      fail('unexpected argument "' + a + '" (one model path only)');
    }
  }
  if (opts.model === null) {
    fail(
        'usage: node ort_bench.js MODEL.onnx [--shape BxT ...] [--warmup N] [--runs M] ' +
        '[--threads K] [--vocab V]');
  }
  if (!fs.existsSync(opts.model)) fail('no such model file: ' + opts.model);
  if (opts.shapes.length === 0) opts.shapes.push([1, 128]);
  return opts;
}

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

function makeFeeds(ort, session, B, T, vocab) {
  const n = B * T;
  const feeds = {};
  for (const name of session.inputNames) {
    const data = new BigInt64Array(n);
    if (name === 'attention_mask') {
      data.fill(1n);
    } else if (name === 'input_ids') {
      let s = 12345;
      for (let i = 0; i < n; ++i) {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        data[i] = BigInt(2 + (s % (vocab - 2)));
      }
    }
    feeds[name] = new ort.Tensor('int64', data, [B, T]);
  }
  return feeds;
}

function peakRssMB() {
  return process.resourceUsage().maxRSS / 1024;  // maxRSS is in KiB
}

// --serve: one repetition per request, so a caller can interleave ORT's repetitions with its own.
async function serve(ort, session, opts) {
  const readline = require('readline');
  const feeds = new Map();  // "BxT" -> inputs, made once
  process.stdout.write(JSON.stringify({ready: true}) + '\n');
  for await (const line of readline.createInterface({input: process.stdin})) {
    const m = /^(\d+) (\d+) (\d+)$/.exec(line.trim());
    if (!m) fail('--serve wants lines "B T N", got "' + line + '"');
    const [B, T, n] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const key = B + 'x' + T;
    if (!feeds.has(key)) feeds.set(key, makeFeeds(ort, session, B, T, opts.vocab));
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; ++i) await session.run(feeds.get(key));
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    process.stdout.write(JSON.stringify({mean_ms: ms / Math.max(n, 1)}) + '\n');
  }
  process.stdout.write(JSON.stringify({peak_rss_MB: peakRssMB()}) + '\n');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  let session;
  try {
    session = await ort.InferenceSession.create(opts.model, {
      executionProviders: ['cpu'],
      intraOpNumThreads: opts.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
  } catch (e) {
    fail(opts.model + ': cannot create an ONNX Runtime session: ' + e.message);
  }
  if (opts.serve) return serve(ort, session, opts);
  const results = [];
  for (const [B, T] of opts.shapes) {
    const feeds = makeFeeds(ort, session, B, T, opts.vocab);
    for (let i = 0; i < opts.warmup; ++i) await session.run(feeds);
    const times = [];
    for (let i = 0; i < opts.runs; ++i) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    results.push({batch: B, seq: T, median_ms: median(times), runs: opts.runs});
  }
  process.stdout.write(
      JSON.stringify({threads: opts.threads, results: results, peak_rss_MB: peakRssMB()}) + '\n');
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
