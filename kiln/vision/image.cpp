// PNG (libpng) and JPEG (libjpeg-turbo) decoding and encoding.
//
// Both libraries report errors by longjmp. A longjmp that crosses a C++ frame holding an object
// with a destructor skips that destructor (a leak at best), so every libpng/libjpeg call runs
// inside a small C-style function that owns nothing: the library structs, the output buffer and the
// error text live in a state object owned by the caller, whose guard releases them on every path.
// The C-style function returns false when the library jumped back, and the caller throws IOError.
#include "kiln/vision/image.h"

#include <jerror.h>
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>

#include "kiln/io/atomic_file.h"
#include "kiln/tensor/error.h"
#include "kiln/vision/image_internal.h"

namespace kiln::vision {

namespace {

// Refuse headers that claim absurd sizes before allocating (a corrupt header, not a real image).
constexpr uint64_t kMaxPixels = uint64_t{1} << 28;

// ---------------------------------------------------------------- PNG reading

struct PngReadState {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  png_structp png = nullptr;
  png_infop info = nullptr;
  char error[256] = "unknown libpng error";
};

void png_error_to_state(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngReadState*>(png_get_error_ptr(png));
  std::snprintf(s->error, sizeof(s->error), "%s", msg);
  png_longjmp(png, 1);
}

void png_ignore_warning(png_structp, png_const_charp) {}

void png_read_from_memory(png_structp png, png_bytep out, size_t n) {
  auto* s = static_cast<PngReadState*>(png_get_io_ptr(png));
  if (s->size - s->pos < n) png_error(png, "unexpected end of data (file truncated)");
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

// Reads the header and sets the transforms to 8-bit gray or RGB without alpha. Owns nothing.
bool png_read_header(PngReadState& s, uint32_t* width, uint32_t* height, int* channels) {
  if (setjmp(png_jmpbuf(s.png))) return false;
  png_set_read_fn(s.png, &s, png_read_from_memory);
  png_read_info(s.png, s.info);
  const int color = png_get_color_type(s.png, s.info);
  const int depth = png_get_bit_depth(s.png, s.info);
  if (depth == 16) png_set_scale_16(s.png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s.png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(s.png);
  if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(s.png);
  png_set_interlace_handling(s.png);
  png_read_update_info(s.png, s.info);
  *width = png_get_image_width(s.png, s.info);
  *height = png_get_image_height(s.png, s.info);
  *channels = png_get_channels(s.png, s.info);
  return true;
}

bool png_read_pixels(PngReadState& s, png_bytepp rows) {
  if (setjmp(png_jmpbuf(s.png))) return false;
  png_read_image(s.png, rows);
  png_read_end(s.png, nullptr);
  return true;
}

Array decode_png(std::span<const uint8_t> bytes, const std::string& name) {
  PngReadState s;
  s.data = bytes.data();
  s.size = bytes.size();
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, png_error_to_state, png_ignore_warning);
  KILN_CHECK_AS(IOError, s.png != nullptr, "read_image: {}: libpng could not start", name);
  s.info = png_create_info_struct(s.png);
  struct Guard {
    PngReadState& s;
    ~Guard() { png_destroy_read_struct(&s.png, s.info ? &s.info : nullptr, nullptr); }
  } guard{s};
  KILN_CHECK_AS(IOError, s.info != nullptr, "read_image: {}: libpng could not start", name);

  uint32_t w = 0, h = 0;
  int c = 0;
  KILN_CHECK_AS(IOError, png_read_header(s, &w, &h, &c), "read_image: {}: corrupt PNG: {}", name,
                s.error);
  KILN_CHECK_AS(IOError, (c == 1 || c == 3) && w > 0 && h > 0 && uint64_t{w} * h <= kMaxPixels,
                "read_image: {}: unsupported PNG layout {}x{} with {} channels", name, w, h, c);
  Array out({int64_t{h}, int64_t{w}, int64_t{c}}, kUInt8);
  std::vector<png_bytep> rows(h);
  for (uint32_t y = 0; y < h; ++y) rows[y] = out.data<uint8_t>() + size_t{y} * w * c;
  KILN_CHECK_AS(IOError, png_read_pixels(s, rows.data()), "read_image: {}: corrupt PNG: {}", name,
                s.error);
  return out;
}

// ---------------------------------------------------------------- PNG writing

struct PngWriteState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  uint8_t* buf = nullptr;  // malloc'd (grown by realloc inside libpng's callback: no C++ throws)
  size_t size = 0, cap = 0;
  char error[256] = "unknown libpng error";
};

void png_write_error(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngWriteState*>(png_get_error_ptr(png));
  std::snprintf(s->error, sizeof(s->error), "%s", msg);
  png_longjmp(png, 1);
}

void png_write_to_memory(png_structp png, png_bytep data, size_t n) {
  auto* s = static_cast<PngWriteState*>(png_get_io_ptr(png));
  if (s->size + n > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->size + n) cap *= 2;
    auto* grown = static_cast<uint8_t*>(std::realloc(s->buf, cap));
    if (!grown) png_error(png, "out of memory");
    s->buf = grown;
    s->cap = cap;
  }
  std::memcpy(s->buf + s->size, data, n);
  s->size += n;
}

void png_flush_nothing(png_structp) {}

bool png_encode_core(PngWriteState& s, png_bytepp rows, uint32_t w, uint32_t h, int c) {
  if (setjmp(png_jmpbuf(s.png))) return false;
  png_set_write_fn(s.png, &s, png_write_to_memory, png_flush_nothing);
  png_set_IHDR(s.png, s.info, w, h, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_rows(s.png, s.info, rows);
  png_write_png(s.png, s.info, PNG_TRANSFORM_IDENTITY, nullptr);
  return true;
}

// ---------------------------------------------------------------- JPEG

struct JpegError {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit_to_jump(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

// libjpeg reports damaged data (e.g. "Premature end of JPEG file" for a truncated file) as
// warnings (level -1) and carries on with grey filler. Kiln treats them as errors, except stray
// bytes between markers, which many real cameras write and which lose no pixels.
void jpeg_warning_to_jump(j_common_ptr cinfo, int level) {
  if (level >= 0 || cinfo->err->msg_code == JWRN_EXTRANEOUS_DATA) return;
  jpeg_error_exit_to_jump(cinfo);
}

void jpeg_install_errors(JpegError& e, jpeg_error_mgr** slot) {
  *slot = jpeg_std_error(&e.pub);
  e.pub.error_exit = jpeg_error_exit_to_jump;
  e.pub.emit_message = jpeg_warning_to_jump;
  std::snprintf(e.message, sizeof(e.message), "unknown libjpeg error");
}

struct JpegReadState {
  jpeg_decompress_struct cinfo;
  JpegError err;
  bool created = false;
};

bool jpeg_read_header_core(JpegReadState& s, const uint8_t* data, size_t n) {
  if (setjmp(s.err.jump)) return false;
  jpeg_create_decompress(&s.cinfo);
  s.created = true;
  jpeg_mem_src(&s.cinfo, data, static_cast<unsigned long>(n));
  jpeg_read_header(&s.cinfo, TRUE);
  if (s.cinfo.jpeg_color_space == JCS_CMYK || s.cinfo.jpeg_color_space == JCS_YCCK) {
    std::snprintf(s.err.message, sizeof(s.err.message), "CMYK/YCCK JPEGs are not supported");
    return false;
  }
  s.cinfo.out_color_space = s.cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&s.cinfo);
  return true;
}

bool jpeg_read_pixels(JpegReadState& s, uint8_t* out, size_t row_bytes) {
  if (setjmp(s.err.jump)) return false;
  while (s.cinfo.output_scanline < s.cinfo.output_height) {
    JSAMPROW row = out + size_t{s.cinfo.output_scanline} * row_bytes;
    jpeg_read_scanlines(&s.cinfo, &row, 1);
  }
  jpeg_finish_decompress(&s.cinfo);
  return true;
}

Array decode_jpeg(std::span<const uint8_t> bytes, const std::string& name) {
  JpegReadState s;
  std::memset(&s.cinfo, 0, sizeof(s.cinfo));
  jpeg_install_errors(s.err, &s.cinfo.err);
  struct Guard {
    JpegReadState& s;
    ~Guard() {
      if (s.created) jpeg_destroy_decompress(&s.cinfo);
    }
  } guard{s};
  KILN_CHECK_AS(IOError, jpeg_read_header_core(s, bytes.data(), bytes.size()),
                "read_image: {}: corrupt JPEG: {}", name, s.err.message);
  const uint64_t w = s.cinfo.output_width, h = s.cinfo.output_height;
  const int c = s.cinfo.output_components;
  KILN_CHECK_AS(IOError, (c == 1 || c == 3) && w > 0 && h > 0 && w * h <= kMaxPixels,
                "read_image: {}: unsupported JPEG layout {}x{} with {} channels", name, w, h, c);
  Array out({static_cast<int64_t>(h), static_cast<int64_t>(w), int64_t{c}}, kUInt8);
  KILN_CHECK_AS(IOError, jpeg_read_pixels(s, out.data<uint8_t>(), w * c),
                "read_image: {}: corrupt JPEG: {}", name, s.err.message);
  return out;
}

struct JpegWriteState {
  jpeg_compress_struct cinfo;
  JpegError err;
  bool created = false;
  unsigned char* buf = nullptr;  // allocated by libjpeg (jpeg_mem_dest); freed with free()
  unsigned long size = 0;
};

bool jpeg_encode_core(JpegWriteState& s, const uint8_t* pixels, uint32_t w, uint32_t h, int c,
                      int quality) {
  if (setjmp(s.err.jump)) return false;
  jpeg_create_compress(&s.cinfo);
  s.created = true;
  jpeg_mem_dest(&s.cinfo, &s.buf, &s.size);
  s.cinfo.image_width = w;
  s.cinfo.image_height = h;
  s.cinfo.input_components = c;
  s.cinfo.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&s.cinfo);
  jpeg_set_quality(&s.cinfo, quality, TRUE);
  jpeg_start_compress(&s.cinfo, TRUE);
  while (s.cinfo.next_scanline < s.cinfo.image_height) {
    // libjpeg's API takes non-const rows but does not write to them.
    JSAMPROW row = const_cast<uint8_t*>(pixels) + size_t{s.cinfo.next_scanline} * w * c;
    jpeg_write_scanlines(&s.cinfo, &row, 1);
  }
  jpeg_finish_compress(&s.cinfo);
  return true;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes, const char* op) {
  write_file_atomic(
      path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), op);
}

// ---------------------------------------------------------------- colour conversion on Arrays
// The public API below takes and returns Tensors and converts at the boundary.

void check_image(const Array& image, const char* op) {
  KILN_CHECK_TYPE(image.defined() && image.dtype() == kUInt8,
                  "{}: expected an (H, W, C) uint8 image, got dtype {}", op,
                  image.defined() ? dtype_name(image.dtype()) : "undefined");
  KILN_CHECK_SHAPE(image.dim() == 3 && (image.size(2) == 1 || image.size(2) == 3) &&
                       image.size(0) > 0 && image.size(1) > 0,
                   "{}: expected an (H, W, C) image with C = 1 or 3, got shape {}", op,
                   image.shape());
}

Array to_gray(const Array& image) {
  check_image(image, "to_gray");
  if (image.size(2) == 1) return image;
  Array src = image.contiguous();
  const int64_t n = src.size(0) * src.size(1);
  Array out({src.size(0), src.size(1), 1}, kUInt8);
  const uint8_t* p = src.data<uint8_t>();
  uint8_t* q = out.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i, p += 3)
    q[i] = static_cast<uint8_t>((299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
  return out;
}

Array to_rgb(const Array& image) {
  check_image(image, "to_rgb");
  if (image.size(2) == 3) return image;
  return image.expand({image.size(0), image.size(1), 3}).contiguous();
}

Array convert_color(const Array& image, ColorMode mode) {
  switch (mode) {
    case ColorMode::Gray:
      return to_gray(image);
    case ColorMode::RGB:
      return to_rgb(image);
    case ColorMode::Keep:
      break;
  }
  check_image(image, "convert_color");
  return image;
}

}  // namespace

// ---------------------------------------------------------------- public API

void check_image(const Tensor& image, const char* op) {
  check_image(array_of(image), op);
}

ImageFormat detect_format(std::span<const uint8_t> bytes) {
  static constexpr uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPng, 8) == 0) return ImageFormat::PNG;
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
    return ImageFormat::JPEG;
  return ImageFormat::Unknown;
}

