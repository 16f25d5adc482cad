/* The measuring client of benchmarks/dataplane.py, in C like the library it
 * measures, so that the baselines (raw echoes, a raw two-hop relay) and the
 * library's figures pay the same client-side costs. Each mode prints one
 * line of numbers on stdout:
 *
 *   echo ENDPOINT COUNT        round trip of 20 bytes over unix:PATH or
 *                              tcp:HOST:PORT, in us (best of 5 batches)
 *   forward PATH TCP_ENDPOINT  a plain two-hop forwarder: listens on the unix
 *                              socket PATH, relays each connection to
 *                              TCP_ENDPOINT with poll/read/write (prints
 *                              "ready", then runs until killed)
 *   call COUNT                 cuCtxSynchronize round trip, in us
 *   launch COUNT               pipelined cuLaunchKernel of the built-in
 *                              fill_f32 over one element: launches/s end to
 *                              end and launches/s the client alone queues
 *   copy COUNT BYTES           cuMemcpyHtoD and cuMemcpyDtoH of BYTES from
 *                              pinned host memory, in GB/s
 *
 * The session comes from ORIONX_ENDPOINT, ORIONX_TOKEN and ORIONX_TRANSPORT.
 * Once it has printed, a mode waits for its stdin to end before it exits, so
 * that the benchmark can read the servers' CPU time while the session (and
 * the threads serving it) still exist.
 */

#include <orionx/cuda.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SMALL_MESSAGE_BYTES 20 /* a small call's reply: header and status */
#define FORWARD_BUFFER_BYTES (1 << 20)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define CHECK(call)                                                                    \
    do {                                                                               \
        CUresult rc_ = (call);                                                         \
        if (rc_) {                                                                     \
            fprintf(stderr, "dataplane_client: %s failed: %d\n", #call, (int)rc_);     \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static double best_of(int rounds, int count, void (*run)(int))
{
    double best = 1e9;
    for (int r = 0; r < rounds; r++) {
        double start = now_s();
        run(count);
        double took = now_s() - start;
        if (took < best)
            best = took;
    }
    return best;
}

/* unix:PATH or tcp:HOST:PORT, connected (TCP without Nagle's delay). */
static int connect_endpoint(const char *endpoint)
{
    if (strncmp(endpoint, "unix:", 5) == 0) {
        struct sockaddr_un address = {.sun_family = AF_UNIX};
        strncpy(address.sun_path, endpoint + 5, sizeof address.sun_path - 1);
        int sock = socket(AF_UNIX, SOCK_STREAM, 0);
        if (sock < 0 || connect(sock, (struct sockaddr *)&address, sizeof address))
            die(endpoint);
        return sock;
    }
    if (strncmp(endpoint, "tcp:", 4) != 0) {
        fprintf(stderr, "dataplane_client: %s is not unix:PATH or tcp:HOST:PORT\n", endpoint);
        exit(2);
    }
    char host[256];
    snprintf(host, sizeof host, "%s", endpoint + 4);
    char *port = strrchr(host, ':');
    if (port == NULL) {
        fprintf(stderr, "dataplane_client: %s has no port\n", endpoint);
        exit(2);
    }
    *port++ = '\0';
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *found;
    if (getaddrinfo(host, port, &hints, &found))
        die(endpoint);
    int sock = socket(found->ai_family, SOCK_STREAM, 0);
    if (sock < 0 || connect(sock, found->ai_addr, found->ai_addrlen))
        die(endpoint);
    freeaddrinfo(found);
    int one = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return sock;
}

static int write_all(int fd, const char *data, size_t size)
{
    while (size) {
        ssize_t n = write(fd, data, size);
        if (n <= 0)
            return -1;
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

static int echo_sock;
static void echo(int count)
{
    char message[SMALL_MESSAGE_BYTES] = {0}, reply[SMALL_MESSAGE_BYTES];
    for (int i = 0; i < count; i++) {
        if (write_all(echo_sock, message, sizeof message))
            die("echo write");
        for (size_t got = 0; got < sizeof reply;) {
            ssize_t n = read(echo_sock, reply + got, sizeof reply - got);
            if (n <= 0)
                die("echo read");
            got += (size_t)n;
        }
    }
}

/* One relayed connection: whatever arrives on either side goes to the other
 * until either ends. */
static void forward_connection(int guest, const char *target)
{
    int remote = connect_endpoint(target);
    static char buffer[FORWARD_BUFFER_BYTES];
    struct pollfd fds[2] = {{.fd = guest, .events = POLLIN}, {.fd = remote, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0)
            die("poll");
        for (int i = 0; i < 2; i++) {
            if (!fds[i].revents)
                continue;
            ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
            if (n <= 0 || write_all(fds[1 - i].fd, buffer, (size_t)n))
                exit(0);
        }
    }
}

static void forward(const char *path, const char *target)
{
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, path, sizeof address.sun_path - 1);
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) ||
        listen(listener, 16))
        die(path);
    signal(SIGCHLD, SIG_IGN); /* children reaped by the kernel */
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        int guest = accept(listener, NULL, NULL);
        if (guest < 0)
            continue;
        if (fork() == 0) {
            close(listener);
            forward_connection(guest, target);
        }
        close(guest);
    }
}

static void sync_calls(int count)
{
    for (int i = 0; i < count; i++)
        CHECK(cuCtxSynchronize());
}

static CUfunction fill;
static CUdeviceptr buffer;
static double enqueue_s; /* of the last launches(): until the last launch returned */
static void launches(int count)
{
    unsigned char params[20];
    unsigned long long n = 1;
    float value = 1.0f;
    memcpy(params, &buffer, 8);
    memcpy(params + 8, &n, 8);
    memcpy(params + 16, &value, 4);
    size_t size = sizeof params;
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, params, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                     CU_LAUNCH_PARAM_END};
    double start = now_s();
    for (int i = 0; i < count; i++)
        CHECK(cuLaunchKernel(fill, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, extra));
    enqueue_s = now_s() - start;
    CHECK(cuCtxSynchronize());
}

