/* Transports: sockets and the shared-memory rings (see ox_stream.h and the
 * "Shared memory" section of docs/protocol.md for the ring layout and the
 * doorbell protocol, which the Python end implements too). */
#include "ox_stream.h"

#include "ox_link.h"
#include "ox_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define READ_BUFFER_BYTES (256u << 10)
#define FDS_MAX 8
#define CONTROL_BYTES 4096u
/* Control words of a ring, as u64 indexes into the control page (each on
 * its own cache line); the server->client ring's start 32 words later. */
#define WORD_HEAD 0
#define WORD_TAIL 8
#define WORD_READER_SLEEPS 16
#define WORD_WRITER_SLEEPS 24
#define RING_WORDS 32
/* A sleeper re-checks its ring at least this often even without a doorbell:
 * a lost doorbell would cost a pause, never a hang. */
#define SLEEP_RECHECK_MS 50
/* Ring checks before sleeping, adapted per stream: spinning that finds the
 * ring ready doubles the budget, spinning that does not halves it. */
#define SPIN_CHECKS_MAX 4096
#define SPIN_CHECKS_MIN 16

enum stream_kind { KIND_UNIX, KIND_TCP, KIND_SHM, KIND_TLS, KIND_VSOCK, KIND_SERIAL };

struct ring {
    _Atomic uint64_t *control;  /* this ring's first control word */
    uint8_t *data;
    int data_fd;   /* doorbell: bytes were written */
    int space_fd;  /* doorbell: bytes were consumed */
};

struct ox_stream {
    enum stream_kind kind;
    int sock;
    char error[512];
    struct ox_tls *tls;    /* KIND_TLS */
    struct ox_link *link;  /* KIND_VSOCK, KIND_SERIAL */
    /* socket reads */
    uint8_t *buffer;
    size_t start, end;
    int expect_fds;
    int fds[FDS_MAX];
    int fd_count;
    /* shared memory */
    uint8_t *map;
    size_t map_bytes;
    uint64_t ring_bytes;
    uint64_t chunk_bytes;
    int shm_fds[OX_SHM_FDS];
    struct ring tx, rx;
    int spin_checks;
    int no_wait;  /* ox_stream_recv_left: only what is there already */
};

static int fail(struct ox_stream *s, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct ox_stream *s, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(s->error, sizeof s->error, format, args);
    va_end(args);
    return -1;
}

static struct ox_stream *new_stream(int sock, enum stream_kind kind)
{
    struct ox_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->buffer = malloc(READ_BUFFER_BYTES);
    if (s->buffer == NULL) {
        free(s);
        return NULL;
    }
    s->sock = sock;
    s->kind = kind;
    for (int i = 0; i < OX_SHM_FDS; i++)
        s->shm_fds[i] = -1;
    s->spin_checks = SPIN_CHECKS_MIN;
    return s;
}

struct ox_stream *ox_stream_connect_unix(const char *path, char *why, size_t why_bytes)
{
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof address.sun_path) {
        snprintf(why, why_bytes, "unix socket path %s is longer than %zu bytes", path,
                 sizeof address.sun_path - 1);
        return NULL;
    }
    strcpy(address.sun_path, path);
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&address, sizeof address) < 0) {
        snprintf(why, why_bytes, "%s", strerror(errno));
        if (sock >= 0)
            close(sock);
        return NULL;
    }
    struct ox_stream *s = new_stream(sock, KIND_UNIX);
    if (s == NULL) {
        snprintf(why, why_bytes, "out of host memory");
        close(sock);
    }
    return s;
}

static int connect_within(int sock, const struct addrinfo *ai, int timeout_ms)
{
    int flags = fcntl(sock, F_GETFL);
    fcntl(sock, F_SETFL, flags | O_NONBLOCK);
    int rc = connect(sock, ai->ai_addr, ai->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = sock, .events = POLLOUT};
        rc = poll(&p, 1, timeout_ms);
        if (rc == 0) {
            errno = ETIMEDOUT;
            rc = -1;
        } else if (rc > 0) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &len);
            errno = err;
            rc = err ? -1 : 0;
        }
    }
    fcntl(sock, F_SETFL, flags);
    return rc;
}

