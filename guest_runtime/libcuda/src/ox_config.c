/* Where the library connects: the environment orionx-run sets, the same
 * variables guest_runtime/runtime.py reads (docs/libcuda.md). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ox_internal.h"
#include "ox_stream.h"

#define CONNECT_TIMEOUT_MS 10000

static const char *kind_prefix[] = {"unix:", "vsock:", "serial:", "tcp:", "tls:"};

static int all_digits(const char *text)
{
    if (!*text)
        return 0;
    for (const char *c = text; *c; c++)
        if (!isdigit((unsigned char)*c))
            return 0;
    return 1;
}

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
        if (colon == NULL || colon == rest || strlen(colon + 1) >= sizeof e->port
            || !all_digits(colon + 1))
            return -1;
        snprintf(e->port, sizeof e->port, "%s", colon + 1);
        const char *host = rest;
        size_t host_bytes = (size_t)(colon - rest);
        if (kind == OX_EP_VSOCK) {
            char cid[16];
            if (host_bytes >= sizeof cid)
                return -1;
            memcpy(cid, host, host_bytes);
            cid[host_bytes] = '\0';
            if (!all_digits(cid) || strtoul(cid, NULL, 10) > UINT32_MAX
                || strtoul(e->port, NULL, 10) > UINT32_MAX)
                return -1;
            e->cid = (unsigned)strtoul(cid, NULL, 10);
            return 0;
        }
        if (host[0] == '[' && host_bytes > 2 && host[host_bytes - 1] == ']') {
            host++;
            host_bytes -= 2;
        }
        if (host_bytes >= sizeof e->host)
            return -1;
        memcpy(e->host, host, host_bytes);
        return 0;
    }
    return -1;
}

static int by_speed(const void *a, const void *b)
{
    const struct ox_endpoint *x = a, *y = b;
    return (int)x->kind - (int)y->kind;  /* the enum is in fastest-first order */
}

