/* The process state's layout, for the files that implement the context and
 * device calls (everything else goes through ox_internal.h's functions). */
#ifndef OX_STATE_H
#define OX_STATE_H

#include "ox_internal.h"

/* Slots 0..device_count-1 are the devices' primary contexts. */
#define OX_CONTEXTS_MAX 1024
/* How deep a thread's stack of current contexts may grow. */
#define OX_CONTEXT_STACK_MAX 64

struct ox_device {
    pthread_mutex_t open_lock;  /* held while connecting the session */
    struct ox_session *session;
};

struct ox_context {
    int in_use;
    int device;
    uint8_t generation;   /* raised on reuse: handles of a destroyed context fail */
    unsigned flags;
    int primary;
    int primary_refs;     /* retains minus releases */
    int primary_set_current;  /* made current without a retain (CUDA allows it) */
};

struct ox_range {
    uint64_t base;
    uint64_t bytes;
    int device;      /* device memory: its device; host memory: -1 */
    unsigned flags;  /* host memory: cuMemHostAlloc / cuMemHostRegister flags */
    int registered;  /* host memory: cuMemHostRegister rather than allocated here */
};

struct ox_ranges {
    struct ox_range *ranges;  /* sorted by base, never overlapping */
    size_t count, capacity;
};

struct ox_state {
    pthread_mutex_t lock;
    int initialised;
    struct ox_config config;
    int device_count;
    struct ox_device devices[OX_DEVICES_MAX];
    struct ox_context contexts[OX_CONTEXTS_MAX];
    struct ox_ranges device_memory, host_memory;
};

struct ox_thread {
    CUcontext stack[OX_CONTEXT_STACK_MAX];
    int depth;
};

extern struct ox_state ox_state;
extern _Thread_local struct ox_thread ox_thread;

/* The handle of context SLOT. */
CUcontext ox_context_handle(int slot);
/* Slot of a live context handle, else -1; call with ox_state.lock held. */
int ox_context_slot(CUcontext ctx);

#endif
