#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime (onnxruntime-node, CPU execution provider) on inputs read from
// .npy files and writes every output as a .npy file. Kiln's tests call it through
// tests/onnx/ort_runner.h to check that exported models compute what Kiln computes.
//
//   node ort_run.js MODEL.onnx OUT_DIR in0.npy [in1.npy ...]     inputs in the model's input order
//   node ort_run.js MODEL.onnx OUT_DIR name=in.npy [...]          inputs by name
//   node ort_run.js MODEL.onnx OUT_DIR --manifest inputs.json     {"input name": "path.npy", ...}
//
// Each output is written as OUT_DIR/<output name>.npy (characters other than [A-Za-z0-9._-] in the
// name become '_'), and one line per output goes to stdout: "<file name>\t<output name>".
// .npy support: little-endian (or single-byte) C-order arrays of float32, float64, float16, int8,
// int16, int32, int64, uint8, uint16, uint32, uint64 and bool, format versions 1 to 3.
// onnxruntime-node is looked up in $KILN_NODE_MODULES first, then the usual Node.js way.
'use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  const dirs = process.env.KILN_NODE_MODULES ? [process.env.KILN_NODE_MODULES] : [];
  for (const dir of dirs) {
    const p = path.join(dir, 'onnxruntime-node');
    if (fs.existsSync(p)) return require(p);
  }
  try {
    return require('onnxruntime-node');
  } catch (e) {
    fail('cannot load onnxruntime-node (' + e.message.split('\n')[0] + '); run ' +
         '`npm install --ignore-scripts` in the Kiln source directory');
  }
}

function fail(msg) {
  process.stderr.write('ort_run.js: ' + msg + '\n');
  process.exit(1);
}

// npy descr -> [ONNX Runtime tensor type, TypedArray constructor].
const NPY_TYPES = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
  '<f2': ['float16', Uint16Array], '|i1': ['int8', Int8Array], '<i2': ['int16', Int16Array],
  '<i4': ['int32', Int32Array], '<i8': ['int64', BigInt64Array], '|u1': ['uint8', Uint8Array],
  '<u2': ['uint16', Uint16Array], '<u4': ['uint32', Uint32Array],
  '<u8': ['uint64', BigUint64Array], '|b1': ['bool', Uint8Array],
};
const ORT_TO_DESCR = {};
for (const [descr, [type]] of Object.entries(NPY_TYPES)) ORT_TO_DESCR[type] = descr;

function readNpy(file, ort) {
  const buf = fs.readFileSync(file);
  const bad = (why) => fail(file + ': ' + why);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') bad('not a .npy file');
  const major = buf[6];
  if (major < 1 || major > 3) bad('unsupported .npy format version ' + major);
  const lenBytes = major === 1 ? 2 : 4;
  const headerLen = lenBytes === 2 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const dataStart = 8 + lenBytes + headerLen;
  if (dataStart > buf.length) bad('truncated header');
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', 8 + lenBytes, dataStart);
  const descr = (/'descr'\s*:\s*'([^']*)'/.exec(header) || [])[1];
  const fortran = (/'fortran_order'\s*:\s*(True|False)/.exec(header) || [])[1];
  const shapeText = (/'shape'\s*:\s*\(([^)]*)\)/.exec(header) || [])[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    bad('cannot parse header ' + JSON.stringify(header));
  }
  if (fortran === 'True') bad('Fortran-order arrays are not supported (save in C order)');
  const entry = NPY_TYPES[descr.replace(/^=/, '<')];
  if (!entry) bad('unsupported dtype ' + descr + ' (little-endian numeric or bool only)');
  const dims = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const numel = dims.reduce((a, b) => a * b, 1);
  const [type, Ctor] = entry;
  const nbytes = numel * Ctor.BYTES_PER_ELEMENT;
  if (dataStart + nbytes !== buf.length) {
    bad(`shape [${dims}] of ${descr} needs ${nbytes} data bytes but the file has ` +
        `${buf.length - dataStart}`);
  }
  // Copy into a fresh, aligned ArrayBuffer: the data offset need not be a multiple of 8.
  const data = new Ctor(buf.buffer.slice(buf.byteOffset + dataStart,
                                         buf.byteOffset + dataStart + nbytes));
  return new ort.Tensor(type, data, dims);
}

function writeNpy(file, tensor) {
  const descr = ORT_TO_DESCR[tensor.type];
  if (!descr) throw new Error(`output type ${tensor.type} cannot be written as .npy`);
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad with spaces so magic + version + length + header + '\n' is a multiple of 64 bytes.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = tensor.data;
  fs.writeFileSync(file, Buffer.concat([
    pre, Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 2 || args[0] === '--help') {
    fail('usage: node ort_run.js MODEL.onnx OUT_DIR (in.npy ... | name=in.npy ... | ' +
         '--manifest inputs.json)');
  }
  const [modelPath, outDir, ...rest] = args;
  const ort = loadOrt();
  let session;
  try {
    session = await ort.InferenceSession.create(modelPath, {executionProviders: ['cpu'], logSeverityLevel: 3});
  } catch (e) {
    fail(modelPath + ': ONNX Runtime cannot load the model: ' + e.message);
  }

  let byName = {};  // input name -> .npy path
  if (rest[0] === '--manifest') {
    if (rest.length !== 2) fail('--manifest takes exactly one JSON file');
    byName = JSON.parse(fs.readFileSync(rest[1], 'utf8'));
  } else if (rest.length && rest.every((a) => a.includes('='))) {
    for (const a of rest) {
      const i = a.indexOf('=');
      byName[a.slice(0, i)] = a.slice(i + 1);
    }
  } else {
    if (rest.length !== session.inputNames.length) {
      fail(`the model has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}) ` +
           `but ${rest.length} .npy files were given`);
    }
    session.inputNames.forEach((name, i) => { byName[name] = rest[i]; });
  }
  const feeds = {};
  for (const [name, file] of Object.entries(byName)) {
    if (!session.inputNames.includes(name)) {
      fail(`'${name}' is not an input of the model (inputs: ${session.inputNames.join(', ')})`);
    }
    feeds[name] = readNpy(file, ort);
  }
  const missing = session.inputNames.filter((n) => !(n in feeds));
  if (missing.length) fail('no value given for input(s) ' + missing.join(', '));

  let results;
  try {
    results = await session.run(feeds);
  } catch (e) {
    fail(modelPath + ': ONNX Runtime failed to run the model: ' + e.message);
  }
  fs.mkdirSync(outDir, {recursive: true});
  const used = new Set();
  for (const name of session.outputNames) {
    if (/[\t\n\r]/.test(name)) fail(`output name ${JSON.stringify(name)} has control characters`);
    let file = name.replace(/[^A-Za-z0-9._-]/g, '_') || 'output';
    if (file.startsWith('.')) file = '_' + file.slice(1);
    for (let k = 1; used.has(file); ++k) file = `${name.replace(/[^A-Za-z0-9._-]/g, '_')}_${k}`;
    used.add(file);
    try {
      writeNpy(path.join(outDir, file + '.npy'), results[name]);
    } catch (e) {
      fail(`output '${name}': ${e.message}`);
    }
    process.stdout.write(`${file}.npy\t${name}\n`);
  }
}

main().catch((e) => fail(e.stack || String(e)));
