#!/usr/bin/python3
"""Draws a pre-training run's curves from its log.csv (what `kiln pretrain` writes) into a PNG for
the model card, against tokens seen: ELECTRA's total loss, its generator's masked-LM loss, and the
discriminator's loss and accuracy. With a second log (a masked-LM run continued from the first's
encoder, `kiln pretrain --init`), its masked-LM loss is drawn after the first run's tokens.

Usage: plot_pretrain.py RUN/log.csv [STAGE2/log.csv] OUT.png   (Debian's python3-matplotlib)
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    rows = list(csv.DictReader(open(path)))
    tokens = [int(r["tokens_seen"]) / 1e6 for r in rows]
    return rows, tokens, (lambda k: [float(r[k]) for r in rows])


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    rows, tokens, col = read(sys.argv[1])
    stage2 = read(sys.argv[2]) if len(sys.argv) == 4 else None
    panels = 4 if stage2 else 3
    fig, axes = plt.subplots(1, panels, figsize=(4.4 * panels, 3.6))
    axes[0].plot(tokens, col("loss"), color="#1f4e79")
    axes[0].set_title("stage 1: ELECTRA total loss\n(generator + 50 x discriminator)")
    axes[1].plot(tokens, col("generator_loss"), color="#c55a11")
    axes[1].set_title("stage 1: generator masked-LM loss (nats)")
    ax = axes[2]
    ax.plot(tokens, col("discriminator_loss"), color="#548235", label="loss (BCE)")
    ax.set_title("stage 1: discriminator")
    ax2 = ax.twinx()
    ax2.plot(tokens, col("disc_accuracy"), color="#7f6000", label="accuracy")
    ax.legend(loc="upper left")
    ax2.legend(loc="upper right")
    if stage2:
        _, tokens2, col2 = stage2
        offset = tokens[-1] if tokens else 0.0
        axes[3].plot([t + offset for t in tokens2], col2("loss"), color="#7030a0")
        axes[3].set_title("stage 2: masked-LM loss (nats),\ncontinued from stage 1's encoder")
    for a in axes:
        a.set_xlabel("tokens seen (millions)")
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[-1], dpi=110)


if __name__ == "__main__":
    main()
