#include "util/malloc_tuning.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace nt {

void fix_malloc_mmap_threshold() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
}

}  // namespace nt
