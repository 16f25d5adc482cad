/* Where the library connects: the environment orionx-run sets, the same
 * variables guest_runtime/runtime.py reads (docs/libcuda.md). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ox_internal.h"

#define CONNECT_TIMEOUT_MS 10000

static const char *kind_prefix[] = {"unix:", "vsock:", "serial:", "tcp:", "tls:"};

static int parse_endpoint(const char *text, size_t length, struct ox_endpoint *e)
{
    memset(e, 0, sizeof *e);
    if (length >= sizeof e->text)
        return -1;
    memcpy(e->text, text, length);
    for (int kind = OX_EP_UNIX; kind <= OX_EP_TLS; kind++) {
        size_t prefix = strlen(kind_prefix[kind]);
        if (strncmp(e->text, kind_prefix[kind], prefix) != 0 || !e->text[prefix])
            continue;
        e->kind = (enum ox_endpoint_kind)kind;
        const char *rest = e->text + prefix;
        if (kind == OX_EP_UNIX || kind == OX_EP_SERIAL) {
            if (strlen(rest) >= sizeof e->path)
                return -1;
            memcpy(e->path, rest, strlen(rest) + 1);
            return 0;
        }
        const char *colon = strrchr(rest, ':');
        if (colon == NULL || colon == rest || !colon[1] || strlen(colon + 1) >= sizeof e->port)
            return -1;
        for (const char *c = colon + 1; *c; c++)
            if (!isdigit((unsigned char)*c))
                return -1;
        const char *host = rest;
        size_t host_bytes = (size_t)(colon - rest);
        if (host[0] == '[' && host_bytes > 2 && host[host_bytes - 1] == ']') {
            host++;
            host_bytes -= 2;
        }
        if (host_bytes >= sizeof e->host)
            return -1;
        memcpy(e->host, host, host_bytes);
        snprintf(e->port, sizeof e->port, "%s", colon + 1);
        return 0;
    }
    return -1;
}

static int by_speed(const void *a, const void *b)
{
    const struct ox_endpoint *x = a, *y = b;
    return (int)x->kind - (int)y->kind;  /* the enum is in fastest-first order */
}

static CUresult parse_endpoints(struct ox_config *config, const char *list, const char *call)
{
    for (const char *item = list; *item;) {
        while (*item == ' ' || *item == ',')
            item++;
        size_t length = strcspn(item, ",");
        while (length && item[length - 1] == ' ')
            length--;
        if (!length)
            break;
        if (config->endpoint_count == OX_ENDPOINTS_MAX)
            return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                           "ORIONX_ENDPOINT lists more than %d endpoints", OX_ENDPOINTS_MAX);
        if (parse_endpoint(item, length, &config->endpoints[config->endpoint_count]) < 0)
            return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                           "ORIONX_ENDPOINT item %.*s is not unix:PATH, tcp:HOST:PORT, "
                           "tls:HOST:PORT, vsock:CID:PORT or serial:PATH", (int)length, item);
        config->endpoint_count++;
        item += strcspn(item, ",");
    }
    /* Stable: endpoints of one kind keep the order given. */
    for (int i = 1; i < config->endpoint_count; i++)
        for (int j = i; j > 0 && by_speed(&config->endpoints[j - 1], &config->endpoints[j]) > 0;
             j--) {
            struct ox_endpoint swap = config->endpoints[j];
            config->endpoints[j] = config->endpoints[j - 1];
            config->endpoints[j - 1] = swap;
        }
    return CUDA_SUCCESS;
}

static int base64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* The token's payload JSON (read, not verified: the server verifies). */
static char *token_payload(const char *token)
{
    const char *start = strchr(token, '.');
    if (start == NULL)
        return NULL;
    start++;
    size_t length = strcspn(start, ".");
    char *out = malloc(length * 3 / 4 + 4);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    uint32_t bits = 0;
    int count = 0;
    for (size_t i = 0; i < length; i++) {
        int v = base64url_value(start[i]);
        if (v < 0)
            break;
        bits = (bits << 6) | (uint32_t)v;
        if (++count == 4) {
            out[n++] = (char)(bits >> 16);
            out[n++] = (char)(bits >> 8);
            out[n++] = (char)bits;
            bits = 0;
            count = 0;
        }
    }
    if (count == 2)
        out[n++] = (char)(bits >> 4);
    else if (count == 3) {
        out[n++] = (char)(bits >> 10);
        out[n++] = (char)(bits >> 2);
    }
    out[n] = '\0';
    return out;
}

/* The vGPUs of the token: how many, and each one's "id". A token this
 * cannot read counts as one vGPU (the server says what is wrong with it). */
