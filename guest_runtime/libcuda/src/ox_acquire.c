/* Acquire mode: orionx-run binds the allocation for the program (it talks
 * to the controller; this library speaks only the data plane) and answers
 * on a unix socket, ORIONX_ACQUIRE_SOCKET, in lines:
 *
 *   "count\n" -> "ok N\n"                     the allocation's vGPUs, unbound
 *   "bind\n"  -> "ok N\n" then N lines         one per device, in device order:
 *                "ENDPOINTS TOKEN VGPU_INDEX\n"
 *   either    -> "error CODE MESSAGE\n"        CODE a CUresult
 *
 * The broker waits in the queue (printing the position itself) before it
 * answers a bind, so this side just blocks. The connection stays open for
 * the process's life; the broker unbinds when it closes. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ox_internal.h"

#define LINE_MAX_BYTES (64u << 10)

static pthread_mutex_t bind_lock = PTHREAD_MUTEX_INITIALIZER;
static int bound;  /* under bind_lock; read unlocked as a hint only through ox_acquire_bound */

static int send_line(int fd, const char *line)
{
    size_t left = strlen(line);
    while (left) {
        ssize_t n = send(fd, line, left, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        line += n;
        left -= (size_t)n;
    }
    return 0;
}

/* One line (without its newline) into a malloc'd string, or NULL with WHY.
 * Byte by byte: lines are few and short, and nothing after a line may be
 * consumed (the next answer belongs to a later call). */
static char *read_line(int fd, char *why, size_t why_bytes)
{
    size_t capacity = 256, used = 0;
    char *line = malloc(capacity);
    if (line == NULL) {
        snprintf(why, why_bytes, "out of host memory");
        return NULL;
    }
    for (;;) {
        char c;
        ssize_t n = recv(fd, &c, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, why_bytes, "%s", n == 0 ? "the broker closed the connection"
                                                  : strerror(errno));
            free(line);
            return NULL;
        }
        if (c == '\n')
            break;
        if (used + 2 > capacity) {
            if (capacity >= LINE_MAX_BYTES) {
                snprintf(why, why_bytes, "the broker sent a line of more than %u bytes",
                         LINE_MAX_BYTES);
                free(line);
                return NULL;
            }
            capacity *= 2;
            char *grown = realloc(line, capacity);
            if (grown == NULL) {
                snprintf(why, why_bytes, "out of host memory");
                free(line);
                return NULL;
            }
            line = grown;
        }
        line[used++] = c;
    }
    line[used] = '\0';
    return line;
}

/* Read the "ok N" or "error CODE MESSAGE" answer: N, or -1 after ox_fail. */
static long read_answer(int fd, const char *asked, const char *call, CUresult *status)
{
    char why[256];
    char *line = read_line(fd, why, sizeof why);
    if (line == NULL) {
        *status = ox_fail(CUDA_ERROR_NO_DEVICE, call,
                          "orionx-run's acquire broker (ORIONX_ACQUIRE_SOCKET) did not answer "
                          "%s: %s; run the program again under orionx-run", asked, why);
        return -1;
    }
    long value = -1;
    char *end;
    if (strncmp(line, "ok ", 3) == 0) {
        value = strtol(line + 3, &end, 10);
        if (end == line + 3 || *end || value < 0)
            value = -1;
    } else if (strncmp(line, "error ", 6) == 0) {
        long code = strtol(line + 6, &end, 10);
        if (end != line + 6 && code > 0 && (*end == ' ' || !*end)) {
            *status = ox_fail((CUresult)code, call, "%s", *end ? end + 1 : "the broker refused");
            free(line);
            return -1;
        }
    }
    if (value < 0)
        *status = ox_fail(CUDA_ERROR_UNKNOWN, call,
                          "orionx-run's acquire broker answered %s with \"%.200s\", not \"ok N\" "
                          "or \"error CODE MESSAGE\": orionx-run and this library differ in "
                          "version", asked, line);
    free(line);
    return value;
}

