#ifndef ENVHUB_ALLOCATOR_H
#define ENVHUB_ALLOCATOR_H

#include <stddef.h>

/// Bytes the C allocator holds free in its arenas, taken by none (glibc's mallinfo2
/// `fordblks`, over every arena); 0 where that is not known.
size_t envhub_allocator_free_bytes(void);

/// Gives the free pages inside the allocator's arenas back to the system (glibc's
/// `malloc_trim(0)`). Returns 1 when some went back, 0 otherwise or where not supported.
int envhub_allocator_trim(void);

/// Has the C allocator keep the memory it frees for reuse: blocks up to 4 MiB come from its
/// arenas instead of mappings of their own, and an arena's free top goes back to the system
/// only past 64 MiB (glibc's `mallopt` M_MMAP_THRESHOLD and M_TRIM_THRESHOLD, which also stops
/// glibc from moving both as it frees). A stream through the gateway takes a buffer of up to
/// 256 KiB per read and frees it once written; with glibc's defaults the arena's top was
/// handed back and faulted in again, read after read. No effect where not supported.
void envhub_allocator_keep_freed_memory(void);

#endif
