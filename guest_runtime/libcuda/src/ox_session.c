/* Sessions with a GPU server: connecting, HELLO, SHM_ATTACH, one exchange at
 * a time, pipelined asynchronous ops, cached queries (see ox_session.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ox_internal.h"
#include "ox_stream.h"
#include "ox_wire.h"

#define CACHE_ENTRIES 256
#define CACHE_KEY_BYTES 16
#define CACHE_VALUE_BYTES 32
#define CACHE_BUFFER_BYTES 256
#define ERROR_MESSAGE_MAX 4096

struct cache_entry {
    uint16_t opcode;
    uint8_t key[CACHE_KEY_BYTES];
    uint8_t reply[CACHE_VALUE_BYTES];
    uint8_t buffer[CACHE_BUFFER_BYTES];
    size_t buffer_bytes;
};

struct ox_session {
    pthread_mutex_t io_lock;
    struct ox_stream *stream;
    uint32_t next_request_id;
    uint8_t *pending;
    size_t pending_bytes, pending_capacity;
    CUresult ended;  /* CUDA_SUCCESS while the session lives */
    char ended_message[1024];
    uint32_t transports;  /* what HELLO offered */
    pid_t pid;            /* the process that opened it (a forked child must not write) */
    pthread_mutex_t cache_lock;
    struct cache_entry cache[CACHE_ENTRIES];
    int cache_count;
};

/* -- cache of read-only queries ------------------------------------------------- */

static int cacheable(const struct ox_op_info *op, size_t recv_capacity)
{
    return op->cacheable && op->request_bytes <= CACHE_KEY_BYTES
           && op->reply_bytes <= CACHE_VALUE_BYTES && recv_capacity <= CACHE_BUFFER_BYTES;
}

static int cache_get(struct ox_session *s, const struct ox_op_info *op, const uint8_t *request,
                     uint8_t *reply, void *recv_buffer, size_t *recv_bytes)
{
    int found = 0;
    pthread_mutex_lock(&s->cache_lock);
    for (int i = 0; i < s->cache_count && !found; i++) {
        struct cache_entry *e = &s->cache[i];
        if (e->opcode != op->opcode || memcmp(e->key, request, op->request_bytes) != 0)
            continue;
        memcpy(reply, e->reply, op->reply_bytes);
        if (recv_buffer != NULL)
            memcpy(recv_buffer, e->buffer, e->buffer_bytes);
        if (recv_bytes != NULL)
            *recv_bytes = e->buffer_bytes;
        found = 1;
    }
    pthread_mutex_unlock(&s->cache_lock);
    return found;
}

static void cache_put(struct ox_session *s, const struct ox_op_info *op, const uint8_t *request,
                      const uint8_t *reply, const void *recv_buffer, size_t recv_bytes)
{
    pthread_mutex_lock(&s->cache_lock);
    if (s->cache_count < CACHE_ENTRIES) {
        struct cache_entry *e = &s->cache[s->cache_count++];
        e->opcode = op->opcode;
        memcpy(e->key, request, op->request_bytes);
        memcpy(e->reply, reply, op->reply_bytes);
        e->buffer_bytes = recv_buffer != NULL ? recv_bytes : 0;
        if (e->buffer_bytes)
            memcpy(e->buffer, recv_buffer, e->buffer_bytes);
    }
    pthread_mutex_unlock(&s->cache_lock);
}

/* -- the wire --------------------------------------------------------------------- */

/* The session is over: this and every later call answer CODE. */
static CUresult end_session(struct ox_session *s, const char *call, CUresult code,
                            const char *message)
{
    if (s->ended == CUDA_SUCCESS) {
        s->ended = code;
        snprintf(s->ended_message, sizeof s->ended_message, "%s", message);
    }
    return ox_fail_server(s->ended, call, s->ended_message);
}

static CUresult lost(struct ox_session *s, const char *call)
{
    char message[512];
    snprintf(message, sizeof message,
             "connection to the GPU server lost: %s; everything the session held is gone, "
             "start the program again", ox_stream_error(s->stream));
    return end_session(s, call, CUDA_ERROR_DEVICE_UNAVAILABLE, message);
}

