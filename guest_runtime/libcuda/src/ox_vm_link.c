/* A KVM guest's link to its host's agent (see ox_link.h; the layout of the
 * handshake, the records and the ivshmem region is guest_runtime/vm_link.py's,
 * which the agent's end, orionx_agent/agent/vm_link_host.py, reads). */
#include "ox_link.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LINK_MAGIC "ORXV"
#define LINK_VERSION 1
#define GUEST_HELLO_BYTES 16  /* magic, version, flags, u16 0, u64 region nonce */
#define AGENT_HELLO_BYTES 12  /* magic, version, flags, u16 vgpu count, u32 message bytes */
#define FLAG_REGION 0x01
#define MESSAGE_MAX_BYTES 4096

#define RECORD_IN_REGION (1u << 31)
#define RECORD_END (1u << 30)
#define RECORD_MAX_BYTES ((1u << 30) - 1)

#define REGION_CONTROL_BYTES 4096u
/* u64 words of the control page: the nonce, bytes the host has read from
 * the guest-to-host ring, bytes the guest has read from the host-to-guest one. */
#define WORD_NONCE 0
#define WORD_G2H_READ 1
#define WORD_H2G_READ 2
/* Smaller parts go inline: a record through the ring costs the same system
 * call as an inline one, so only big copies gain from it. */
#define REGION_MIN_BYTES (16u << 10)
/* A writer whose ring is full polls the reader's progress (ivshmem-plain
 * has no interrupts), from 0.1 ms up to 5 ms apart; a reader that makes
 * none for a minute is taken as gone. */
#define FULL_POLL_FIRST_NS 100000L
#define FULL_POLL_MAX_NS 5000000L
#define RING_STALL_TIMEOUT_NS (60LL * 1000000000LL)
#define READ_BUFFER_BYTES (64u << 10)
#define IVSHMEM_VENDOR 0x1af4
#define IVSHMEM_DEVICE 0x1110

struct ox_link {
    int fd;
    int is_socket;  /* vsock, or a unix socket standing in for the port */
    char error[512];
    /* the region, when this session holds one */
    uint8_t *map;
    size_t map_bytes;
    int region_fd;  /* holds the flock: one session per region in the VM */
    _Atomic uint64_t *control;
    uint8_t *tx, *rx;  /* guest-to-host, host-to-guest rings */
    uint64_t ring_bytes;
    uint64_t written, read;  /* bytes ever put in tx, taken from rx */
    /* the record being read */
    uint32_t record_left;
    int record_in_region;
    int ended;     /* the agent's END came */
    int end_sent;  /* ours went */
    uint8_t buffer[READ_BUFFER_BYTES];
    size_t start, end;
};

static int fail(struct ox_link *l, const char *format, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct ox_link *l, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(l->error, sizeof l->error, format, args);
    va_end(args);
    return -1;
}

const char *ox_link_error(const struct ox_link *l)
{
    return l->error;
}

int ox_link_has_region(const struct ox_link *l)
{
    return l->map != NULL;
}

/* -- the channel --------------------------------------------------------------- */

static int write_all(struct ox_link *l, const void *data, size_t nbytes)
{
    const uint8_t *p = data;
    while (nbytes) {
        /* MSG_NOSIGNAL: a peer that went is an error here, not SIGPIPE. */
        ssize_t n = l->is_socket ? send(l->fd, p, nbytes, MSG_NOSIGNAL) : write(l->fd, p, nbytes);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(l, "writing to the agent's link failed: %s",
                        n < 0 ? strerror(errno) : "nothing written");
        p += n;
        nbytes -= (size_t)n;
    }
    return 0;
}

/* Up to NBYTES of the channel, buffered; bulk reads go straight to DST. */
static ssize_t read_inline(struct ox_link *l, uint8_t *dst, size_t nbytes)
{
    if (l->start == l->end) {
        uint8_t *into = nbytes >= READ_BUFFER_BYTES / 2 ? dst : l->buffer;
        size_t room = into == dst ? nbytes : READ_BUFFER_BYTES;
        ssize_t n;
        do
            n = read(l->fd, into, room);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return fail(l, "the agent's link closed%s%s", n < 0 ? ": " : "",
                        n < 0 ? strerror(errno) : "");
        if (into == dst)
            return n;
        l->start = 0;
        l->end = (size_t)n;
    }
    size_t take = l->end - l->start < nbytes ? l->end - l->start : nbytes;
    memcpy(dst, l->buffer + l->start, take);
    l->start += take;
    return (ssize_t)take;
}

