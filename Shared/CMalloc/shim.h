#include <malloc.h>

/* glibc's allocator controls, which the Glibc module does not bring in. */
static inline int wb_malloc_arena_max(int arenas) { return mallopt(M_ARENA_MAX, arenas); }
static inline int wb_malloc_trim(void) { return malloc_trim(0); }
