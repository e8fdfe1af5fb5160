#include "kiln/track/hash.h"

#include <openssl/evp.h>

#include <array>
#include <fstream>
#include <memory>
#include <vector>

#include "kiln/tensor/error.h"

namespace kiln::track {

namespace {

struct DigestDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    KILN_CHECK(ctx_ && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1,
               "sha256: OpenSSL could not start a digest");
  }
  void update(const void* data, size_t n) {
    KILN_CHECK(EVP_DigestUpdate(ctx_.get(), data, n) == 1, "sha256: OpenSSL digest update failed");
  }
  std::string hex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int n = 0;
    KILN_CHECK(EVP_DigestFinal_ex(ctx_.get(), md.data(), &n) == 1,
               "sha256: OpenSSL digest final failed");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * n);
    for (unsigned int i = 0; i < n; ++i) {
      out.push_back(kHex[md[i] >> 4]);
      out.push_back(kHex[md[i] & 15]);
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, DigestDeleter> ctx_;
};

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex();
}

std::string sha256_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  KILN_CHECK_AS(IOError, in.good(), "sha256: cannot open {}", file.string());
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  KILN_CHECK_AS(IOError, in.eof(), "sha256: read error in {}", file.string());
  return h.hex();
}

std::string read_file_bytes(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  KILN_CHECK_AS(IOError, in.good(), "cannot open {}", file.string());
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  KILN_CHECK_AS(IOError, !in.bad(), "read error in {}", file.string());
  return out;
}

}  // namespace kiln::track
