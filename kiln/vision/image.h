#pragma once
// Image decoding and encoding with Debian's libpng and libjpeg-turbo.
//
// An image is a kiln::Tensor of shape (H, W, C), dtype uint8, C = 1 (gray) or 3 (RGB), contiguous,
// row-major with channels interleaved (HWC), not requiring grad — what the decoders produce and the
// encoders take. Images are plain data: nothing here records autograd history.
//
//   Tensor img = vision::read_image("cat.jpg", vision::ColorMode::RGB);  // (H, W, 3) uint8
//   vision::write_png("gray.png", vision::to_gray(img));                 // (H, W, 1)
//
// Conversions done while decoding (so every file comes out as 8-bit gray or RGB):
//   - PNG palette images are expanded to RGB; gray below 8 bits is scaled up to 8 bits;
//   - 16-bit PNG samples are scaled to 8 bits with rounding (v·255/65535, libpng's scale_16);
//   - alpha channels (and tRNS transparency) are dropped: the colour samples are kept as stored,
//     not composited on a background;
//   - JPEG CMYK/YCCK files are rejected (only gray and YCbCr/RGB JPEGs are read).
// Corrupt or truncated files throw kiln::IOError naming the file and the library's reason; libpng's
// and libjpeg's longjmp-based error paths are contained inside the decoder (no C++ object lives
// across a setjmp), so a bad file never leaks or crashes.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kiln/autograd/tensor.h"

namespace kiln::vision {

/// What channel count the caller wants. Keep returns the file's own (gray -> 1, colour -> 3).
enum class ColorMode { Keep, Gray, RGB };

/// The encoded format, detected from the first bytes (never from the file name).
enum class ImageFormat { Unknown, PNG, JPEG };

/// PNG or JPEG from the leading magic bytes.
ImageFormat detect_format(std::span<const uint8_t> bytes);

/// Decodes PNG or JPEG bytes to (H, W, C) uint8. `name` (usually the path) appears in errors.
Tensor decode_image(std::span<const uint8_t> bytes, const std::string& name,
                    ColorMode mode = ColorMode::Keep);

/// Reads and decodes a PNG or JPEG file to (H, W, C) uint8. Throws IOError naming `path` when the
/// file is missing, of another format, corrupt or truncated.
Tensor read_image(const std::string& path, ColorMode mode = ColorMode::Keep);

/// Reads a whole file (IOError naming it when it cannot be read).
std::vector<uint8_t> read_file_bytes(const std::string& path);

/// (H, W, C) uint8 with C in {1, 3} -> 8-bit gray or RGB PNG bytes. Lossless.
std::vector<uint8_t> encode_png(const Tensor& image);
/// (H, W, C) uint8 with C in {1, 3} -> baseline JPEG bytes, quality in [1, 100].
std::vector<uint8_t> encode_jpeg(const Tensor& image, int quality = 90);
/// encode_png / encode_jpeg written to `path` (IOError naming it on failure).
void write_png(const std::string& path, const Tensor& image);
void write_jpeg(const std::string& path, const Tensor& image, int quality = 90);

/// (H, W, 3) -> (H, W, 1) with ITU-R BT.601 luma weights (0.299 R + 0.587 G + 0.114 B, rounded),
/// the weights libjpeg and PIL use; (H, W, 1) is returned as is.
Tensor to_gray(const Tensor& image);
/// (H, W, 1) -> (H, W, 3) by repeating the channel; (H, W, 3) is returned as is.
Tensor to_rgb(const Tensor& image);
/// Converts an (H, W, C) uint8 image to the channel count `mode` asks for.
Tensor convert_color(const Tensor& image, ColorMode mode);

/// Throws ShapeError/TypeError naming `op` unless `image` is (H, W, C) uint8 with C in {1, 3}.
void check_image(const Tensor& image, const char* op);

}  // namespace kiln::vision