static int tcp_socket(const char *host, const char *port, int timeout_ms, char *why,
                      size_t why_bytes)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *found = NULL;
    int rc = getaddrinfo(host, port, &hints, &found);
    if (rc != 0) {
        snprintf(why, why_bytes, "%s", gai_strerror(rc));
        return -1;
    }
    int sock = -1;
    snprintf(why, why_bytes, "no address");
    for (struct addrinfo *ai = found; ai != NULL; ai = ai->ai_next) {
        sock = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (sock >= 0 && connect_within(sock, ai, timeout_ms) == 0)
            break;
        snprintf(why, why_bytes, "%s", strerror(errno));
        if (sock >= 0)
            close(sock);
        sock = -1;
    }
    freeaddrinfo(found);
    if (sock < 0)
        return -1;
    int one = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return sock;
}

struct ox_stream *ox_stream_connect_tcp(const char *host, const char *port, int timeout_ms,
                                        char *why, size_t why_bytes)
{
    int sock = tcp_socket(host, port, timeout_ms, why, why_bytes);
    if (sock < 0)
        return NULL;
    struct ox_stream *s = new_stream(sock, KIND_TCP);
    if (s == NULL) {
        snprintf(why, why_bytes, "out of host memory");
        close(sock);
    }
    return s;
}

struct ox_stream *ox_stream_connect_tls(const char *host, const char *port, int timeout_ms,
                                        const char *ca_file, char *why, size_t why_bytes)
{
    int sock = tcp_socket(host, port, timeout_ms, why, why_bytes);
    if (sock < 0)
        return NULL;
    struct ox_tls *tls = ox_tls_connect(sock, host, ca_file, why, why_bytes);
    struct ox_stream *s = tls ? new_stream(sock, KIND_TLS) : NULL;
    if (s == NULL) {
        if (tls != NULL)
            snprintf(why, why_bytes, "out of host memory");
        ox_tls_close(tls);
        close(sock);
        return NULL;
    }
    s->tls = tls;
    return s;
}

struct ox_stream *ox_stream_connect_link(int vsock, const char *path, unsigned cid,
                                         unsigned port, const char *pci_sysfs_root,
                                         int timeout_ms, char *why, size_t why_bytes)
{
    int vgpu_count, refused;
    struct ox_link *link = ox_link_open(vsock, path, cid, port, pci_sysfs_root, timeout_ms,
                                        &vgpu_count, &refused, why, why_bytes);
    if (link == NULL)
        return NULL;
    struct ox_stream *s = new_stream(-1, vsock ? KIND_VSOCK : KIND_SERIAL);
    if (s == NULL) {
        snprintf(why, why_bytes, "out of host memory");
        ox_link_close(link);
        return NULL;
    }
    s->link = link;
    return s;
}

int ox_stream_link_count(int vsock, const char *path, unsigned cid, unsigned port,
                         int timeout_ms, char *why, size_t why_bytes, int *refused)
{
    int vgpu_count = 0;
    struct ox_link *link = ox_link_open(vsock, path, cid, port, NULL, timeout_ms, &vgpu_count,
                                        refused, why, why_bytes);
    if (link == NULL)
        return 0;
    ox_link_close(link);  /* its END tells the agent this was only a question */
    return vgpu_count;
}

const char *ox_stream_kind(const struct ox_stream *s)
{
    static const char *names[] = {"unix", "tcp", "shm", "tls", "vsock", "serial"};
    return names[s->kind];
}

const char *ox_stream_error(const struct ox_stream *s)
{
    return s->link != NULL ? ox_link_error(s->link) : s->error;
}

/* -- sockets ----------------------------------------------------------------- */

static int socket_send(struct ox_stream *s, const struct iovec *parts, int count)
{
    struct iovec local[8];
    if (count > 8)
        return fail(s, "%d buffers in one send (at most 8)", count);
    if (s->tls != NULL) {
        for (int i = 0; i < count; i++)
            if (ox_tls_write(s->tls, parts[i].iov_base, parts[i].iov_len, s->error,
                             sizeof s->error) < 0)
                return -1;
        return 0;
    }
    memcpy(local, parts, sizeof *parts * (size_t)count);
    struct iovec *iov = local;
    while (count > 0) {
        struct msghdr message = {.msg_iov = iov, .msg_iovlen = (size_t)count};
        ssize_t sent = sendmsg(s->sock, &message, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            return fail(s, "send failed: %s", strerror(errno));
        }
        while (count > 0 && (size_t)sent >= iov->iov_len) {
            sent -= (ssize_t)iov->iov_len;
            iov++;
            count--;
        }
        if (count > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + sent;
            iov->iov_len -= (size_t)sent;
        }
    }
    return 0;
}

