#include "allocator.h"

#include <stdlib.h>  // defines __GLIBC__ with glibc

#if defined(__GLIBC__)
#include <malloc.h>

size_t envhub_allocator_free_bytes(void) { return mallinfo2().fordblks; }

int envhub_allocator_trim(void) { return malloc_trim(0); }

#else

size_t envhub_allocator_free_bytes(void) { return 0; }

int envhub_allocator_trim(void) { return 0; }

#endif