CUresult ox_parse_endpoints(struct ox_route *route, const char *list, int sort,
                            const char *variable, const char *call)
{
    route->endpoint_count = 0;
    for (const char *item = list; *item;) {
        while (*item == ' ' || *item == ',')
            item++;
        size_t length = strcspn(item, ",");
        while (length && item[length - 1] == ' ')
            length--;
        if (!length)
            break;
        if (route->endpoint_count == OX_ENDPOINTS_MAX)
            return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                           "%s lists more than %d endpoints", variable, OX_ENDPOINTS_MAX);
        if (parse_endpoint(item, length, &route->endpoints[route->endpoint_count]) < 0)
            return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                           "%s item %.*s is not unix:PATH, tcp:HOST:PORT, "
                           "tls:HOST:PORT, vsock:CID:PORT or serial:PATH", variable,
                           (int)length, item);
        route->endpoint_count++;
        item += strcspn(item, ",");
    }
    if (route->endpoint_count == 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "%s lists no endpoint", variable);
    /* Stable: endpoints of one kind keep the order given. */
    for (int i = 1; sort && i < route->endpoint_count; i++)
        for (int j = i; j > 0 && by_speed(&route->endpoints[j - 1], &route->endpoints[j]) > 0;
             j--) {
            struct ox_endpoint swap = route->endpoints[j];
            route->endpoints[j] = route->endpoints[j - 1];
            route->endpoints[j - 1] = swap;
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

/* The token's vGPUs: how many, and the "id" of vGPU INDEX. A token this
 * cannot read counts as one vGPU (the server says what is wrong with it). */
int ox_token_vgpus(const char *token, uint32_t index, char *id_out, size_t id_bytes)
{
    if (id_bytes)
        id_out[0] = '\0';
    char *json = token_payload(token);
    const char *list = json ? strstr(json, "\"vgpus\"") : NULL;
    list = list ? strchr(list, '[') : NULL;
    if (list == NULL) {
        free(json);
        return 1;
    }
    int count = 0, depth = 0;
    for (const char *c = list + 1; *c && !(depth == 0 && *c == ']'); c++) {
        if (*c == '{' && depth++ == 0) {
            const char *id = strstr(c, "\"id\"");
            const char *end = id ? strchr(c, '}') : NULL;
            if ((uint32_t)count == index && id_bytes && id && end && id < end
                && (id = strchr(id + 4, '"')) != NULL && id < end) {
                size_t length = strcspn(id + 1, "\"");
                if (length >= id_bytes)
                    length = id_bytes - 1;
                memcpy(id_out, id + 1, length);
                id_out[length] = '\0';
            }
            count++;
        } else if (*c == '}') {
            depth--;
        }
    }
    free(json);
    return count > 0 ? count : 1;
}

/* What to say when nothing names a GPU server. */
static CUresult nothing_configured(const char *call)
{
    if (getenv("ORIONX_CONTROLLER") && getenv("ORIONX_ALLOCATION"))
        return ox_fail(CUDA_ERROR_NO_DEVICE, call,
                       "ORIONX_CONTROLLER and ORIONX_ALLOCATION are set but the C library binds "
                       "acquire-mode allocations through orionx-run: run the program under "
                       "orionx-run --allocation ..., which sets ORIONX_ACQUIRE_SOCKET");
    if (getenv("ORIONX_TOKEN") && *getenv("ORIONX_TOKEN"))
        return ox_fail(CUDA_ERROR_NO_DEVICE, call,
                       "ORIONX_TOKEN is set but ORIONX_ENDPOINT is not: set it to the GPU "
                       "server's endpoints (unix:PATH, tcp:HOST:PORT, ...)");
    return ox_fail(CUDA_ERROR_NO_DEVICE, call,
                   "no OrionX GPU server configured: run the program under orionx-run, or "
                   "set ORIONX_ENDPOINT and ORIONX_TOKEN");
}

static CUresult read_transport(struct ox_config *config, const char *call)
{
    static const char *names[] = {"auto", "shm", "unix", "tcp", "tls", "vsock", "serial"};
    const char *transport = getenv("ORIONX_TRANSPORT");
    if (transport == NULL || !*transport) {
        config->transport = OX_CHOOSE_AUTO;
        return CUDA_SUCCESS;
    }
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(transport, names[i]) == 0) {
            config->transport = (enum ox_transport_choice)i;
            return CUDA_SUCCESS;
        }
    return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                   "ORIONX_TRANSPORT=%s is not one of auto, shm, unix, tcp, tls, vsock, serial",
                   transport);
}

static CUresult copy_setting(char *out, size_t out_bytes, const char *variable,
                             const char *fallback, const char *call)
{
    const char *value = getenv(variable);
    if (value == NULL || !*value)
        value = fallback;
    if (strlen(value) >= out_bytes)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "%s is longer than %zu bytes", variable,
                       out_bytes - 1);
    memcpy(out, value, strlen(value) + 1);
    return CUDA_SUCCESS;
}

/* Direct mode: every device on the same endpoints with one token, device
 * D being the token's vGPU ORIONX_VGPU_INDEX + D. */
static CUresult direct_routes(struct ox_config *config, const char *token, const char *call)
{
    const char *index = getenv("ORIONX_VGPU_INDEX");
    uint32_t first = index ? (uint32_t)strtoul(index, NULL, 10) : 0;
    int count = ox_token_vgpus(token, 0, NULL, 0);
    if (count > OX_DEVICES_MAX)
        count = OX_DEVICES_MAX;
    config->device_count = count - (int)first > 1 ? count - (int)first : 1;
    for (int d = 0; d < config->device_count; d++) {
        struct ox_route *r = &config->routes[d];
        if (d > 0)
            memcpy(r->endpoints, config->routes[0].endpoints, sizeof r->endpoints);
        r->endpoint_count = config->routes[0].endpoint_count;
        r->vgpu_index = first + (uint32_t)d;
        ox_token_vgpus(token, r->vgpu_index, r->vgpu_id, sizeof r->vgpu_id);
        r->token = strdup(token);
        if (r->token == NULL)
            return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for the token");
    }
    return CUDA_SUCCESS;
}

