#!/usr/bin/python3
"""Draws a pre-training run's curves from its log.csv (what `kiln pretrain` writes) into a PNG for
the model card: the total loss, the ELECTRA generator's MLM loss, and the discriminator's loss and
accuracy, against tokens seen.

Usage: plot_pretrain.py RUN/log.csv OUT.png   (Debian's python3-matplotlib)
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1])))
    tokens = [int(r["tokens_seen"]) / 1e6 for r in rows]
    col = lambda k: [float(r[k]) for r in rows]  # noqa: E731
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(tokens, col("loss"), color="#1f4e79")
    axes[0].set_title("total loss (generator + 50 x discriminator)")
    axes[1].plot(tokens, col("generator_loss"), color="#c55a11")
    axes[1].set_title("generator masked-LM loss (nats)")
    ax = axes[2]
    ax.plot(tokens, col("discriminator_loss"), color="#548235", label="loss (BCE)")
    ax.set_title("discriminator (replaced-token detection)")
    ax2 = ax.twinx()
    ax2.plot(tokens, col("disc_accuracy"), color="#7f6000", label="accuracy")
    ax.legend(loc="upper left")
    ax2.legend(loc="upper right")
    for a in axes:
        a.set_xlabel("tokens seen (millions)")
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
