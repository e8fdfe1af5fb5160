#include "kiln/tokenizers/tokenizer.h"

#include <algorithm>

#include "kiln/io/file.h"
#include "kiln/tensor/error.h"
#include "kiln/tokenizers/bpe.h"
#include "kiln/tokenizers/wordpiece.h"

namespace kiln::text {

namespace {
constexpr std::string_view kConfigFile = "tokenizer_config.json";
constexpr std::string_view kConfigFormat = "kiln-tokenizer";
constexpr int kConfigVersion = 1;
}  // namespace

SpecialTokens SpecialTokens::bert() {
  return {.cls = "[CLS]", .sep = "[SEP]", .pad = "[PAD]", .unk = "[UNK]", .mask = "[MASK]"};
}

SpecialTokens SpecialTokens::byte_level_bpe() {
  return {.cls = "<s>", .sep = "</s>", .pad = "<pad>", .unk = "", .mask = "<mask>"};
}

bool Tokenizer::is_special(int32_t id) const {
  return std::binary_search(special_ids_sorted_.begin(), special_ids_sorted_.end(), id);
}

int32_t Tokenizer::add_special_token(std::string_view token) {
  KILN_CHECK(!token.empty(), "add_special_token: the token is empty");
  for (const auto& [name, id] : specials_) {
    if (name == token) return id;
  }
  const std::optional<int32_t> existing = token_to_id(token);
  const int32_t id = existing ? *existing : append_token(token);
  specials_.emplace_back(std::string(token), id);
  match_order_.push_back(specials_.size() - 1);
  std::stable_sort(match_order_.begin(), match_order_.end(), [&](size_t a, size_t b) {
    return specials_[a].first.size() > specials_[b].first.size();
  });
  special_ids_sorted_.insert(
      std::upper_bound(special_ids_sorted_.begin(), special_ids_sorted_.end(), id), id);
  const auto b = static_cast<uint8_t>(token[0]);
  first_bytes_[b >> 3] |= static_cast<uint8_t>(1u << (b & 7));
  return id;
}

void Tokenizer::set_special_tokens(const SpecialTokens& tokens) {
  const auto resolve = [&](const std::string& name) {
    return name.empty() ? -1 : add_special_token(name);
  };
  cls_id_ = resolve(tokens.cls);
  sep_id_ = resolve(tokens.sep);
  pad_id_ = resolve(tokens.pad);
  unk_id_ = resolve(tokens.unk);
  mask_id_ = resolve(tokens.mask);
  roles_ = tokens;
}

Tokenizer::Segment Tokenizer::split_and_encode(std::string_view text,
                                               bool parse_special_tokens) const {
  Segment seg;
  seg.ids.reserve(text.size() / 3 + 4);
  seg.offsets.reserve(text.size() / 3 + 4);
  if (!parse_special_tokens || specials_.empty()) {
    encode_segment(text, 0, seg.ids, seg.offsets);
    return seg;
  }
  // Cut the text at every occurrence of a special token (the longest name wins at a position) and
  // run the model on the pieces between them.
  size_t piece_start = 0;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<uint8_t>(text[i]);
    bool matched = false;
    if (first_bytes_[c >> 3] & (1u << (c & 7))) {
      for (const size_t k : match_order_) {
        const auto& [name, id] = specials_[k];
        if (text.compare(i, name.size(), name) != 0) continue;
        if (i > piece_start) {
          encode_segment(text.substr(piece_start, i - piece_start), piece_start, seg.ids,
                         seg.offsets);
        }
        seg.ids.push_back(id);
        seg.offsets.push_back({i, i + name.size()});
        i += name.size();
        piece_start = i;
        matched = true;
        break;
      }
    }
    if (!matched) ++i;
  }
  if (piece_start < text.size()) {
    encode_segment(text.substr(piece_start), piece_start, seg.ids, seg.offsets);
  }
  return seg;
}

std::vector<int32_t> Tokenizer::encode_ids(std::string_view text, bool parse_special_tokens) const {
  return split_and_encode(text, parse_special_tokens).ids;
}

std::vector<std::string> Tokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  for (const int32_t id : encode_ids(text)) out.push_back(id_to_token(id));
  return out;
}

Encoding Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  return assemble(split_and_encode(text, options.parse_special_tokens), nullptr, options);
}

Encoding Tokenizer::encode_pair(std::string_view a, std::string_view b,
                                const EncodeOptions& options) const {
  Segment sb = split_and_encode(b, options.parse_special_tokens);
  return assemble(split_and_encode(a, options.parse_special_tokens), &sb, options);
}