static int is_link(enum ox_endpoint_kind kind)
{
    return kind == OX_EP_VSOCK || kind == OX_EP_SERIAL;
}

/* A KVM guest with nothing set: the links its devices offer, vsock first
 * (guest_runtime/vm_devices.py finds the same). */
static int vm_endpoints(struct ox_config *config)
{
    struct ox_route *r = &config->routes[0];
    r->endpoint_count = 0;
    if (config->transport != OX_CHOOSE_SERIAL && access(OX_VSOCK_DEVICE, F_OK) == 0) {
        struct ox_endpoint *e = &r->endpoints[r->endpoint_count++];
        const char *port = getenv("ORIONX_VSOCK_PORT");
        unsigned long number = port && all_digits(port) ? strtoul(port, NULL, 10)
                                                         : OX_VSOCK_DEFAULT_PORT;
        e->kind = OX_EP_VSOCK;
        e->cid = OX_VSOCK_HOST_CID;
        snprintf(e->port, sizeof e->port, "%lu", number);
        snprintf(e->text, sizeof e->text, "vsock:%u:%lu", OX_VSOCK_HOST_CID, number);
    }
    /* ORIONX_VM_SERIAL_PORT: another port name (and the tests' stand-in). */
    const char *serial = getenv("ORIONX_VM_SERIAL_PORT");
    if (serial == NULL || !*serial || strlen(serial) >= sizeof r->endpoints[0].path)
        serial = OX_SERIAL_PORT_PATH;
    if (config->transport != OX_CHOOSE_VSOCK && access(serial, F_OK) == 0) {
        struct ox_endpoint *e = &r->endpoints[r->endpoint_count++];
        e->kind = OX_EP_SERIAL;
        snprintf(e->path, sizeof e->path, "%s", serial);
        snprintf(e->text, sizeof e->text, "serial:%s", serial);
    }
    return r->endpoint_count;
}

/* VM mode: ask the agent over the first link that answers how many vGPUs
 * the VM has; device D is the VM's vGPU D, on every link. */
static CUresult vm_routes(struct ox_config *config, const char *call)
{
    struct ox_route *first = &config->routes[0];
    char failures[1024] = "";
    size_t used = 0;
    int count = 0, refused = 0;
    for (int i = 0; i < first->endpoint_count && count == 0; i++) {
        const struct ox_endpoint *e = &first->endpoints[i];
        if ((config->transport == OX_CHOOSE_VSOCK && e->kind != OX_EP_VSOCK)
            || (config->transport == OX_CHOOSE_SERIAL && e->kind != OX_EP_SERIAL))
            continue;
        char why[512];
        int refusal = 0;
        count = ox_stream_link_count(e->kind == OX_EP_VSOCK, e->path, e->cid,
                                     (unsigned)strtoul(e->port, NULL, 10),
                                     config->connect_timeout_ms, why, sizeof why, &refusal);
        if (count > 0)
            break;
        refused |= refusal;
        int n = snprintf(failures + used, sizeof failures - used, "%s%s: %s", used ? "; " : "",
                         e->text, why);
        if (n > 0 && (size_t)n < sizeof failures - used)
            used += (size_t)n;
    }
    if (count <= 0) {
        if (refused)
            return ox_fail(CUDA_ERROR_NO_DEVICE, call,
                           "this VM's link to its host's OrionX agent does not serve it (%s)",
                           failures[0] ? failures : "no link of that kind");
        return ox_fail(CUDA_ERROR_NO_DEVICE, call,
                       "this VM's link to its host's OrionX agent does not answer (%s): attach "
                       "a vGPU on the host (orionx vgpu attach DOMAIN ...) and check that "
                       "orionx-agent runs there; not an OrionX VM: run the program under "
                       "orionx-run, or set ORIONX_ENDPOINT and ORIONX_TOKEN",
                       failures[0] ? failures : "no link of that kind");
    }
    config->device_count = count < OX_DEVICES_MAX ? count : OX_DEVICES_MAX;
    for (int d = 0; d < config->device_count; d++) {
        struct ox_route *r = &config->routes[d];
        if (d > 0)
            memcpy(r->endpoints, first->endpoints, sizeof r->endpoints);
        r->endpoint_count = first->endpoint_count;
        r->vgpu_index = (uint32_t)d;  /* the agent swaps in that vGPU's token */
        r->token = strdup("");
        snprintf(r->vgpu_id, sizeof r->vgpu_id, "vm-vgpu-%d", d);
        if (r->token == NULL)
            return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for a route");
    }
    return CUDA_SUCCESS;
}

