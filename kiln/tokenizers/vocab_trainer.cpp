#include "kiln/tokenizers/vocab_trainer.h"

#include <algorithm>
#include <array>
#include <queue>
#include <unordered_map>

#include "kiln/tensor/error.h"
#include "kiln/tokenizers/unicode.h"

namespace kiln::text {

namespace {

// A distinct word of the corpus as a sequence of token ids, with how often it occurs.
struct TrainWord {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

// The incremental pair-merging engine both trainers share.
//   pairs_[p]        count of pair p over the corpus (sum of word counts times occurrences) and the
//                    words that may contain it (a superset: entries go stale, they are re-checked)
//   token_count_[t]  occurrences of token t (for the likelihood score)
//   heap_            candidate pairs by score; an entry is valid while its score and count equal
//                    the pair's current ones. Every change of a pair's score pushes a fresh entry,
//                    so stale entries can simply be dropped when popped.
class PairMerger {
 public:
  PairMerger(std::vector<TrainWord> words, size_t n_tokens, WordPieceScore score,
             int64_t min_frequency)
      : words_(std::move(words)),
        score_mode_(score),
        min_frequency_(std::max<int64_t>(min_frequency, 1)),
        token_count_(n_tokens, 0),
        token_pairs_(n_tokens),
        word_stamp_(words_.size(), 0) {
    for (uint32_t w = 0; w < words_.size(); ++w) {
      const TrainWord& word = words_[w];
      for (size_t i = 0; i < word.symbols.size(); ++i) {
        token_count_[word.symbols[i]] += word.count;
        if (i + 1 < word.symbols.size()) {
          PairInfo& p = pairs_[pair_id(word.symbols[i], word.symbols[i + 1])];
          p.count += word.count;
          if (p.words.empty() || p.words.back() != w) p.words.push_back(w);
        }
      }
    }
    for (uint32_t p = 0; p < pairs_.size(); ++p) push(p);
  }

  // Merges pairs while new_token(a, b) -> id keeps being called: it returns the merged token's id
  // (possibly an existing one) or -1 to stop. Ends early when no pair reaches min_frequency.
  template <typename NewToken>
  void run(NewToken&& new_token) {
    while (true) {
      const int64_t best = pop_best();
      if (best < 0) return;
      const int32_t a = pairs_[best].a, b = pairs_[best].b;
      const int32_t t = new_token(a, b);
      if (t < 0) return;
      if (static_cast<size_t>(t) >= token_count_.size()) {
        token_count_.resize(t + 1, 0);
        token_pairs_.resize(t + 1);
      }
      merge(static_cast<uint32_t>(best), a, b, t);
    }
  }

 private:
  struct PairInfo {
    int32_t a = 0, b = 0;
    int64_t count = 0;
    std::vector<uint32_t> words;
    uint32_t dirty_stamp = 0;
  };
  struct Entry {
    double score;
    int64_t count;
    int32_t a, b;
    uint32_t pair;
    // Max-heap order: higher score, then higher count, then smaller ids.
    bool operator<(const Entry& o) const {
      if (score != o.score) return score < o.score;
      if (count != o.count) return count < o.count;
      if (a != o.a) return a > o.a;
      return b > o.b;
    }
  };

  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  uint32_t pair_id(int32_t a, int32_t b) {
    const auto [it, inserted] = pair_index_.try_emplace(key(a, b), 0);
    if (inserted) {
      it->second = static_cast<uint32_t>(pairs_.size());
      pairs_.push_back(PairInfo{a, b, 0, {}, 0});
      if (score_mode_ == WordPieceScore::kLikelihood) {
        token_pairs_[a].push_back(it->second);
        if (b != a) token_pairs_[b].push_back(it->second);
      }
    }
    return it->second;
  }

  double score(const PairInfo& p) const {
    if (score_mode_ == WordPieceScore::kFrequency) return static_cast<double>(p.count);
    return static_cast<double>(p.count) /
           (static_cast<double>(token_count_[p.a]) * static_cast<double>(token_count_[p.b]));
  }

