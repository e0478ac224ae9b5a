#include "sae/npz.h"

#include <zip.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "util/error.h"

namespace nt {

namespace {

struct ArchiveCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct MemberCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};
using Archive = std::unique_ptr<zip_t, ArchiveCloser>;

std::string zip_error_text(int code) {
  zip_error_t e;
  zip_error_init_with_code(&e, code);
  std::string s = zip_error_strerror(&e);
  zip_error_fini(&e);
  return s;
}

// Deflate expands at most ~1032:1; a member claiming more than that is corrupt (and would make us
// allocate what the archive cannot hold).
constexpr uint64_t kMaxExpansion = 1100;

std::vector<uint8_t> read_member(zip_t* z, const zip_stat_t& st, uint64_t archive_bytes, const std::string& where) {
  const std::string member = where + " member '" + st.name + "'";
  if (st.comp_size > archive_bytes) throw Error(member + ": compressed size larger than the archive");
  if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE)
    throw Error(member + ": compression method " + std::to_string(st.comp_method) +
                " is not supported (stored and deflate are)");
  if (st.size > st.comp_size * kMaxExpansion + 4096) throw Error(member + ": declared size is implausible");
  std::unique_ptr<zip_file_t, MemberCloser> f(zip_fopen_index(z, st.index, 0));
  if (!f) throw Error(member + ": cannot open: " + zip_strerror(z));
  std::vector<uint8_t> bytes(st.size);
  zip_uint64_t done = 0;
  while (done < st.size) {
    const zip_int64_t n = zip_fread(f.get(), bytes.data() + done, st.size - done);
    if (n < 0) throw Error(member + ": " + zip_file_strerror(f.get()));
    if (n == 0) throw Error(member + ": shorter than its declared size");
    done += static_cast<zip_uint64_t>(n);
  }
  uint8_t extra;
  const zip_int64_t n = zip_fread(f.get(), &extra, 1);  // reaching the end checks the CRC
  if (n != 0) throw Error(member + ": " + (n < 0 ? std::string(zip_file_strerror(f.get())) : "longer than its declared size"));
  return bytes;
}

bool printable(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7f) return false;
  return true;
}

NpzArrays read_archive(zip_t* z, uint64_t archive_bytes, const std::string& where) {
  const zip_int64_t entries = zip_get_num_entries(z, 0);
  if (entries <= 0) throw Error(where + ": empty .npz archive");
  NpzArrays arrays;
  for (zip_int64_t i = 0; i < entries; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z, static_cast<zip_uint64_t>(i), 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) ||
        !(st.valid & ZIP_STAT_SIZE) || !(st.valid & ZIP_STAT_COMP_SIZE) || !(st.valid & ZIP_STAT_COMP_METHOD))
      throw Error(where + ": unreadable .npz entry " + std::to_string(i) + ": " + zip_strerror(z));
    std::string name = st.name;
    if (!printable(name)) throw Error(where + ": .npz entry " + std::to_string(i) + " has a non-printable name");
    if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".npy") != 0)
      throw Error(where + ": .npz member '" + name + "' is not a .npy array");
    name.resize(name.size() - 4);
    if (arrays.count(name)) throw Error(where + ": .npz member '" + st.name + "' appears twice");
    arrays[name] = parse_npy(read_member(z, st, archive_bytes, where), where + " member '" + st.name + "'");
  }
  return arrays;
}

}  // namespace

NpzArrays read_npz(const std::string& path) {
  int code = 0;
  Archive z(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code));
  if (!z) throw Error(path + ": cannot read .npz archive: " + zip_error_text(code));
  std::error_code ec;
  const uintmax_t bytes = std::filesystem::file_size(path, ec);
  return read_archive(z.get(), ec ? 0 : static_cast<uint64_t>(bytes), path);
}

NpzArrays read_npz_bytes(std::span<const uint8_t> bytes, const std::string& where) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (!src) {
    const std::string text = zip_error_strerror(&error);
    zip_error_fini(&error);
    throw Error(where + ": cannot read .npz archive: " + text);
  }
  Archive z(zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &error));
  if (!z) {
    zip_source_free(src);
    const std::string text = zip_error_strerror(&error);
    zip_error_fini(&error);
    throw Error(where + ": cannot read .npz archive: " + text);
  }
  zip_error_fini(&error);
  return read_archive(z.get(), bytes.size(), where);
}

}  // namespace nt
