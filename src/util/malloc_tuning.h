#pragma once

namespace nt {

// Buffers of hundreds of KiB and more (KV cache blocks, step activations, logits) come and go as
// sequences start and finish. glibc raises its mmap threshold after such a buffer is freed, so
// later ones of that size come from the heap, where freed space is not returned to the system
// and the resident set creeps up with fragmentation (measured: +20 MiB over three rounds of
// nt_bench). Fixing the threshold keeps them in their own mappings, returned when freed.
// Call once, at program start.
void fix_malloc_mmap_threshold();

}  // namespace nt