/* A send failed: the server may have ended the session and said why
 * (SESSION_ENDED, sent before it shut the connection, for example to a
 * client stalled in the middle of a frame when it was preempted). Report
 * that rather than a lost connection when it is there. */
static CUresult lost_sending(struct ox_session *s, const char *call)
{
    uint8_t head[OX_HEADER_BYTES + OX_STATUS_BYTES];
    uint8_t flags;
    uint16_t opcode;
    uint32_t request_id, payload_bytes;
    if (ox_stream_recv_left(s->stream, head, sizeof head) < 0
        || ox_decode_header(head, &flags, &opcode, &request_id, &payload_bytes) < 0
        || opcode != OX_OP_SESSION_ENDED || payload_bytes < OX_STATUS_BYTES)
        return lost(s, call);
    size_t message_bytes = payload_bytes - OX_STATUS_BYTES;
    char message[1024];
    if (message_bytes >= sizeof message)
        message_bytes = sizeof message - 1;
    if (ox_stream_recv_left(s->stream, message, message_bytes) < 0)
        return lost(s, call);
    message[message_bytes] = '\0';
    return end_session(s, call, (CUresult)ox_get_i32(head + OX_HEADER_BYTES), message);
}

static int append_pending(struct ox_session *s, const void *data, size_t nbytes)
{
    if (s->pending_bytes + nbytes > s->pending_capacity) {
        size_t capacity = s->pending_capacity ? s->pending_capacity : 2 * OX_PENDING_FLUSH_BYTES;
        while (capacity < s->pending_bytes + nbytes)
            capacity *= 2;
        uint8_t *grown = realloc(s->pending, capacity);
        if (grown == NULL)
            return -1;
        s->pending = grown;
        s->pending_capacity = capacity;
    }
    memcpy(s->pending + s->pending_bytes, data, nbytes);
    s->pending_bytes += nbytes;
    return 0;
}

/* Read a failed reply's message (the rest of PAYLOAD_BYTES after the status). */
static int read_message(struct ox_session *s, uint32_t payload_bytes, char *message,
                        size_t message_bytes)
{
    size_t total = payload_bytes >= OX_STATUS_BYTES ? payload_bytes - OX_STATUS_BYTES : 0;
    char scratch[ERROR_MESSAGE_MAX];
    size_t keep = total < sizeof scratch ? total : sizeof scratch;
    if (ox_stream_recv(s->stream, scratch, keep) < 0)
        return -1;
    for (size_t left = total - keep; left > 0;) {
        char drop[1024];
        size_t n = left < sizeof drop ? left : sizeof drop;
        if (ox_stream_recv(s->stream, drop, n) < 0)
            return -1;
        left -= n;
    }
    size_t n = keep < message_bytes - 1 ? keep : message_bytes - 1;
    memcpy(message, scratch, n);
    message[n] = '\0';
    return 0;
}