static ssize_t socket_read(struct ox_stream *s, void *dst, size_t nbytes)
{
    if (s->tls != NULL) {
        ssize_t got = ox_tls_read(s->tls, dst, nbytes, s->error, sizeof s->error);
        if (got == 0)
            fail(s, "the GPU server closed the connection");
        return got > 0 ? got : -1;
    }
    struct iovec iov = {.iov_base = dst, .iov_len = nbytes};
    union {
        struct cmsghdr header;
        char bytes[CMSG_SPACE(sizeof(int) * FDS_MAX)];
    } control;
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1};
    if (s->expect_fds) {
        message.msg_control = control.bytes;
        message.msg_controllen = sizeof control.bytes;
    }
    ssize_t got;
    do
        got = recvmsg(s->sock, &message, MSG_CMSG_CLOEXEC | (s->no_wait ? MSG_DONTWAIT : 0));
    while (got < 0 && errno == EINTR);
    if (got < 0) {
        fail(s, "receive failed: %s", strerror(errno));
        return -1;
    }
    if (got == 0) {
        fail(s, "the GPU server closed the connection");
        return -1;
    }
    if (s->expect_fds) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < n; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
                if (s->fd_count < FDS_MAX)
                    s->fds[s->fd_count++] = fd;
                else
                    close(fd);
            }
        }
    }
    return got;
}

static int socket_recv(struct ox_stream *s, uint8_t *dst, size_t nbytes)
{
    while (nbytes > 0) {
        size_t buffered = s->end - s->start;
        if (buffered) {
            size_t take = buffered < nbytes ? buffered : nbytes;
            memcpy(dst, s->buffer + s->start, take);
            s->start += take;
            dst += take;
            nbytes -= take;
            continue;
        }
        if (nbytes >= READ_BUFFER_BYTES / 2 && !s->expect_fds) {
            /* Bulk: straight into the destination, no staging copy. */
            ssize_t got = socket_read(s, dst, nbytes);
            if (got < 0)
                return -1;
            dst += got;
            nbytes -= (size_t)got;
            continue;
        }
        ssize_t got = socket_read(s, s->buffer, READ_BUFFER_BYTES);
        if (got < 0)
            return -1;
        s->start = 0;
        s->end = (size_t)got;
    }
    return 0;
}

int ox_stream_recv_left(struct ox_stream *s, void *dst, size_t nbytes)
{
    /* A TLS connection that failed is unusable; a link's records are not
     * worth salvaging (its agent ends a session with an END record). */
    if (s->tls != NULL || s->link != NULL)
        return -1;
    char error[sizeof s->error];
    memcpy(error, s->error, sizeof error);
    s->no_wait = 1;
    int rc = ox_stream_recv(s, dst, nbytes);
    s->no_wait = 0;
    memcpy(s->error, error, sizeof error);  /* the send's failure stays the reason */
    return rc;
}

void ox_stream_expect_fds(struct ox_stream *s, int on)
{
    s->expect_fds = on;
}

int ox_stream_take_fds(struct ox_stream *s, int *fds, int max)
{
    int n = s->fd_count < max ? s->fd_count : max;
    memcpy(fds, s->fds, sizeof *fds * (size_t)n);
    for (int i = n; i < s->fd_count; i++)
        close(s->fds[i]);
    s->fd_count = 0;
    return n;
}

/* -- shared-memory rings ------------------------------------------------------ */

static uint64_t word(const struct ring *r, int offset)
{
    return atomic_load_explicit(&r->control[offset], memory_order_acquire);
}

static void set_word(struct ring *r, int offset, uint64_t value)
{
    atomic_store_explicit(&r->control[offset], value, memory_order_release);
}