Tensor decode_image(std::span<const uint8_t> bytes, const std::string& name, ColorMode mode) {
  Array img;
  switch (detect_format(bytes)) {
    case ImageFormat::PNG:
      img = decode_png(bytes, name);
      break;
    case ImageFormat::JPEG:
      img = decode_jpeg(bytes, name);
      break;
    case ImageFormat::Unknown:
      throw IOError(
          fmt::format("read_image: {}: not a PNG or JPEG file ({} bytes; no PNG or JPEG signature)",
                      name, bytes.size()));
  }
  return Tensor(convert_color(img, mode));
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  KILN_CHECK_AS(IOError, f.good(), "read_image: cannot open {}", path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  KILN_CHECK_AS(IOError, !f.bad(), "read_image: reading {} failed", path);
  return bytes;
}

Tensor read_image(const std::string& path, ColorMode mode) {
  return decode_image(read_file_bytes(path), path, mode);
}

std::vector<uint8_t> encode_png(const Tensor& image) {
  check_image(image, "encode_png");
  Array img = image.data().contiguous();
  const auto h = static_cast<uint32_t>(img.size(0)), w = static_cast<uint32_t>(img.size(1));
  const int c = static_cast<int>(img.size(2));
  std::vector<png_bytep> rows(h);
  for (uint32_t y = 0; y < h; ++y) rows[y] = img.data<uint8_t>() + size_t{y} * w * c;

  PngWriteState s;
  s.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &s, png_write_error, png_ignore_warning);
  KILN_CHECK_AS(IOError, s.png != nullptr, "encode_png: libpng could not start");
  s.info = png_create_info_struct(s.png);
  struct Guard {
    PngWriteState& s;
    ~Guard() {
      png_destroy_write_struct(&s.png, s.info ? &s.info : nullptr);
      std::free(s.buf);
    }
  } guard{s};
  KILN_CHECK_AS(IOError, s.info != nullptr, "encode_png: libpng could not start");
  KILN_CHECK_AS(IOError, png_encode_core(s, rows.data(), w, h, c), "encode_png: {}", s.error);
  return std::vector<uint8_t>(s.buf, s.buf + s.size);
}