static CUresult await_reply(struct ox_session *s, const char *call, const struct ox_op_info *op,
                            uint32_t request_id, uint8_t *reply, void *recv_buffer,
                            size_t recv_capacity, size_t *recv_bytes)
{
    uint8_t head[OX_HEADER_BYTES + OX_STATUS_BYTES];
    uint8_t flags;
    uint16_t opcode;
    uint32_t reply_id, payload_bytes;
    if (ox_stream_recv(s->stream, head, sizeof head) < 0)
        return lost(s, call);
    if (ox_decode_header(head, &flags, &opcode, &reply_id, &payload_bytes) < 0
        || payload_bytes < OX_STATUS_BYTES) {
        return end_session(s, call, CUDA_ERROR_UNKNOWN,
                           "the GPU server sent a frame that is not of this protocol "
                           "version: upgrade the older side");
    }
    CUresult status = (CUresult)ox_get_i32(head + OX_HEADER_BYTES);
    char message[1024];
    if (opcode == OX_OP_SESSION_ENDED) {
        if (read_message(s, payload_bytes, message, sizeof message) < 0)
            return lost(s, call);
        return end_session(s, call, status, message);
    }
    if (opcode != op->opcode || reply_id != request_id) {
        snprintf(message, sizeof message, "reply 0x%04x/%u does not answer %s/%u: a protocol "
                 "error between this library and the GPU server", opcode, reply_id, op->name,
                 request_id);
        return end_session(s, call, CUDA_ERROR_UNKNOWN, message);
    }
    if (status != CUDA_SUCCESS) {
        if (read_message(s, payload_bytes, message, sizeof message) < 0)
            return lost(s, call);
        return ox_fail_server(status, call, message);
    }
    uint32_t after_status = payload_bytes - OX_STATUS_BYTES;
    if (after_status < op->reply_bytes
        || (op->buffer != OX_BUF_REPLY && after_status != op->reply_bytes))
        return end_session(s, call, CUDA_ERROR_UNKNOWN, "a reply of the wrong length");
    if (op->reply_bytes && ox_stream_recv(s->stream, reply, op->reply_bytes) < 0)
        return lost(s, call);
    if (op->buffer != OX_BUF_REPLY)
        return CUDA_SUCCESS;
    size_t buffer_bytes = after_status - op->reply_bytes;
    size_t keep = buffer_bytes < recv_capacity ? buffer_bytes : recv_capacity;
    if (keep && ox_stream_recv(s->stream, recv_buffer, keep) < 0)
        return lost(s, call);
    for (size_t left = buffer_bytes - keep; left > 0;) {
        uint8_t drop[4096];
        size_t n = left < sizeof drop ? left : sizeof drop;
        if (ox_stream_recv(s->stream, drop, n) < 0)
            return lost(s, call);
        left -= n;
    }
    if (recv_bytes != NULL)
        *recv_bytes = keep;
    return CUDA_SUCCESS;
}

static CUresult exchange_locked(struct ox_session *s, const char *call,
                                const struct ox_op_info *op, const uint8_t *request,
                                const void *send_buffer, size_t send_bytes, uint8_t *reply,
                                void *recv_buffer, size_t recv_capacity, size_t *recv_bytes)
{
    if (s->ended != CUDA_SUCCESS)
        return ox_fail_server(s->ended, call, s->ended_message);
    if ((uint64_t)op->request_bytes + send_bytes > UINT32_MAX)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "a frame of more than 4 GiB");
    uint32_t request_id = s->next_request_id++;
    uint8_t frame[OX_HEADER_BYTES + OX_REQUEST_BYTES_MAX];
    ox_encode_header(frame, op->opcode, 0, request_id, op->request_bytes + (uint32_t)send_bytes);
    memcpy(frame + OX_HEADER_BYTES, request, op->request_bytes);
    size_t frame_bytes = OX_HEADER_BYTES + op->request_bytes;
    if (!op->sync && send_bytes < OX_PENDING_FLUSH_BYTES) {
        if (append_pending(s, frame, frame_bytes) < 0
            || (send_bytes && append_pending(s, send_buffer, send_bytes) < 0))
            return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call,
                           "no host memory to queue an asynchronous op");
        if (s->pending_bytes >= OX_PENDING_FLUSH_BYTES) {
            struct iovec part = {s->pending, s->pending_bytes};
            s->pending_bytes = 0;
            if (ox_stream_send(s->stream, &part, 1) < 0)
                return lost_sending(s, call);
        }
        return CUDA_SUCCESS;
    }
    struct iovec parts[3];
    int count = 0;
    if (s->pending_bytes)
        parts[count++] = (struct iovec){s->pending, s->pending_bytes};
    parts[count++] = (struct iovec){frame, frame_bytes};
    if (send_bytes)
        parts[count++] = (struct iovec){(void *)send_buffer, send_bytes};
    s->pending_bytes = 0;
    if (ox_stream_send(s->stream, parts, count) < 0)
        return lost_sending(s, call);
    if (!op->sync)
        return CUDA_SUCCESS;
    return await_reply(s, call, op, request_id, reply, recv_buffer, recv_capacity, recv_bytes);
}