static int read_exact(struct ox_link *l, void *dst, size_t nbytes)
{
    uint8_t *p = dst;
    while (nbytes) {
        ssize_t n = read_inline(l, p, nbytes);
        if (n < 0)
            return -1;
        p += n;
        nbytes -= (size_t)n;
    }
    return 0;
}

static int open_vsock(unsigned cid, unsigned port, int timeout_ms, char *why, size_t why_bytes)
{
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, why_bytes, "no vsock sockets: %s", strerror(errno));
        return -1;
    }
    struct sockaddr_vm address = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int rc = connect(fd, (struct sockaddr *)&address, sizeof address);
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        rc = poll(&p, 1, timeout_ms);
        int err = ETIMEDOUT;
        if (rc > 0) {
            socklen_t len = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        }
        errno = err;
        rc = err ? -1 : 0;
    }
    if (rc < 0) {
        snprintf(why, why_bytes, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, flags);
    return fd;
}

static int open_serial(const char *path, char *why, size_t why_bytes)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0)
        return fd;
    int error = errno;
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    struct stat st;
    if (error == ENXIO && stat(path, &st) == 0 && S_ISSOCK(st.st_mode)
        && strlen(path) < sizeof address.sun_path) {
        memcpy(address.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&address, sizeof address) == 0)
            return fd;
        error = errno;
        if (fd >= 0)
            close(fd);
    }
    snprintf(why, why_bytes, "%s", strerror(error));
    return -1;
}

/* -- the ivshmem region --------------------------------------------------------- */

#define PATH_BYTES 1024

static long read_hex(const char *dir, const char *name)
{
    char path[PATH_BYTES + 32], text[64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    long value = fgets(text, sizeof text, f) ? strtol(text, NULL, 16) : -1;
    fclose(f);
    return value;
}

/* sysfs resource files report size 0 on some kernels; the resource table
 * has BAR 2's start and end on its third line. */
static size_t resource_bytes(const char *dir)
{
    char path[PATH_BYTES + 32], line[256];
    snprintf(path, sizeof path, "%s/resource", dir);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 0;
    unsigned long long start = 0, end = 0;
    for (int i = 0; i < 3 && fgets(line, sizeof line, f); i++)
        if (i == 2 && sscanf(line, "%llx %llx", &start, &end) != 2)
            start = end = 0;
    fclose(f);
    return end > start ? (size_t)(end - start + 1) : 0;
}

/* A PCI device's BAR answers only once the device is enabled; the kernel
 * leaves devices without a driver disabled. Not root: mapping says why. */
static void enable(const char *dir)
{
    char path[PATH_BYTES + 32];
    snprintf(path, sizeof path, "%s/enable", dir);
    if (read_hex(dir, "enable") == 1)
        return;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "1", 1) < 0) {
            /* as above: the mapping below fails and the data goes inline */
        }
        close(fd);
    }
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Map the first ivshmem region no other process of this VM holds; 0, or -1
 * when none is free (bulk data then goes inline). */
static int claim_region(struct ox_link *l, const char *root, uint64_t *nonce)
{
    struct dirent **names;
    int count = scandir(root, &names, NULL, by_name);
    if (count < 0)
        return -1;
    int claimed = -1;
    for (int i = 0; i < count; i++) {
        char dir[PATH_BYTES], path[PATH_BYTES + 32];
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]->d_name);
        if (claimed == 0 || names[i]->d_name[0] == '.'
            || read_hex(dir, "vendor") != IVSHMEM_VENDOR
            || read_hex(dir, "device") != IVSHMEM_DEVICE)
            continue;
        snprintf(path, sizeof path, "%s/resource2", dir);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            close(fd);
            continue;
        }
        enable(dir);
        struct stat st;
        size_t bytes = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size
                                                               : resource_bytes(dir);
        void *map = bytes >= REGION_CONTROL_BYTES + 2 * 4096
                        ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                        : MAP_FAILED;
        if (map == MAP_FAILED) {
            close(fd);
            continue;
        }
        l->map = map;
        l->map_bytes = bytes;
        l->region_fd = fd;
        l->control = (_Atomic uint64_t *)map;
        l->ring_bytes = (bytes - REGION_CONTROL_BYTES) / 2;
        l->tx = l->map + REGION_CONTROL_BYTES;
        l->rx = l->tx + l->ring_bytes;
        if (getrandom(nonce, sizeof *nonce, 0) != (ssize_t)sizeof *nonce)
            *nonce = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
        *nonce = (*nonce >> 1) | 1;  /* 63 bits, never 0 */
        atomic_store(&l->control[WORD_G2H_READ], 0);
        atomic_store(&l->control[WORD_H2G_READ], 0);
        atomic_store(&l->control[WORD_NONCE], *nonce);
        claimed = 0;
    }
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return claimed;
}