  void push(uint32_t p) {
    const PairInfo& info = pairs_[p];
    if (info.count >= min_frequency_) heap_.push({score(info), info.count, info.a, info.b, p});
  }

  int64_t pop_best() {
    while (!heap_.empty()) {
      const Entry e = heap_.top();
      heap_.pop();
      const PairInfo& info = pairs_[e.pair];
      if (info.count >= min_frequency_ && info.count == e.count && score(info) == e.score) {
        return e.pair;
      }
    }
    return -1;
  }

  void mark_dirty(uint32_t p) {
    if (pairs_[p].dirty_stamp == stamp_) return;
    pairs_[p].dirty_stamp = stamp_;
    dirty_.push_back(p);
  }

  // Replaces every occurrence of (a, b) by t in the words that hold it and updates the counts.
  void merge(uint32_t best, int32_t a, int32_t b, int32_t t) {
    ++stamp_;
    dirty_.clear();
    std::vector<uint32_t> candidates = std::move(pairs_[best].words);
    pairs_[best].words.clear();
    std::vector<int32_t> merged;
    for (const uint32_t w : candidates) {
      if (word_stamp_[w] == stamp_) continue;
      word_stamp_[w] = stamp_;
      TrainWord& word = words_[w];
      std::vector<int32_t>& s = word.symbols;
      bool present = false;
      for (size_t i = 0; i + 1 < s.size() && !present; ++i) present = s[i] == a && s[i + 1] == b;
      if (!present) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint32_t p = pair_index_.at(key(s[i], s[i + 1]));
        pairs_[p].count -= word.count;
        mark_dirty(p);
      }
      merged.clear();
      int64_t k = 0;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          merged.push_back(t);
          i += 2;
          ++k;
        } else {
          merged.push_back(s[i]);
          ++i;
        }
      }
      s.swap(merged);
      token_count_[a] -= k * word.count;
      token_count_[b] -= k * word.count;
      token_count_[t] += k * word.count;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint32_t p = pair_id(s[i], s[i + 1]);
        PairInfo& info = pairs_[p];
        info.count += word.count;
        if ((s[i] == t || s[i + 1] == t) && (info.words.empty() || info.words.back() != w)) {
          info.words.push_back(w);
        }
        mark_dirty(p);
      }
    }
    if (score_mode_ == WordPieceScore::kLikelihood) {
      // count(a) and count(b) fell, so every pair holding a or b scores higher now.
      for (const int32_t tok : {a, b}) {
        std::vector<uint32_t>& list = token_pairs_[tok];
        size_t keep = 0;
        for (const uint32_t p : list) {
          if (pairs_[p].count <= 0) continue;  // gone from the corpus: forget it
          list[keep++] = p;
          mark_dirty(p);
        }
        list.resize(keep);
      }
    }
    for (const uint32_t p : dirty_) push(p);
    if (heap_.size() > 4 * pairs_.size() + (1u << 20)) rebuild_heap();
  }

  void rebuild_heap() {
    heap_ = {};
    for (uint32_t p = 0; p < pairs_.size(); ++p) push(p);
  }

  std::vector<TrainWord> words_;
  WordPieceScore score_mode_;
  int64_t min_frequency_;
  std::vector<int64_t> token_count_;
  std::vector<std::vector<uint32_t>> token_pairs_;  // likelihood mode: pairs holding the token
  std::vector<PairInfo> pairs_;
  std::unordered_map<uint64_t, uint32_t> pair_index_;
  std::priority_queue<Entry> heap_;
  std::vector<uint32_t> word_stamp_;
  std::vector<uint32_t> dirty_;
  uint32_t stamp_ = 0;
};

}  // namespace

