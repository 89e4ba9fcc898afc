#ifndef ENVHUB_ALLOCATOR_H
#define ENVHUB_ALLOCATOR_H

#include <stddef.h>

/// Bytes the C allocator holds free in its arenas, taken by none (glibc's mallinfo2
/// `fordblks`, over every arena); 0 where that is not known.
size_t envhub_allocator_free_bytes(void);

/// Gives the free pages inside the allocator's arenas back to the system (glibc's
/// `malloc_trim(0)`). Returns 1 when some went back, 0 otherwise or where not supported.
int envhub_allocator_trim(void);

#endif
