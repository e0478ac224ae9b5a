#pragma once
// SHA-256 (FIPS 180-4), streaming. Used to verify downloaded LFS blobs against their Hub ETag,
// which is the hex SHA-256 of the file's content. Self-contained so the build needs no crypto library.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nt {

class Sha256 {
 public:
  Sha256() { reset(); }
  void reset();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Finishes and returns the digest as 64 lower-case hex digits; the object is reset afterwards.
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_{};
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes
};

// Hex SHA-256 of a string.
std::string sha256_hex(std::string_view data);

}  // namespace nt
