/* The cuGetProcAddress table, generated from entry_points.py into
 * generated/ox_entry_points.c. Kept apart from orionx/cuda.h: the table
 * names implementations by address only, whatever their C types. */
#ifndef OX_PROC_H
#define OX_PROC_H

#include <stddef.h>

#define OX_EXPORT __attribute__((visibility("default")))
#define OX_PROC_VERSIONS_MAX 4

struct ox_proc_version {
    int abi_version;  /* CUDA version that introduced it, 3020 for 3.2 */
    void *symbol;     /* its implementation */
};

struct ox_proc_entry {
    const char *base_name;  /* what cuGetProcAddress is asked for */
    int served;             /* 0: a stub answering CUDA_ERROR_NOT_SUPPORTED */
    int version_count;
    struct ox_proc_version versions[OX_PROC_VERSIONS_MAX];  /* oldest first */
    struct ox_proc_version ptds;  /* per-thread default stream; symbol NULL if none */
};

extern const struct ox_proc_entry ox_proc_entries[];
extern const size_t ox_proc_entry_count;

/* The stub of an exported name not served yet: one line on stderr naming
 * SYMBOL, then CUDA_ERROR_NOT_SUPPORTED (as an int: see above). */
int ox_unserved(const char *symbol);

#endif