/* After moving an index: a full fence, then wake the peer if it sleeps.
 * Without the fence the store of the index and the load of the flag could
 * pass each other, and both sides would sleep (docs/protocol.md). */
static int ring_doorbell(struct ox_stream *s, struct ring *r, int sleeper_word, int fd)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (!word(r, sleeper_word))
        return 0;
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) != (ssize_t)sizeof one && errno != EAGAIN)
        return fail(s, "doorbell write failed: %s", strerror(errno));
    return 0;
}

static int has_data(const struct ring *r, uint64_t ring_bytes)
{
    (void)ring_bytes;
    return word(r, WORD_HEAD) != word(r, WORD_TAIL);
}

static int has_space(const struct ring *r, uint64_t ring_bytes)
{
    return word(r, WORD_HEAD) - word(r, WORD_TAIL) < ring_bytes;
}

/* The server went away, or wrote to a socket it must leave alone. */
static int peer_gone(struct ox_stream *s)
{
    char byte;
    ssize_t got = recv(s->sock, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (got > 0)
        fail(s, "the GPU server wrote to the control socket of a shared-memory session");
    else
        fail(s, "the GPU server closed the shared-memory session");
    return 1;
}

static int ring_sleep(struct ox_stream *s, struct ring *r, int my_word, int my_fd,
                      int (*ready)(const struct ring *, uint64_t))
{
    int budget = s->spin_checks;
    for (int i = 0; i < budget; i++) {
        if (ready(r, s->ring_bytes)) {
            s->spin_checks = budget * 2 > SPIN_CHECKS_MAX ? SPIN_CHECKS_MAX : budget * 2;
            return 0;
        }
    }
    s->spin_checks = budget / 2 < SPIN_CHECKS_MIN ? SPIN_CHECKS_MIN : budget / 2;
    set_word(r, my_word, 1);
    atomic_thread_fence(memory_order_seq_cst);
    int rc = 0;
    /* Re-check after raising the flag: the peer may have moved the ring
     * just before it could see the flag. */
    while (!ready(r, s->ring_bytes)) {
        struct pollfd p[2] = {{.fd = my_fd, .events = POLLIN}, {.fd = s->sock, .events = POLLIN}};
        int n = poll(p, 2, SLEEP_RECHECK_MS);
        if (n < 0 && errno != EINTR) {
            rc = fail(s, "waiting on the shared-memory doorbell failed: %s", strerror(errno));
            break;
        }
        if (n > 0 && (p[0].revents & POLLIN)) {
            uint64_t count;
            if (read(my_fd, &count, sizeof count) < 0 && errno != EAGAIN && errno != EINTR) {
                rc = fail(s, "reading the shared-memory doorbell failed: %s", strerror(errno));
                break;
            }
        }
        if (n > 0 && p[1].revents && peer_gone(s)) {
            rc = -1;
            break;
        }
    }
    set_word(r, my_word, 0);
    return rc;
}

static int shm_write(struct ox_stream *s, const uint8_t *src, size_t total)
{
    struct ring *r = &s->tx;
    uint64_t size = s->ring_bytes;
    size_t done = 0;
    while (done < total) {
        uint64_t head = word(r, WORD_HEAD);
        uint64_t free_bytes = size - (head - word(r, WORD_TAIL));
        if (free_bytes > size)
            return fail(s, "shared-memory ring corrupted by the peer (free space %llu)",
                        (unsigned long long)free_bytes);
        if (free_bytes == 0) {
            if (ring_doorbell(s, r, WORD_READER_SLEEPS, r->data_fd) < 0
                || ring_sleep(s, r, WORD_WRITER_SLEEPS, r->space_fd, has_space) < 0)
                return -1;
            continue;
        }
        uint64_t position = head % size;
        uint64_t chunk = total - done;
        if (chunk > free_bytes)
            chunk = free_bytes;
        if (chunk > size - position)
            chunk = size - position;
        if (chunk > s->chunk_bytes)
            chunk = s->chunk_bytes;
        memcpy(r->data + position, src + done, chunk);
        set_word(r, WORD_HEAD, head + chunk);
        done += chunk;
        /* Let a sleeping reader drain this chunk while we copy the next. */
        if (done < total && ring_doorbell(s, r, WORD_READER_SLEEPS, r->data_fd) < 0)
            return -1;
    }
    return 0;
}

static int shm_recv(struct ox_stream *s, uint8_t *dst, size_t total)
{
    struct ring *r = &s->rx;
    uint64_t size = s->ring_bytes;
    size_t done = 0;
    while (done < total) {
        uint64_t tail = word(r, WORD_TAIL);
        uint64_t available = word(r, WORD_HEAD) - tail;
        if (available > size)
            return fail(s, "shared-memory ring corrupted by the peer (unread bytes %llu)",
                        (unsigned long long)available);
        if (available == 0) {
            if (s->no_wait)
                return fail(s, "nothing more from the GPU server");
            if (ring_sleep(s, r, WORD_READER_SLEEPS, r->data_fd, has_data) < 0)
                return -1;
            continue;
        }
        uint64_t position = tail % size;
        uint64_t chunk = total - done;
        if (chunk > available)
            chunk = available;
        if (chunk > size - position)
            chunk = size - position;
        memcpy(dst + done, r->data + position, chunk);
        set_word(r, WORD_TAIL, tail + chunk);
        done += chunk;
        if (ring_doorbell(s, r, WORD_WRITER_SLEEPS, r->space_fd) < 0)
            return -1;
    }
    return 0;
}

int ox_stream_upgrade_shm(struct ox_stream *s, const int fds[OX_SHM_FDS], uint64_t ring_bytes)
{
    memcpy(s->shm_fds, fds, sizeof s->shm_fds);
    if (ring_bytes == 0 || ring_bytes > (1ull << 32))
        return fail(s, "SHM_ATTACH offered a ring of %llu bytes", (unsigned long long)ring_bytes);
    s->map_bytes = CONTROL_BYTES + 2 * (size_t)ring_bytes;
    void *map = mmap(NULL, s->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
    if (map == MAP_FAILED)
        return fail(s, "mapping the shared-memory segment failed: %s", strerror(errno));
    s->map = map;
    s->ring_bytes = ring_bytes;
    s->chunk_bytes = ring_bytes / 8 > 4096 ? ring_bytes / 8 : 4096;
    _Atomic uint64_t *control = (_Atomic uint64_t *)map;
    s->tx = (struct ring){control, s->map + CONTROL_BYTES, fds[1], fds[2]};
    s->rx = (struct ring){control + RING_WORDS, s->map + CONTROL_BYTES + ring_bytes, fds[3],
                          fds[4]};
    s->kind = KIND_SHM;
    return 0;
}

/* -- both ------------------------------------------------------------------ */

int ox_stream_send(struct ox_stream *s, const struct iovec *parts, int count)
{
    if (s->link != NULL)
        return ox_link_send(s->link, parts, count);
    if (s->kind != KIND_SHM)
        return socket_send(s, parts, count);
    for (int i = 0; i < count; i++)
        if (shm_write(s, parts[i].iov_base, parts[i].iov_len) < 0)
            return -1;
    return ring_doorbell(s, &s->tx, WORD_READER_SLEEPS, s->tx.data_fd);
}

int ox_stream_recv(struct ox_stream *s, void *dst, size_t nbytes)
{
    if (s->link != NULL)
        return ox_link_recv(s->link, dst, nbytes);
    if (s->kind == KIND_SHM)
        return shm_recv(s, dst, nbytes);
    return socket_recv(s, dst, nbytes);
}

void ox_stream_finish(struct ox_stream *s)
{
    if (s->link != NULL)
        ox_link_end(s->link);
}

void ox_stream_close(struct ox_stream *s)
{
    if (s == NULL)
        return;
    ox_link_close(s->link);
    ox_tls_close(s->tls);
    if (s->map != NULL)
        munmap(s->map, s->map_bytes);
    for (int i = 0; i < OX_SHM_FDS; i++)
        if (s->shm_fds[i] >= 0)
            close(s->shm_fds[i]);
    for (int i = 0; i < s->fd_count; i++)
        close(s->fds[i]);
    if (s->sock >= 0)
        close(s->sock);
    free(s->buffer);
    free(s);
}
