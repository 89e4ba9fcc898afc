#include "allocator.h"

#include <stdlib.h>  // defines __GLIBC__ with glibc

#if defined(__GLIBC__)
#include <malloc.h>

size_t envhub_allocator_free_bytes(void) { return mallinfo2().fordblks; }

int envhub_allocator_trim(void) { return malloc_trim(0); }

void envhub_allocator_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

#else

size_t envhub_allocator_free_bytes(void) { return 0; }

int envhub_allocator_trim(void) { return 0; }

void envhub_allocator_keep_freed_memory(void) {}

#endif