static void release_region(struct ox_link *l)
{
    if (l->map != NULL)
        munmap(l->map, l->map_bytes);
    if (l->region_fd >= 0)
        close(l->region_fd);
    l->map = NULL;
    l->region_fd = -1;
}

/* -- records ---------------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int send_record_header(struct ox_link *l, uint32_t header)
{
    uint8_t bytes[4];
    put_u32(bytes, header);
    return write_all(l, bytes, sizeof bytes);
}

static int wait_for_space(struct ox_link *l, uint64_t *free_bytes)
{
    long pause_ns = FULL_POLL_FIRST_NS;
    long long waited_ns = 0;
    for (;;) {
        uint64_t host_read = atomic_load_explicit(&l->control[WORD_G2H_READ],
                                                  memory_order_acquire);
        uint64_t unread = l->written - host_read;
        if (unread > l->ring_bytes)
            return fail(l, "shared region corrupted by the agent: %llu unread bytes in a ring "
                        "of %llu", (unsigned long long)unread,
                        (unsigned long long)l->ring_bytes);
        if (unread < l->ring_bytes) {
            *free_bytes = l->ring_bytes - unread;
            return 0;
        }
        if (waited_ns > RING_STALL_TIMEOUT_NS)
            return fail(l, "the agent read nothing from the shared region for 60 s; the session "
                        "is taken as dead");
        struct timespec pause = {0, pause_ns};
        nanosleep(&pause, NULL);
        waited_ns += pause_ns;
        pause_ns = pause_ns * 2 < FULL_POLL_MAX_NS ? pause_ns * 2 : FULL_POLL_MAX_NS;
    }
}

static int send_through_region(struct ox_link *l, const uint8_t *src, size_t nbytes)
{
    for (size_t done = 0; done < nbytes;) {
        uint64_t free_bytes = 0;
        if (wait_for_space(l, &free_bytes) < 0)
            return -1;
        uint64_t position = l->written % l->ring_bytes;
        uint64_t chunk = nbytes - done;
        if (chunk > free_bytes)
            chunk = free_bytes;
        if (chunk > l->ring_bytes - position)
            chunk = l->ring_bytes - position;
        if (chunk > l->ring_bytes / 2)
            chunk = l->ring_bytes / 2;
        memcpy(l->tx + position, src + done, chunk);
        /* The record on the channel is the doorbell; the system call orders
         * the copy before it. */
        atomic_thread_fence(memory_order_release);
        l->written += chunk;
        done += chunk;
        if (send_record_header(l, RECORD_IN_REGION | (uint32_t)chunk) < 0)
            return -1;
    }
    return 0;
}

int ox_link_send(struct ox_link *l, const struct iovec *parts, int count)
{
    for (int i = 0; i < count; i++) {
        const uint8_t *data = parts[i].iov_base;
        size_t nbytes = parts[i].iov_len;
        if (l->map != NULL && nbytes >= REGION_MIN_BYTES) {
            if (send_through_region(l, data, nbytes) < 0)
                return -1;
            continue;
        }
        for (size_t done = 0; done < nbytes;) {
            size_t chunk = nbytes - done < RECORD_MAX_BYTES ? nbytes - done : RECORD_MAX_BYTES;
            if (send_record_header(l, (uint32_t)chunk) < 0 || write_all(l, data + done, chunk) < 0)
                return -1;
            done += chunk;
        }
    }
    return 0;
}

static int next_record(struct ox_link *l)
{
    uint8_t bytes[4];
    if (read_exact(l, bytes, sizeof bytes) < 0)
        return -1;
    uint32_t header = get_u32(bytes);
    if (header & RECORD_END) {
        l->ended = 1;
        return fail(l, "the agent ended the session (the GPU server closed it)");
    }
    l->record_in_region = (header & RECORD_IN_REGION) != 0;
    l->record_left = header & RECORD_MAX_BYTES;
    if (l->record_in_region && l->map == NULL)
        return fail(l, "the agent sent shared-region data on a link without one");
    return 0;
}