Encoding Tokenizer::assemble(Segment a, const Segment* b, const EncodeOptions& options) const {
  const bool specials = options.add_special_tokens;
  const bool pair = b != nullptr;
  // Special tokens the template adds: [cls] A [sep] ([sep]) B [sep].
  const size_t n_cls = specials && cls_id_ >= 0 ? 1 : 0;
  const size_t n_sep = specials && sep_id_ >= 0 ? 1 : 0;
  const size_t n_mid = pair ? n_sep * (roles_.pair_double_sep ? 2 : 1) : 0;
  const size_t n_added = n_cls + n_sep + n_mid;

  size_t len_a = a.ids.size();
  size_t len_b = pair ? b->ids.size() : 0;
  if (options.max_length > 0 && options.truncation != Truncation::kNone &&
      len_a + len_b + n_added > options.max_length) {
    KILN_CHECK(options.max_length >= n_added,
               "encode: max_length {} is smaller than the {} special tokens the template adds "
               "(max_length must leave room for them)",
               options.max_length, n_added);
    const size_t budget = options.max_length - n_added;
    switch (options.truncation) {
      case Truncation::kNone:
        break;
      case Truncation::kLongestFirst:
        // Remove from the longer text, from the second on ties, until both fit.
        while (len_a + len_b > budget) {
          if (len_a > len_b) {
            --len_a;
          } else {
            --len_b;
          }
        }
        break;
      case Truncation::kOnlyFirst:
        KILN_CHECK(len_b <= budget,
                   "encode: only_first truncation cannot fit: the second text alone has {} tokens "
                   "but max_length {} leaves {} for text",
                   len_b, options.max_length, budget);
        len_a = budget - len_b;
        break;
      case Truncation::kOnlySecond:
        KILN_CHECK(pair && len_a <= budget,
                   "encode: only_second truncation cannot fit: the first text alone has {} tokens "
                   "but max_length {} leaves {} for text{}",
                   len_a, options.max_length, budget, pair ? "" : " (and there is no second text)");
        len_b = budget - len_a;
        break;
    }
  }

  Encoding e;
  const size_t total = len_a + len_b + n_added;
  e.ids.reserve(total);
  e.type_ids.reserve(total);
  e.attention_mask.reserve(total);
  e.special_tokens_mask.reserve(total);
  e.offsets.reserve(total);
  const auto push_special = [&](int32_t id, int32_t type) {
    e.ids.push_back(id);
    e.type_ids.push_back(type);
    e.attention_mask.push_back(1);
    e.special_tokens_mask.push_back(1);
    e.offsets.push_back({});
  };
  const auto push_text = [&](const Segment& s, size_t n, int32_t type) {
    for (size_t i = 0; i < n; ++i) {
      e.ids.push_back(s.ids[i]);
      e.type_ids.push_back(type);
      e.attention_mask.push_back(1);
      e.special_tokens_mask.push_back(is_special(s.ids[i]) ? 1 : 0);
      e.offsets.push_back(s.offsets[i]);
    }
  };
  if (n_cls) push_special(cls_id_, 0);
  push_text(a, len_a, 0);
  if (n_sep) push_special(sep_id_, 0);
  if (pair) {
    if (n_sep && roles_.pair_double_sep) push_special(sep_id_, 0);
    push_text(*b, len_b, 1);
    if (n_sep) push_special(sep_id_, 1);
  }
  if (options.padding == Padding::kMaxLength && options.max_length > 0) {
    pad_to(e, options.max_length);
  }
  return e;
}

void Tokenizer::pad_to(Encoding& e, size_t length) const {
  if (e.size() >= length) return;
  KILN_CHECK(pad_id_ >= 0,
             "encode: padding needs a pad token but none is set (set SpecialTokens::pad, e.g. "
             "\"[PAD]\" or \"<pad>\")");
  const size_t n = length - e.size();
  e.ids.insert(e.ids.end(), n, pad_id_);
  e.type_ids.insert(e.type_ids.end(), n, 0);
  e.attention_mask.insert(e.attention_mask.end(), n, 0);
  e.special_tokens_mask.insert(e.special_tokens_mask.end(), n, 1);
  e.offsets.insert(e.offsets.end(), n, Offset{});
}

std::vector<Encoding> Tokenizer::encode_batch(std::span<const std::string> texts,
                                              const EncodeOptions& options) const {
  std::vector<Encoding> out;
  out.reserve(texts.size());
  size_t longest = 0;
  for (const std::string& t : texts) {
    out.push_back(encode(t, options));
    longest = std::max(longest, out.back().size());
  }
  if (options.padding == Padding::kLongest) {
    for (Encoding& e : out) pad_to(e, longest);
  }
  return out;
}

