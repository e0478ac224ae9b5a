#pragma once
// NumPy .npz archives (numpy.savez / savez_compressed): a ZIP of NAME.npy members, read with libzip
// (stored and deflate members; libzip checks each member's CRC). Every member must be a .npy
// array that npy.h accepts. Errors are one-line nt::Error naming the archive and the member.
#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "sae/npy.h"

namespace nt {

// Arrays by member name without ".npy" ("W_enc.npy" -> "W_enc").
using NpzArrays = std::map<std::string, NpyArray>;

NpzArrays read_npz(const std::string& path);
// The same from an archive in memory; `where` names it in messages.
NpzArrays read_npz_bytes(std::span<const uint8_t> bytes, const std::string& where);

}  // namespace nt