std::vector<uint8_t> encode_jpeg(const Tensor& image, int quality) {
  check_image(image, "encode_jpeg");
  KILN_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: quality must be in [1, 100], got {}",
             quality);
  Array img = image.data().contiguous();
  JpegWriteState s;
  std::memset(&s.cinfo, 0, sizeof(s.cinfo));
  jpeg_install_errors(s.err, &s.cinfo.err);
  struct Guard {
    JpegWriteState& s;
    ~Guard() {
      if (s.created) jpeg_destroy_compress(&s.cinfo);
      std::free(s.buf);
    }
  } guard{s};
  KILN_CHECK_AS(
      IOError,
      jpeg_encode_core(s, img.data<uint8_t>(), static_cast<uint32_t>(img.size(1)),
                       static_cast<uint32_t>(img.size(0)), static_cast<int>(img.size(2)), quality),
      "encode_jpeg: {}", s.err.message);
  return std::vector<uint8_t>(s.buf, s.buf + s.size);
}

void write_png(const std::string& path, const Tensor& image) {
  write_bytes(path, encode_png(image), "write_png");
}

void write_jpeg(const std::string& path, const Tensor& image, int quality) {
  write_bytes(path, encode_jpeg(image, quality), "write_jpeg");
}

Tensor to_gray(const Tensor& image) {
  return Tensor(to_gray(array_of(image)));
}

Tensor to_rgb(const Tensor& image) {
  return Tensor(to_rgb(array_of(image)));
}

Tensor convert_color(const Tensor& image, ColorMode mode) {
  return Tensor(convert_color(array_of(image), mode));
}

}  // namespace kiln::vision
