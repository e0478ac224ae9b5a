#pragma once
#include <cstddef>

namespace nt {

// Faults in the pages of [p, p + bytes) in one system call (madvise MADV_POPULATE_READ / _WRITE,
// Linux 5.14+), which is much cheaper than a page fault per 4 KiB on first touch, and takes the
// cost where the memory is set up rather than in the middle of a timed loop. Advisory: a kernel
// without it, or a range that is not mapped, leaves the pages to fault in as usual.
// for_write: the pages will be written (anonymous memory: allocated and zeroed now);
// otherwise read (a file mapping: read in from the page cache).
void populate_pages(const void* p, size_t bytes, bool for_write);

}  // namespace nt
