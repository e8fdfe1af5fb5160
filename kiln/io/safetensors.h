#pragma once
// safetensors (https://github.com/huggingface/safetensors): the checkpoint format Kiln reads and
// writes (kiln_train's checkpoints, text encoders, the tracking store), which PyTorch, JAX, candle and Hugging Face tools read too. Layout:
//
//   [8 bytes]  N, the header length, unsigned little-endian
//   [N bytes]  JSON header: {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
//   ...,
//                            "__metadata__": {"<key>": "<string value>", ...}}
//              (padded with spaces so the data starts 8-byte aligned)
//   [rest]     the tensors' raw little-endian bytes; tensor i occupies [b, e) of this buffer
//
// dtypes: BOOL, U8, I32, I64, F32, F64 (Kiln's six). Other valid safetensors dtypes (F16, BF16, I8,
// ...) are reported as unsupported.
//
//   save_safetensors("w.safetensors", {{"fc.weight", w}, {"fc.bias", b}}, {{"epoch", "3"}});
//   SafetensorsFile f = load_safetensors("w.safetensors");
//   Tensor w2 = f.at("fc.weight");  f.metadata.at("epoch") == "3"
//
// The reader never trusts the file: a header length beyond the file, malformed JSON, an unknown
// dtype, a negative or overflowing shape, a byte span that does not equal shape × dtype size,
// offsets out of the buffer, overlapping or leaving holes (the format requires the buffer to be
// covered exactly), duplicate names and truncated files all throw kiln::IOError naming the file and
// the reason, before any tensor byte is read. The writer is atomic: it writes `path + ".tmp"`,
// flushes and fsyncs it, then renames it over `path`, so a crash mid-save leaves the previous file
// intact.
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/autograd/tensor.h"

namespace kiln {

/// (name, tensor) pairs, in file order.
using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;
/// __metadata__: string keys to string values (safetensors allows nothing else).
using SafetensorsMetadata = std::map<std::string, std::string>;

struct SafetensorsFile {
  NamedTensorList tensors;  // in data-offset order; each a new contiguous leaf tensor
  SafetensorsMetadata metadata;
  /// The tensor named `name`, or nullptr.
  const Tensor* find(std::string_view name) const;
  /// The tensor named `name`; throws naming it (and the file's tensor count) when absent.
  const Tensor& at(std::string_view name) const;
};

/// Writes `tensors` (any layout; stored contiguous) and `metadata` to `path` atomically. Names must
/// be unique and non-empty and may not be "__metadata__". Throws IOError when the file cannot be
/// written.
void save_safetensors(const std::string& path, const NamedTensorList& tensors,
                      const SafetensorsMetadata& metadata = {});
/// Reads a whole file (see the checks above).
SafetensorsFile load_safetensors(const std::string& path);

/// The file's bytes, in memory (what save_safetensors writes).
std::string serialize_safetensors(const NamedTensorList& tensors,
                                  const SafetensorsMetadata& metadata = {});
/// Parses bytes held in memory with the same checks as load_safetensors; `source` names them in
/// errors.
SafetensorsFile parse_safetensors(std::string_view bytes, std::string_view source = "<memory>");

}  // namespace kiln