CUresult ox_session_exchange(struct ox_session *s, const char *call,
                             const struct ox_op_info *op, const uint8_t *request,
                             const void *send_buffer, size_t send_bytes, uint8_t *reply,
                             void *recv_buffer, size_t recv_capacity, size_t *recv_bytes)
{
    int use_cache = cacheable(op, recv_capacity);
    if (use_cache && cache_get(s, op, request, reply, recv_buffer, recv_bytes))
        return CUDA_SUCCESS;
    size_t got = 0;
    pthread_mutex_lock(&s->io_lock);
    CUresult status = exchange_locked(s, call, op, request, send_buffer, send_bytes, reply,
                                      recv_buffer, recv_capacity, &got);
    pthread_mutex_unlock(&s->io_lock);
    if (recv_bytes != NULL)
        *recv_bytes = got;
    if (status == CUDA_SUCCESS && use_cache)
        cache_put(s, op, request, reply, recv_buffer, got);
    return status;
}

CUresult ox_session_flush(struct ox_session *s, const char *call)
{
    CUresult status = CUDA_SUCCESS;
    pthread_mutex_lock(&s->io_lock);
    if (s->ended == CUDA_SUCCESS && s->pending_bytes) {
        struct iovec part = {s->pending, s->pending_bytes};
        s->pending_bytes = 0;
        if (ox_stream_send(s->stream, &part, 1) < 0)
            status = lost_sending(s, call);
    }
    pthread_mutex_unlock(&s->io_lock);
    return status;
}

/* -- opening ------------------------------------------------------------------------ */

static int wanted(const struct ox_config *config, const struct ox_endpoint *e)
{
    switch (config->transport) {
    case OX_CHOOSE_SHM:
    case OX_CHOOSE_UNIX:
        return e->kind == OX_EP_UNIX;
    case OX_CHOOSE_TCP:
        return e->kind == OX_EP_TCP;
    case OX_CHOOSE_TLS:
        return e->kind == OX_EP_TLS;
    case OX_CHOOSE_VSOCK:
        return e->kind == OX_EP_VSOCK;
    case OX_CHOOSE_SERIAL:
        return e->kind == OX_EP_SERIAL;
    default:
        return 1;
    }
}

static struct ox_stream *connect_one(const struct ox_config *config, const struct ox_endpoint *e,
                                     char *why, size_t why_bytes)
{
    switch (e->kind) {
    case OX_EP_UNIX:
        return ox_stream_connect_unix(e->path, why, why_bytes);
    case OX_EP_TCP:
        return ox_stream_connect_tcp(e->host, e->port, config->connect_timeout_ms, why,
                                     why_bytes);
    case OX_EP_TLS:
        return ox_stream_connect_tls(e->host, e->port, config->connect_timeout_ms,
                                     config->tls_ca_file, why, why_bytes);
    case OX_EP_VSOCK:
    case OX_EP_SERIAL:
        return ox_stream_connect_link(e->kind == OX_EP_VSOCK, e->path, e->cid,
                                      (unsigned)strtoul(e->port, NULL, 10),
                                      config->pci_sysfs_root, config->connect_timeout_ms, why,
                                      why_bytes);
    }
    snprintf(why, why_bytes, "an endpoint of no known kind");
    return NULL;
}

static struct ox_stream *connect_any(const struct ox_config *config, const struct ox_route *route,
                                     char *failures, size_t failures_bytes)
{
    size_t used = 0;
    failures[0] = '\0';
    for (int i = 0; i < route->endpoint_count; i++) {
        const struct ox_endpoint *e = &route->endpoints[i];
        if (!wanted(config, e))
            continue;
        char why[512];
        struct ox_stream *stream = connect_one(config, e, why, sizeof why);
        if (stream != NULL)
            return stream;
        int n = snprintf(failures + used, failures_bytes - used, "%s%s: %s", used ? "; " : "",
                         e->text, why);
        if (n > 0 && (size_t)n < failures_bytes - used)
            used += (size_t)n;
    }
    if (!failures[0])
        snprintf(failures, failures_bytes, "no endpoint of the kind ORIONX_TRANSPORT asks for");
    return NULL;
}

_Static_assert(OX_SHM_ATTACH_REPLY_FDS == OX_SHM_FDS,
               "SHM_ATTACH's reply carries the descriptors the shared-memory stream takes");

