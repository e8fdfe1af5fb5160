#!/usr/bin/env node
// Reference token ids from gpt-3-encoder@1.1.4 (Encoder.js, the JS port of GPT-2's encoder.py),
// for tests/tokenizers/bpe_test.cpp.
//   node tests/tokenizers/gpt2_reference.js NODE_MODULES files LIST_FILE OUT_FILE
//   node tests/tokenizers/gpt2_reference.js NODE_MODULES texts JSON_FILE OUT_FILE
// "files": LIST_FILE holds one file path per line. Each file's bytes are decoded as UTF-8 the WHATWG
// way (invalid sequences -> U+FFFD, a leading BOM kept as text). "texts": JSON_FILE is a JSON array
// of strings. OUT_FILE gets one line per input: "<number of ids> <id> <id> ...". The C++ test
// decodes the same bytes with kiln::text::sanitize_utf8 and compares token for token.
//
// Encoder.js keys merge ranks by the string `${a},${b}` where GPT-2's encoder.py uses the pair
// (a, b); 24 keys of vocab.bpe are ambiguous that way (e.g. '"' + ',"' and '",' + '"'). Kiln keys by
// the pair. The "texts" test feeds thousands of strings built from quotes, commas and brackets to
// find a divergence; none has shown up.
//
// Encoder.js's encode() grows its result with concat() once per chunk, which is quadratic in the
// number of tokens (8 minutes for 300 e-mails). So each text is encoded line by line, cut before
// every '\n' that follows a non-whitespace character. The pattern must start a new chunk there: no
// alternative matches both a non-space character and a '\n', and matching from a position only
// looks forward (the one lookaround is (?!\S)). The ids are therefore those of one call on the
// whole text; for files under 16 KB the script checks that by also making the single call.
'use strict';
const fs = require('fs');
const path = require('path');

const [nodeModules, mode, inFile, outFile] = process.argv.slice(2);
if (!nodeModules || (mode !== 'files' && mode !== 'texts') || !inFile || !outFile) {
  process.stderr.write('usage: gpt2_reference.js NODE_MODULES files|texts INPUT OUT_FILE\n');
  process.exit(2);
}
let encoder;
try {
  encoder = require(path.join(nodeModules, 'gpt-3-encoder'));
} catch (e) {
  process.stderr.write(`cannot load gpt-3-encoder from ${nodeModules}: ${e.message}\n` +
                       'install it with: npm install --ignore-scripts\n');
  process.exit(3);
}
const decoder = new TextDecoder('utf-8', {fatal: false, ignoreBOM: true});
// Cut points: before each '\n' preceded by a character that is not \s.
function pieces(text) {
  const out = [];
  let start = 0;
  for (let i = 1; i < text.length; i++) {
    if (text[i] === '\n' && !/\s/u.test(text[i - 1])) {
      out.push(text.slice(start, i));
      start = i;
    }
  }
  out.push(text.slice(start));
  return out;
}

const texts = mode === 'texts' ?
    JSON.parse(fs.readFileSync(inFile, 'utf8')) :
    fs.readFileSync(inFile, 'utf8')
        .split('\n')
        .filter(l => l.length > 0)
        .map(f => decoder.decode(fs.readFileSync(f)));
const out = [];
let checked = 0;
for (const text of texts) {
  const ids = [];
  for (const piece of pieces(text)) {
    for (const id of encoder.encode(piece)) ids.push(id);
  }
  if (text.length < 16384) {
    const whole = encoder.encode(text);
    if (whole.length !== ids.length || whole.some((id, i) => id !== ids[i])) {
      process.stderr.write(`line-by-line encoding differs from one call for input ${out.length}\n`);
      process.exit(4);
    }
    checked++;
  }
  out.push(ids.length + (ids.length ? ' ' + ids.join(' ') : ''));
}
process.stderr.write(`gpt2_reference.js: ${texts.length} ${mode} encoded, ${checked} also ` +
                     `checked in one call\n`);
fs.writeFileSync(outFile, out.join('\n') + '\n');
