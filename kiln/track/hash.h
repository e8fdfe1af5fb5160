#pragma once
// SHA-256 of files and bytes (OpenSSL's libcrypto), as 64 lower-case hex digits: the content
// address of artifacts and the fingerprint of data files.
#include <filesystem>
#include <string>
#include <string_view>

namespace kiln::track {

/// sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".
std::string sha256_hex(std::string_view bytes);
/// The digest of a file's bytes, read in 1 MiB pieces; throws IOError naming an unreadable file.
std::string sha256_file(const std::filesystem::path& file);
/// The whole file; throws IOError naming it when it cannot be read.
std::string read_file_bytes(const std::filesystem::path& file);

}  // namespace kiln::track