CUresult ox_acquire_count(struct ox_config *config, const char *path, const char *call)
{
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof address.sun_path)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "ORIONX_ACQUIRE_SOCKET %s is longer than %zu bytes", path,
                       sizeof address.sun_path - 1);
    memcpy(address.sun_path, path, strlen(path) + 1);
    /* CLOEXEC: an exec'd child connects on its own, and the broker sees this
     * process end when the connection closes. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) < 0) {
        int error = errno;
        if (fd >= 0)
            close(fd);
        return ox_fail(CUDA_ERROR_NO_DEVICE, call,
                       "cannot reach orionx-run's acquire broker at ORIONX_ACQUIRE_SOCKET=%s "
                       "(%s): run the program under orionx-run", path, strerror(error));
    }
    config->acquire_fd = fd;
    CUresult status = CUDA_SUCCESS;
    if (send_line(fd, "count\n") < 0)
        return ox_fail(CUDA_ERROR_NO_DEVICE, call,
                       "orionx-run's acquire broker closed the connection: run the program "
                       "again under orionx-run");
    long count = read_answer(fd, "count", call, &status);
    if (count < 0)
        return status;
    if (count == 0 || count > OX_DEVICES_MAX)
        return ox_fail(CUDA_ERROR_NO_DEVICE, call,
                       "the allocation has %ld vGPUs; this library serves 1 to %d", count,
                       OX_DEVICES_MAX);
    config->device_count = (int)count;
    return CUDA_SUCCESS;
}

/* "ENDPOINTS TOKEN VGPU_INDEX" into ROUTE. */
static CUresult parse_route(char *line, struct ox_route *route, int device, const char *call)
{
    char *token = strchr(line, ' ');
    char *index = token ? strrchr(token + 1, ' ') : NULL;
    char *end = NULL;
    unsigned long vgpu = index ? strtoul(index + 1, &end, 10) : 0;
    if (token == NULL || index == NULL || index == token || end == index + 1 || *end
        || vgpu > UINT32_MAX)
        return ox_fail(CUDA_ERROR_UNKNOWN, call,
                       "orionx-run's acquire broker sent device %d's line not as \"ENDPOINTS "
                       "TOKEN VGPU_INDEX\": orionx-run and this library differ in version",
                       device);
    *token++ = '\0';
    *index = '\0';
    /* In the broker's order, not fastest first: a direct remote endpoint
     * comes before the local relay it falls back to. */
    CUresult status = ox_parse_endpoints(route, line, 0, "the acquire broker's endpoints",
                                         call);
    if (status != CUDA_SUCCESS)
        return status;
    char *copy = strdup(token);
    if (copy == NULL)
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for a token");
    free(route->token);
    route->token = copy;
    route->vgpu_index = (uint32_t)vgpu;
    ox_token_vgpus(copy, route->vgpu_index, route->vgpu_id, sizeof route->vgpu_id);
    return CUDA_SUCCESS;
}

CUresult ox_acquire_bind(struct ox_config *config, int again, const char *call)
{
    if (config->mode != OX_MODE_ACQUIRE)
        return CUDA_SUCCESS;
    pthread_mutex_lock(&bind_lock);
    CUresult status = CUDA_SUCCESS;
    if (bound && !again)
        goto done;
    if (send_line(config->acquire_fd, "bind\n") < 0) {
        status = ox_fail(CUDA_ERROR_NO_DEVICE, call,
                         "orionx-run's acquire broker closed the connection: run the program "
                         "again under orionx-run");
        goto done;
    }
    long count = read_answer(config->acquire_fd, "bind", call, &status);
    if (count < 0)
        goto done;
    if (count != config->device_count) {
        status = ox_fail(CUDA_ERROR_UNKNOWN, call,
                         "orionx-run's acquire broker bound %ld vGPUs but counted %d before: "
                         "run the program again", count, config->device_count);
        goto done;
    }
    for (int d = 0; d < config->device_count && status == CUDA_SUCCESS; d++) {
        char why[256];
        char *line = read_line(config->acquire_fd, why, sizeof why);
        if (line == NULL) {
            status = ox_fail(CUDA_ERROR_NO_DEVICE, call,
                             "orionx-run's acquire broker stopped in the middle of its bind "
                             "answer: %s", why);
            break;
        }
        status = parse_route(line, &config->routes[d], d, call);
        free(line);
    }
    if (status == CUDA_SUCCESS)
        __atomic_store_n(&bound, 1, __ATOMIC_RELEASE);
done:
    pthread_mutex_unlock(&bind_lock);
    return status;
}

int ox_acquire_bound(const struct ox_config *config)
{
    return config->mode != OX_MODE_ACQUIRE || __atomic_load_n(&bound, __ATOMIC_ACQUIRE);
}