static void *host;
static size_t copy_bytes;
static void htod(int count)
{
    for (int i = 0; i < count; i++)
        CHECK(cuMemcpyHtoD(buffer, host, copy_bytes));
}
static void dtoh(int count)
{
    for (int i = 0; i < count; i++)
        CHECK(cuMemcpyDtoH(host, buffer, copy_bytes));
}

/* Printed: wait until the benchmark has taken its readings. */
static void hold(void)
{
    fflush(stdout);
    char byte;
    while (read(0, &byte, 1) > 0)
        ;
}

static void usage(void)
{
    fprintf(stderr, "usage: dataplane_client echo ENDPOINT COUNT | forward PATH TCP_ENDPOINT | "
                    "call COUNT | launch COUNT | copy COUNT BYTES\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        usage();
    const char *mode = argv[1];
    if (strcmp(mode, "forward") == 0) {
        if (argc < 4)
            usage();
        forward(argv[2], argv[3]);
        return 0;
    }
    if (strcmp(mode, "echo") == 0) {
        if (argc < 4)
            usage();
        int count = atoi(argv[3]);
        echo_sock = connect_endpoint(argv[2]);
        echo(count);
        printf("%.3f\n", best_of(5, count, echo) / count * 1e6);
        hold();
        return 0;
    }
    int count = atoi(argv[2]);
    if (count <= 0)
        usage();
    CUcontext context;
    CHECK(cuInit(0));
    CHECK(cuCtxCreate(&context, 0, 0));
    copy_bytes = argc > 3 ? strtoull(argv[3], NULL, 10) : 4096;
    CHECK(cuMemAlloc(&buffer, copy_bytes));
    if (strcmp(mode, "call") == 0) {
        sync_calls(count);
        printf("%.3f\n", best_of(5, count, sync_calls) / count * 1e6);
    } else if (strcmp(mode, "launch") == 0) {
        CUmodule module;
        CHECK(cuModuleLoadData(&module, "orionx:builtin-kernels"));
        CHECK(cuModuleGetFunction(&fill, module, "fill_f32"));
        launches(count / 10);
        double end_to_end = best_of(3, count, launches);
        printf("%.0f %.0f\n", count / end_to_end, count / enqueue_s);
    } else if (strcmp(mode, "copy") == 0) {
        CHECK(cuMemAllocHost(&host, copy_bytes));
        memset(host, 1, copy_bytes);
        htod(1);
        dtoh(1);
        double up = best_of(5, count, htod), down = best_of(5, count, dtoh);
        printf("%.3f %.3f\n", (double)copy_bytes * count / up / 1e9,
               (double)copy_bytes * count / down / 1e9);
    } else {
        usage();
    }
    hold();
    return 0;
}