BpeTokenizer train_bpe(std::span<const std::string> corpus, const BpeTrainerOptions& options) {
  const SpecialTokens& st = options.special_tokens;
  size_t n_special = 0;
  for (const std::string* s : {&st.cls, &st.sep, &st.pad, &st.unk, &st.mask}) {
    n_special += s->empty() ? 0 : 1;
  }
  KILN_CHECK(options.vocab_size >= 256 + n_special,
             "train_bpe: vocab_size {} is smaller than the 256 byte symbols plus {} special tokens",
             options.vocab_size, n_special);

  // Count the distinct pre-tokenisation chunks.
  std::unordered_map<std::string_view, int64_t> chunk_counts;
  std::vector<Offset> chunks;
  for (const std::string& text : corpus) {
    chunks.clear();
    gpt2_pre_tokenize(text, chunks);
    for (const Offset& c : chunks)
      ++chunk_counts[std::string_view(text).substr(c.start, c.end - c.start)];
  }
  std::vector<std::pair<std::string_view, int64_t>> sorted(chunk_counts.begin(),
                                                           chunk_counts.end());
  std::sort(sorted.begin(), sorted.end());

  // Ids 0..255: the byte symbols in GPT-2's order ('!'..'~', then the rest), as encoder.json has.
  std::vector<std::string> vocab;
  std::unordered_map<std::string, int32_t> ids;
  std::array<int32_t, 256> byte_id{};
  {
    std::vector<std::pair<char32_t, int>> order;
    for (int b = 0; b < 256; ++b) order.emplace_back(byte_to_unicode(static_cast<uint8_t>(b)), b);
    std::stable_sort(order.begin(), order.end(), [](const auto& x, const auto& y) {
      const bool px = x.first < 256, py = y.first < 256;  // printable bytes map to themselves
      if (px != py) return px;
      return x.first < y.first;
    });
    for (const auto& [cp, b] : order) {
      std::string s;
      append_utf8(s, cp);
      byte_id[b] = static_cast<int32_t>(vocab.size());
      ids.emplace(s, byte_id[b]);
      vocab.push_back(std::move(s));
    }
  }
  std::vector<TrainWord> words;
  words.reserve(sorted.size());
  for (const auto& [chunk, count] : sorted) {
    TrainWord w;
    w.count = count;
    for (const char c : chunk) w.symbols.push_back(byte_id[static_cast<uint8_t>(c)]);
    words.push_back(std::move(w));
  }

  std::vector<std::pair<std::string, std::string>> merges;
  const size_t max_tokens = options.vocab_size - n_special;
  PairMerger merger(std::move(words), vocab.size(), WordPieceScore::kFrequency,
                    options.min_frequency);
  merger.run([&](int32_t a, int32_t b) -> int32_t {
    std::string s = vocab[a] + vocab[b];
    const auto it = ids.find(s);
    if (it == ids.end() && vocab.size() >= max_tokens) return -1;
    merges.emplace_back(vocab[a], vocab[b]);
    if (it != ids.end()) return it->second;
    const auto id = static_cast<int32_t>(vocab.size());
    ids.emplace(s, id);
    vocab.push_back(std::move(s));
    return id;
  });
  BpeTokenizer tok(std::move(vocab), std::move(merges));
  tok.set_special_tokens(st);
  return tok;
}