static CUresult load(struct ox_config *config, const char *call)
{
    CUresult status = read_transport(config, call);
    if (status == CUDA_SUCCESS)
        status = copy_setting(config->tls_ca_file, sizeof config->tls_ca_file,
                              "ORIONX_TLS_CA_FILE", "", call);
    if (status == CUDA_SUCCESS)
        status = copy_setting(config->pci_sysfs_root, sizeof config->pci_sysfs_root,
                              "ORIONX_PCI_SYSFS_ROOT", OX_PCI_SYSFS_ROOT, call);
    if (status != CUDA_SUCCESS)
        return status;
    const char *ring = getenv("ORIONX_SHM_RING_BYTES");
    config->shm_ring_bytes = ring ? strtoull(ring, NULL, 10) : 0;
    const char *endpoint = getenv("ORIONX_ENDPOINT");
    const char *token = getenv("ORIONX_TOKEN");
    const char *broker = getenv("ORIONX_ACQUIRE_SOCKET");
    if (endpoint != NULL && *endpoint) {
        status = ox_parse_endpoints(&config->routes[0], endpoint, 1, "ORIONX_ENDPOINT", call);
        if (status != CUDA_SUCCESS)
            return status;
        if (token != NULL && *token) {
            config->mode = OX_MODE_DIRECT;
            return direct_routes(config, token, call);
        }
        int links = 1;
        for (int i = 0; i < config->routes[0].endpoint_count; i++)
            links &= is_link(config->routes[0].endpoints[i].kind);
        if (!links)
            return ox_fail(CUDA_ERROR_NO_DEVICE, call,
                           "ORIONX_ENDPOINT is set but ORIONX_TOKEN is not: set the session "
                           "token (only vsock: and serial: links to a VM's agent need none)");
        config->mode = OX_MODE_VM;
        return vm_routes(config, call);
    }
    if (broker != NULL && *broker) {
        config->mode = OX_MODE_ACQUIRE;
        return ox_acquire_count(config, broker, call);
    }
    if ((token != NULL && *token) || getenv("ORIONX_CONTROLLER") || vm_endpoints(config) == 0)
        return nothing_configured(call);
    config->mode = OX_MODE_VM;
    return vm_routes(config, call);
}

static void forget(struct ox_config *config)
{
    for (int d = 0; d < OX_DEVICES_MAX; d++)
        free(config->routes[d].token);
    if (config->acquire_fd >= 0)
        close(config->acquire_fd);
    free(config->token);
    memset(config, 0, sizeof *config);
    config->acquire_fd = -1;
}

CUresult ox_config_load(struct ox_config *config, const char *call)
{
    memset(config, 0, sizeof *config);
    config->acquire_fd = -1;
    config->connect_timeout_ms = CONNECT_TIMEOUT_MS;
    CUresult status = load(config, call);
    if (status == CUDA_SUCCESS) {
        const char *token = getenv("ORIONX_TOKEN");
        config->token = strdup(config->mode == OX_MODE_DIRECT && token ? token : "");
        if (config->token == NULL)
            status = ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for the token");
    }
    if (status != CUDA_SUCCESS)
        forget(config);  /* a later cuInit tries again */
    return status;
}
