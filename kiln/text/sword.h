#pragma once
// Real sentence pairs from two English Bible translations packaged by Debian as SWORD modules
// (sword-text-kjv: King James Version, engKJV2006eb; sword-text-web: World English Bible,
// engWEB2015eb; both public domain). The same verse in both translations is a paraphrase pair
// written by people; pairing different verses gives negatives. About 31,000 positives.
//
//   std::vector<Verse> kjv = read_sword_ztext(kSwordModules / "engKJV2006eb");  // 31,102 verses
//   data::Table pairs = load_bible_pairs(kSwordModules / "engKJV2006eb",
//                                        kSwordModules / "engWEB2015eb",
//                                        {.max_pairs = 10000, .seed = 7});
//   // columns Sentence1 (KJV text), Sentence2 (WEB text), Label (float 1 / 0),
//   //         Reference1, Reference2 ("John.3.16")
//
// The zText format (SWORD's compressed text driver, CompressType=ZIP): per testament ("ot", "nt")
//   <t>.bzs  12-byte records: uint32 LE offset into .bzz, compressed size, uncompressed size
//   <t>.bzv  10-byte records, one per index entry: uint32 LE block, uint32 offset in the inflated
//            block, uint16 size (0 = empty entry)
//   <t>.bzz  the blocks, each one zlib stream
// Index entries follow the module's versification: entry 0 is empty, entry 1 a module header,
// then per book an intro entry (holds <div type="book" sID=...>), per chapter an intro entry
// (holds <chapter osisID="Book.N" sID=...>) and then that chapter's verses 1..n. The reader
// recovers references by walking the entries and reading those tags, so it needs no
// versification tables; it checks that chapters of a book come in order 1, 2, ... .
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/data/columns.h"

namespace kiln::text {

/// One verse: book as its OSIS id ("Gen", "John", "1Cor"), chapter and verse from 1.
struct Verse {
  std::string book;
  int chapter = 0;
  int verse = 0;
  std::string text;  // plain text (osis_to_text)
  /// "John.3.16" (OSIS reference).
  std::string reference() const;
};

/// Plain text of an OSIS verse fragment: keeps the words inside <w>, <q>, <transChange>,
/// <divineName> and other inline tags; drops the whole content of <note> (footnotes, cross
/// references), <title> (headings; the KJV's colophons after the epistles) and <speaker>; drops
/// every tag (block tags such as <div>, <l>, <lb>, <chapter>, <milestone> count as a word break);
/// drops the KJV's ¶ paragraph marks; stops at a closing book tag (<div eID=.. type="book"/>: the
/// WEB puts its glossary after the last verse of Revelation); decodes &amp; &lt; &gt; &quot;
/// &apos; and numeric references; collapses whitespace to single spaces and trims.
std::string osis_to_text(std::string_view osis);

/// Reads a SWORD zText module directory (ot.bzs/.bzv/.bzz and/or nt.*) into its verses in index
/// order (Old Testament, then New). Verses whose text is empty are skipped: entries the
/// translation leaves out of its versification (WEB Acts 8:37) or that hold only a footnote saying
/// the verse is omitted (WEB Sirach 1:5). Throws kiln::IOError naming the file for: a missing
/// directory or no testament; a file size that is not a multiple of its record size; a block
/// number past the .bzs records; a block past the end of .bzz, inflating to another size or
/// failing zlib; an entry whose offset + size runs past its inflated block; chapters out of order.
std::vector<Verse> read_sword_ztext(const std::filesystem::path& module_dir);

/// Where Debian installs SWORD modules: /usr/share/sword/modules/texts/ztext.
std::filesystem::path default_sword_dir();

struct BiblePairsOptions {
  size_t max_pairs = 0;            // 0 = every joined verse as a positive plus matching negatives
  double negative_fraction = 0.5;  // share of rows with label 0, in [0, 1)
  /// Of the negatives, the share whose second verse comes from the same chapter as the first
  /// (harder: same names and topic); the rest pair with a verse anywhere in the Bible.
  double same_chapter_negatives = 0.5;
  /// Drops positives whose texts differ in length (bytes) by more than this factor (0 = keep all):
  /// textual-variant verses such as KJV 1 John 5:7 (the Comma Johanneum, absent in the WEB) or
  /// WEB Rom 14:23, which carries the doxology the KJV numbers Rom 16:25-27.
  double max_length_ratio = 3.0;
  uint64_t seed = 0;  // which verses, which negatives, and the row order
};

/// Joins the verses of two modules on (book, chapter, verse) over the references both have
/// (books one lacks, such as the WEB's deuterocanon, drop out) and builds a shuffled table:
///   Sentence1 (string) text of the first module's verse      (N)
///   Sentence2 (string) text of the second module's verse     (N)
///   Label (float)      1 = the same verse, 0 = a different verse
///   Reference1, Reference2 (string) the two verses' references ("John.3.16")
/// Caveat: the KJV uses the KJV versification and the WEB module NRSVA; a handful of verses are
/// split or numbered differently between them (e.g. 3 John 1:14-15, Rom 14:24-26 / 16:25-27), so
/// a few positives pair overlapping rather than identical content. Deterministic for a seed.
/// Throws kiln::Error when negative_fraction is outside [0, 1) or the modules share no verse.
data::Table load_bible_pairs(const std::filesystem::path& first_dir,
                             const std::filesystem::path& second_dir,
                             const BiblePairsOptions& options = {});

/// The same from verses already read (read_sword_ztext's output for each module).
data::Table make_bible_pairs(const std::vector<Verse>& first, const std::vector<Verse>& second,
                             const BiblePairsOptions& options = {});

}  // namespace kiln::text