WordPieceTokenizer train_wordpiece(std::span<const std::string> corpus,
                                   const WordPieceTrainerOptions& options) {
  const std::string& prefix = options.continuing_subword_prefix;
  const std::string unk = "[UNK]";
  KILN_CHECK(std::find(options.special_tokens.begin(), options.special_tokens.end(), unk) !=
                 options.special_tokens.end(),
             "train_wordpiece: special_tokens must contain \"[UNK]\" (the unknown-word token)");
  const size_t max_chars = WordPieceOptions{}.max_input_chars_per_word;

  // Count the distinct words, as the BasicTokenizer splits them.
  const BasicTokenizer basic(options.basic);
  std::unordered_map<std::u32string, int64_t> word_counts;
  BasicTokenizer::Words words_buf;
  for (const std::string& text : corpus) {
    basic.split(text, 0, words_buf);
    for (size_t i = 0; i < words_buf.size(); ++i) {
      const std::u32string_view w = words_buf.word(i);
      if (w.size() <= max_chars) ++word_counts[std::u32string(w)];
    }
  }
  std::vector<std::pair<std::u32string, int64_t>> sorted(word_counts.begin(), word_counts.end());
  std::sort(sorted.begin(), sorted.end());

  // The alphabet: the limit_alphabet most frequent characters.
  std::unordered_map<char32_t, int64_t> char_counts;
  for (const auto& [w, count] : sorted) {
    for (const char32_t c : w) char_counts[c] += count;
  }
  std::vector<std::pair<char32_t, int64_t>> chars(char_counts.begin(), char_counts.end());
  std::sort(chars.begin(), chars.end(), [](const auto& x, const auto& y) {
    return x.second != y.second ? x.second > y.second : x.first < y.first;
  });
  if (chars.size() > options.limit_alphabet) chars.resize(options.limit_alphabet);
  std::sort(chars.begin(), chars.end());
  std::unordered_map<char32_t, bool> kept;
  for (const auto& [c, n] : chars) kept[c] = true;

  // Vocabulary: specials, then "c" for characters seen word-initially, then "##c" for those seen
  // inside words.
  std::vector<std::string> vocab;
  std::unordered_map<std::string, int32_t> ids;
  const auto add = [&](std::string s) {
    const auto [it, inserted] = ids.try_emplace(s, static_cast<int32_t>(vocab.size()));
    if (inserted) vocab.push_back(std::move(s));
    return it->second;
  };
  for (const std::string& s : options.special_tokens) add(s);
  std::unordered_map<char32_t, bool> initial, inner;
  std::vector<std::pair<std::u32string, int64_t>> usable;
  for (auto& [w, count] : sorted) {
    if (!std::all_of(w.begin(), w.end(), [&](char32_t c) { return kept.count(c) > 0; })) continue;
    initial[w[0]] = true;
    for (size_t i = 1; i < w.size(); ++i) inner[w[i]] = true;
    usable.emplace_back(std::move(w), count);
  }
  std::unordered_map<char32_t, int32_t> initial_id, inner_id;
  for (const auto& [c, n] : chars) {
    if (!initial.count(c)) continue;
    std::string s;
    append_utf8(s, c);
    initial_id[c] = add(std::move(s));
  }
  for (const auto& [c, n] : chars) {
    if (!inner.count(c)) continue;
    std::string s = prefix;
    append_utf8(s, c);
    inner_id[c] = add(std::move(s));
  }
  KILN_CHECK(
      vocab.size() <= options.vocab_size,
      "train_wordpiece: vocab_size {} cannot hold the {} special tokens and alphabet entries "
      "(lower limit_alphabet, now {})",
      options.vocab_size, vocab.size(), options.limit_alphabet);

  std::vector<TrainWord> words;
  words.reserve(usable.size());
  for (const auto& [w, count] : usable) {
    TrainWord tw;
    tw.count = count;
    tw.symbols.push_back(initial_id.at(w[0]));
    for (size_t i = 1; i < w.size(); ++i) tw.symbols.push_back(inner_id.at(w[i]));
    words.push_back(std::move(tw));
  }

  PairMerger merger(std::move(words), vocab.size(), options.score, options.min_frequency);
  merger.run([&](int32_t a, int32_t b) -> int32_t {
    std::string s = vocab[a];
    s.append(vocab[b], vocab[b].starts_with(prefix) ? prefix.size() : 0);
    if (const auto it = ids.find(s); it != ids.end()) return it->second;
    if (vocab.size() >= options.vocab_size) return -1;
    return add(std::move(s));
  });

  WordPieceOptions wo;
  wo.basic = options.basic;
  wo.unk_token = unk;
  wo.continuing_subword_prefix = prefix;
  return WordPieceTokenizer(std::move(vocab), std::move(wo));
}

}  // namespace kiln::text