static CUresult attach_shm(struct ox_session *s, const struct ox_config *config,
                           const char *call)
{
    struct ox_shm_attach_request request = {config->shm_ring_bytes};
    struct ox_shm_attach_reply reply;
    ox_stream_expect_fds(s->stream, 1);
    CUresult status = ox_rpc_shm_attach(s, call, &request, &reply);
    ox_stream_expect_fds(s->stream, 0);
    int fds[8];
    int count = ox_stream_take_fds(s->stream, fds, 8);
    if (status != CUDA_SUCCESS || count != OX_SHM_FDS) {
        for (int i = 0; i < count; i++)
            close(fds[i]);
        if (status != CUDA_SUCCESS)
            return status;
        return end_session(s, call, CUDA_ERROR_UNKNOWN,
                           "SHM_ATTACH's reply did not carry its 5 descriptors");
    }
    if (ox_stream_upgrade_shm(s->stream, fds, reply.ring_bytes) < 0)
        return end_session(s, call, CUDA_ERROR_OPERATING_SYSTEM, ox_stream_error(s->stream));
    return CUDA_SUCCESS;
}

static CUresult start(struct ox_session *s, const struct ox_config *config,
                      const struct ox_route *route, const char *call)
{
    struct ox_hello_request hello = {route->vgpu_index};
    struct ox_hello_reply reply;
    CUresult status = ox_rpc_hello(s, call, &hello, route->token, strlen(route->token), &reply);
    if (status != CUDA_SUCCESS)
        return status;
    s->transports = reply.transports;
    int on_unix = strcmp(ox_stream_kind(s->stream), "unix") == 0;
    if (on_unix && (config->transport == OX_CHOOSE_AUTO || config->transport == OX_CHOOSE_SHM)
        && (s->transports & OX_TRANSPORT_SHM))
        return attach_shm(s, config, call);
    if (config->transport == OX_CHOOSE_SHM)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                       "shared memory was asked for (ORIONX_TRANSPORT=shm) but the server does "
                       "not offer it on this endpoint: use a unix endpoint of a server with "
                       "[gpu_server] shm_enabled");
    return CUDA_SUCCESS;
}

CUresult ox_session_open(const struct ox_config *config, int device, const char *call,
                         struct ox_session **out)
{
    const struct ox_route *route = &config->routes[device];
    char failures[2048];
    struct ox_stream *stream = connect_any(config, route, failures, sizeof failures);
    if (stream == NULL)
        return ox_fail(CUDA_ERROR_NO_DEVICE, call,
                       "no GPU server reachable for device %d (%s): %s", device, failures,
                       config->mode == OX_MODE_VM
                           ? "check that orionx-agent runs on the host"
                           : config->mode == OX_MODE_ACQUIRE
                                 ? "check that the allocation's GPU servers run"
                                 : "check ORIONX_ENDPOINT and that orionx-gpu-server runs");
    struct ox_session *s = calloc(1, sizeof *s);
    if (s == NULL) {
        ox_stream_close(stream);
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for a session");
    }
    pthread_mutex_init(&s->io_lock, NULL);
    pthread_mutex_init(&s->cache_lock, NULL);
    s->stream = stream;
    s->next_request_id = 1;
    s->pid = getpid();
    CUresult status = start(s, config, route, call);
    if (status != CUDA_SUCCESS) {
        ox_session_close(s);
        return status;
    }
    *out = s;
    return CUDA_SUCCESS;
}

void ox_session_finish(struct ox_session *s)
{
    /* A forked child that exits shares the parent's connection: a frame or
     * an END from it would land in the parent's session. A thread inside an
     * exchange keeps the wire: writing now would cut its frame in two. */
    if (s->pid != getpid() || pthread_mutex_trylock(&s->io_lock) != 0)
        return;
    if (s->ended == CUDA_SUCCESS && s->pending_bytes) {
        struct iovec part = {s->pending, s->pending_bytes};
        s->pending_bytes = 0;
        ox_stream_send(s->stream, &part, 1);
    }
    ox_stream_finish(s->stream);
}

void ox_session_close(struct ox_session *s)
{
    if (s == NULL)
        return;
    ox_session_flush(s, "session close");
    ox_stream_close(s->stream);
    pthread_mutex_destroy(&s->io_lock);
    pthread_mutex_destroy(&s->cache_lock);
    free(s->pending);
    free(s);
}