static void read_vgpus(struct ox_config *config)
{
    config->device_count = 1;
    char *json = token_payload(config->token);
    const char *list = json ? strstr(json, "\"vgpus\"") : NULL;
    list = list ? strchr(list, '[') : NULL;
    if (list == NULL) {
        free(json);
        return;
    }
    int count = 0, depth = 0;
    for (const char *c = list + 1; *c && !(depth == 0 && *c == ']'); c++) {
        if (*c == '{' && depth++ == 0 && count < OX_DEVICES_MAX) {
            const char *id = strstr(c, "\"id\"");
            const char *end = id ? strchr(c, '}') : NULL;
            if (id && end && id < end && (id = strchr(id + 4, '"')) != NULL && id < end) {
                size_t length = strcspn(id + 1, "\"");
                if (length >= sizeof config->vgpu_ids[0])
                    length = sizeof config->vgpu_ids[0] - 1;
                memcpy(config->vgpu_ids[count], id + 1, length);
            }
            count++;
        } else if (*c == '}') {
            depth--;
        }
    }
    free(json);
    if (count > OX_DEVICES_MAX)
        count = OX_DEVICES_MAX;
    int first = (int)config->first_vgpu_index;
    config->device_count = count - first > 1 ? count - first : 1;
    if (first > 0 && first < count)
        memmove(config->vgpu_ids[0], config->vgpu_ids[first],
                sizeof config->vgpu_ids[0] * (size_t)(count - first));
}

static CUresult no_endpoint(const char *call)
{
    if (getenv("ORIONX_CONTROLLER") && getenv("ORIONX_ALLOCATION"))
        return ox_fail(CUDA_ERROR_NO_DEVICE, call,
                       "acquire mode (ORIONX_CONTROLLER and ORIONX_ALLOCATION) is not served by "
                       "the C library yet: bind the allocation first and run the program under "
                       "orionx-run --endpoint ... --token ...");
    if (access("/dev/vsock", F_OK) == 0
        || access("/dev/virtio-ports/org.orionx.agent.0", F_OK) == 0)
        return ox_fail(CUDA_ERROR_NO_DEVICE, call,
                       "this looks like a KVM guest, but its link to the host's agent (vsock, "
                       "virtio-serial) is a later phase of the C library: set ORIONX_ENDPOINT "
                       "and ORIONX_TOKEN");
    return ox_fail(CUDA_ERROR_NO_DEVICE, call,
                   "no OrionX GPU server configured: run the program under orionx-run, or "
                   "set ORIONX_ENDPOINT and ORIONX_TOKEN");
}

CUresult ox_config_load(struct ox_config *config, const char *call)
{
    memset(config, 0, sizeof *config);
    config->connect_timeout_ms = CONNECT_TIMEOUT_MS;
    const char *endpoint = getenv("ORIONX_ENDPOINT");
    const char *token = getenv("ORIONX_TOKEN");
    if (endpoint == NULL || token == NULL || !*endpoint || !*token)
        return no_endpoint(call);
    const char *transport = getenv("ORIONX_TRANSPORT");
    if (transport == NULL || !*transport || strcmp(transport, "auto") == 0)
        config->transport = OX_CHOOSE_AUTO;
    else if (strcmp(transport, "shm") == 0)
        config->transport = OX_CHOOSE_SHM;
    else if (strcmp(transport, "unix") == 0)
        config->transport = OX_CHOOSE_UNIX;
    else if (strcmp(transport, "tcp") == 0)
        config->transport = OX_CHOOSE_TCP;
    else if (strcmp(transport, "tls") == 0 || strcmp(transport, "vsock") == 0
             || strcmp(transport, "serial") == 0)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                       "ORIONX_TRANSPORT=%s is not served by the C library yet (TLS, vsock and "
                       "virtio-serial are a later phase): use auto, shm, unix or tcp",
                       transport);
    else
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "ORIONX_TRANSPORT=%s is not one of auto, shm, unix, tcp", transport);
    const char *index = getenv("ORIONX_VGPU_INDEX");
    config->first_vgpu_index = index ? (uint32_t)strtoul(index, NULL, 10) : 0;
    const char *ring = getenv("ORIONX_SHM_RING_BYTES");
    config->shm_ring_bytes = ring ? strtoull(ring, NULL, 10) : 0;
    CUresult status = parse_endpoints(config, endpoint, call);
    if (status != CUDA_SUCCESS)
        return status;
    config->token = strdup(token);
    if (config->token == NULL)
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for the token");
    read_vgpus(config);
    return CUDA_SUCCESS;
}