std::vector<Encoding> Tokenizer::encode_pair_batch(std::span<const std::string> a,
                                                   std::span<const std::string> b,
                                                   const EncodeOptions& options) const {
  KILN_CHECK(a.size() == b.size(),
             "encode_pair_batch: {} first texts but {} second texts (one second text per first)",
             a.size(), b.size());
  std::vector<Encoding> out;
  out.reserve(a.size());
  size_t longest = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    out.push_back(encode_pair(a[i], b[i], options));
    longest = std::max(longest, out.back().size());
  }
  if (options.padding == Padding::kLongest) {
    for (Encoding& e : out) pad_to(e, longest);
  }
  return out;
}

void Tokenizer::save(const std::filesystem::path& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  KILN_CHECK_AS(IOError, !ec, "tokenizer save: cannot create directory {}: {}", dir.string(),
                ec.message());
  json::Value config = json::Value::object();
  config["format"] = (json::Value(std::string(kConfigFormat)));
  config["version"] = (json::Value(kConfigVersion));
  config["type"] = (json::Value(std::string(type())));
  json::Value roles = json::Value::object();
  roles["cls"] = (json::Value(roles_.cls));
  roles["sep"] = (json::Value(roles_.sep));
  roles["pad"] = (json::Value(roles_.pad));
  roles["unk"] = (json::Value(roles_.unk));
  roles["mask"] = (json::Value(roles_.mask));
  roles["pair_double_sep"] = (json::Value(roles_.pair_double_sep));
  config["special_tokens"] = (std::move(roles));
  json::Value added = json::Value::array();
  for (const auto& [name, id] : specials_) added.push_back(json::Value(name));
  config["added_special_tokens"] = (std::move(added));
  config["vocab_size"] = (json::Value(vocab_size()));
  save_model(dir, config);
  io::write_text_file(dir / kConfigFile, config.dump() + "\n", "tokenizer save");
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / kConfigFile;
  const json::Value config = io::read_json_file(path);
  const auto field = [&](std::string_view name, json::Value::Kind kind) -> const json::Value& {
    const json::Value* v = config.find(name);
    KILN_CHECK_AS(IOError, v != nullptr && v->kind() == kind,
                  "tokenizer load: {}: field \"{}\" is missing or has the wrong type",
                  path.string(), name);
    return *v;
  };
  KILN_CHECK_AS(IOError, config.is_object(), "tokenizer load: {}: expected a JSON object",
                path.string());
  const std::string& format = field("format", json::Value::Kind::String).as_string();
  KILN_CHECK_AS(IOError, format == kConfigFormat,
                "tokenizer load: {}: format is \"{}\" but \"{}\" was expected", path.string(),
                format, kConfigFormat);
  const std::string& type = field("type", json::Value::Kind::String).as_string();
  std::unique_ptr<Tokenizer> tok;
  if (type == BpeTokenizer::kType) {
    tok = std::make_unique<BpeTokenizer>(BpeTokenizer::load_model(dir, config));
  } else if (type == WordPieceTokenizer::kType) {
    tok = std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::load_model(dir, config));
  } else {
    throw IOError(
        fmt::format("tokenizer load: {}: unknown tokenizer type \"{}\" (expected \"{}\" or \"{}\")",
                    path.string(), type, BpeTokenizer::kType, WordPieceTokenizer::kType));
  }
  const json::Value& added = field("added_special_tokens", json::Value::Kind::Array);
  for (size_t i = 0; i < added.size(); ++i) {
    KILN_CHECK_AS(IOError, added.at(i).is_string(),
                  "tokenizer load: {}: added_special_tokens[{}] is not a string", path.string(), i);
    tok->add_special_token(added.at(i).as_string());
  }
  const json::Value& roles = field("special_tokens", json::Value::Kind::Object);
  const auto role = [&](std::string_view name) -> std::string {
    const json::Value* v = roles.find(name);
    if (v == nullptr) return {};
    KILN_CHECK_AS(IOError, v->is_string(), "tokenizer load: {}: special_tokens.{} is not a string",
                  path.string(), name);
    return v->as_string();
  };
  SpecialTokens st{.cls = role("cls"),
                   .sep = role("sep"),
                   .pad = role("pad"),
                   .unk = role("unk"),
                   .mask = role("mask")};
  if (const json::Value* d = roles.find("pair_double_sep"); d != nullptr && d->is_bool()) {
    st.pair_double_sep = d->as_bool();
  }
  tok->set_special_tokens(st);
  if (const json::Value* n = config.find("vocab_size"); n != nullptr && n->is_number()) {
    KILN_CHECK_AS(IOError, n->as_double() == tok->vocab_size(),
                  "tokenizer load: {}: vocab_size is {} but the files hold {} tokens",
                  path.string(), n->as_double(), tok->vocab_size());
  }
  return tok;
}

}  // namespace kiln::text
