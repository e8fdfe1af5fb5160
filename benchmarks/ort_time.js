#!/usr/bin/env node
// Times one ONNX model in ONNX Runtime (onnxruntime-node, CPU execution provider) on inputs given
// as .npy files and prints the median as one line of JSON. benchmarks/onnx_bench.cpp runs it next
// to Kiln's timings of the same model imported with kiln::onnx::import_model.
//
//   node ort_time.js MODEL.onnx NAME=INPUT.npy ... [--warmup N] [--runs M] [--threads K]
//   -> {"median_ms": 12.3, "runs": 20, "threads": 2}
//
// .npy inputs: little-endian float32 (<f4) or int64 (<i8), C order.
'use strict';
const fs = require('fs');
const path = require('path');

function fail(msg) {
  process.stderr.write('ort_time.js: ' + msg + '\n');
  process.exit(1);
}

function loadOrt() {
  const dirs = process.env.KILN_NODE_MODULES ? [process.env.KILN_NODE_MODULES] : [];
  for (const dir of dirs) {
    const p = path.join(dir, 'onnxruntime-node');
    if (fs.existsSync(p)) return require(p);
  }
  return require('onnxruntime-node');
}

// Minimal .npy reader: header dict with 'descr' and 'shape'.
function readNpy(ort, file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') fail(file + ': not a .npy file');
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + hlen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').filter((s) => s.trim()).map(Number);
  const bytes = buf.subarray(start);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  if (descr === '<f4') return new ort.Tensor('float32', new Float32Array(copy.buffer), shape);
  if (descr === '<i8') return new ort.Tensor('int64', new BigInt64Array(copy.buffer), shape);
  fail(file + ': dtype ' + descr + ' is not supported (float32, int64)');
}

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

async function main() {
  const argv = process.argv.slice(2);
  const opts = {model: null, inputs: [], warmup: 3, runs: 20, threads: 2};
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--warmup') opts.warmup = Number(argv[++i]);
    else if (a === '--runs') opts.runs = Number(argv[++i]);
    else if (a === '--threads') opts.threads = Number(argv[++i]);
    else if (a.startsWith('--')) fail('unknown option ' + a);
    else if (opts.model === null) opts.model = a;
    else opts.inputs.push(a);
  }
  if (opts.model === null) fail('usage: node ort_time.js MODEL.onnx NAME=INPUT.npy ...');
  const ort = loadOrt();
  const session = await ort.InferenceSession.create(opts.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  const feeds = {};
  for (const spec of opts.inputs) {
    const eq = spec.indexOf('=');
    if (eq < 0) fail('inputs are NAME=FILE.npy, got ' + spec);
    feeds[spec.slice(0, eq)] = readNpy(ort, spec.slice(eq + 1));
  }
  for (let i = 0; i < opts.warmup; ++i) await session.run(feeds);
  const times = [];
  for (let i = 0; i < opts.runs; ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  process.stdout.write(
      JSON.stringify({median_ms: median(times), runs: opts.runs, threads: opts.threads}) + '\n');
}

main().catch((e) => fail(e.message));