int ox_link_recv(struct ox_link *l, void *dst, size_t nbytes)
{
    uint8_t *p = dst;
    while (nbytes) {
        if (l->ended)
            return fail(l, "the agent ended the session (the GPU server closed it)");
        if (!l->record_left) {
            if (next_record(l) < 0)
                return -1;
            continue;
        }
        size_t take = nbytes < l->record_left ? nbytes : l->record_left;
        if (l->record_in_region) {
            atomic_thread_fence(memory_order_acquire);
            for (size_t done = 0; done < take;) {
                uint64_t position = l->read % l->ring_bytes;
                size_t chunk = take - done;
                if (chunk > l->ring_bytes - position)
                    chunk = (size_t)(l->ring_bytes - position);
                memcpy(p + done, l->rx + position, chunk);
                done += chunk;
                l->read += chunk;
            }
            atomic_store_explicit(&l->control[WORD_H2G_READ], l->read, memory_order_release);
        } else {
            ssize_t n = read_inline(l, p, take);
            if (n < 0)
                return -1;
            take = (size_t)n;
        }
        l->record_left -= (uint32_t)take;
        p += take;
        nbytes -= take;
    }
    return 0;
}

/* -- opening and closing ------------------------------------------------------ */

static int handshake(struct ox_link *l, uint64_t nonce, int *vgpu_count, int *refused)
{
    uint8_t hello[GUEST_HELLO_BYTES] = {0};
    memcpy(hello, LINK_MAGIC, 4);
    hello[4] = LINK_VERSION;
    hello[5] = l->map != NULL ? FLAG_REGION : 0;
    for (int i = 0; i < 8; i++)
        hello[8 + i] = (uint8_t)(nonce >> (8 * i));
    if (write_all(l, hello, sizeof hello) < 0)
        return -1;
    uint8_t answer[AGENT_HELLO_BYTES];
    if (read_exact(l, answer, sizeof answer) < 0)
        return -1;
    if (memcmp(answer, LINK_MAGIC, 4) != 0 || answer[4] != LINK_VERSION)
        return fail(l, "the other end of the link is not an OrionX agent of link version %d",
                    LINK_VERSION);
    int flags = answer[5];
    *vgpu_count = answer[6] | answer[7] << 8;
    uint32_t message_bytes = get_u32(answer + 8);
    char message[MESSAGE_MAX_BYTES + 1];
    size_t keep = message_bytes < MESSAGE_MAX_BYTES ? message_bytes : MESSAGE_MAX_BYTES;
    if (read_exact(l, message, keep) < 0)
        return -1;
    message[keep] = '\0';
    if (*vgpu_count == 0) {
        *refused = 1;
        return fail(l, "%s", keep ? message : "the agent has no vGPU for this VM");
    }
    if (!(flags & FLAG_REGION))
        release_region(l);  /* the agent cannot map it: everything inline */
    return 0;
}

struct ox_link *ox_link_open(int vsock, const char *path, unsigned cid, unsigned port,
                             const char *pci_sysfs_root, int timeout_ms, int *vgpu_count,
                             int *refused, char *why, size_t why_bytes)
{
    *refused = 0;
    struct ox_link *l = calloc(1, sizeof *l);
    if (l == NULL) {
        snprintf(why, why_bytes, "out of host memory");
        return NULL;
    }
    l->region_fd = -1;
    l->fd = vsock ? open_vsock(cid, port, timeout_ms, why, why_bytes)
                  : open_serial(path, why, why_bytes);
    if (l->fd < 0) {
        free(l);
        return NULL;
    }
    struct stat st;
    l->is_socket = fstat(l->fd, &st) == 0 && S_ISSOCK(st.st_mode);
    uint64_t nonce = 0;
    if (pci_sysfs_root != NULL)
        claim_region(l, pci_sysfs_root, &nonce);
    if (handshake(l, nonce, vgpu_count, refused) < 0) {
        snprintf(why, why_bytes, "%s", l->error);
        ox_link_close(l);
        return NULL;
    }
    return l;
}

void ox_link_end(struct ox_link *l)
{
    /* Always, even after the agent's own END: it reads up to the guest's
     * before the port serves the next session. The peer may be gone. */
    if (!l->end_sent)
        send_record_header(l, RECORD_END);
    l->end_sent = 1;
}

void ox_link_close(struct ox_link *l)
{
    if (l == NULL)
        return;
    ox_link_end(l);
    release_region(l);
    close(l->fd);
    free(l);
}
