#include "util/populate_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace nt {

void populate_pages(const void* p, size_t bytes, bool for_write) {
  if (bytes == 0) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t b = reinterpret_cast<uintptr_t>(p) / page * page;
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes + page - 1) / page * page;
#if defined(MADV_POPULATE_WRITE) && defined(MADV_POPULATE_READ)
  madvise(reinterpret_cast<void*>(b), e - b, for_write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
#else
  (void)b;
  (void)e;
  (void)for_write;
#endif
}

}  // namespace nt
