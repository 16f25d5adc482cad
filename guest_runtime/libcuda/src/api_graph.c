/* CUDA graphs and stream capture, kept in this process.
 *
 * A graph is a list of nodes, each with the nodes it depends on: a kernel
 * (its function, shape and parameters packed when the node was made, as
 * CUDA copies them), a copy (between any two of host and device memory, 1-D),
 * a memset (1-D), a host function, an event record or wait, or nothing.
 * Instantiating puts the nodes in an order that keeps every dependency
 * (Kahn's, ties in creation order); launching issues them in that order on
 * the launch stream, through the ordinary asynchronous calls, so a graph
 * runs exactly as its operations would have, one after the other.
 *
 * Capturing a stream makes its asynchronous calls (copies, memsets,
 * launches, host functions) nodes of the capture's graph instead of work,
 * each depending on what came before on that stream. An event recorded
 * during a capture marks the stream's place; a stream that waits for it
 * joins the capture from there (fork), and the origin waiting for an event
 * of a joined stream takes its place back (join). Ending the capture on the
 * origin stream ends it on every joined stream. */
#include <stdlib.h>
#include <string.h>

#include "ox_api.h"

#define GRAPH_MAGIC 0x4F584752u  /* "OXGR" */
#define NODE_MAGIC 0x4F58474Eu   /* "OXGN" */
#define EXEC_MAGIC 0x4F584745u   /* "OXGE" */
#define CAPTURES_MAX 64

struct node {
    uint32_t magic;
    struct graph *graph;
    size_t index;  /* in graph->nodes */
    CUgraphNodeType kind;
    struct node **deps;
    size_t dep_count;
    union {
        struct {
            CUfunction function;
            unsigned grid[3], block[3], shared_mem_bytes;
            uint8_t *params;
            size_t params_bytes;
        } kernel;
        struct {
            CUdeviceptr dst, src;  /* unified addresses: device or host */
            size_t bytes;
        } copy;
        struct {
            CUdeviceptr dst;
            unsigned value, element_bytes;
            size_t count;
        } set;
        struct {
            CUhostFn fn;
            void *data;
        } host;
        CUevent event;
    } op;
};

struct graph {
    uint32_t magic;
    struct node **nodes;
    size_t count, capacity;
};

struct exec {
    uint32_t magic;
    struct graph *graph;  /* a copy, in launch order */
};

/* A stream being captured: into which graph, and what its next node
 * depends on. An event recorded during a capture keeps the same. */
struct capture {
    int in_use;
    CUstream stream;   /* or, for a marked event: NULL */
    CUevent event;
    struct graph *graph;
    CUstream origin;
    struct node **tails;
    size_t tail_count;
    uint64_t id;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct capture captures[CAPTURES_MAX];
static int captures_active;  /* read without the lock: the fast path's test */
static uint64_t capture_ids;

/* -- graphs and nodes ---------------------------------------------------------------- */

static struct graph *graph_of(CUgraph handle)
{
    struct graph *g = (struct graph *)handle;
    return g != NULL && g->magic == GRAPH_MAGIC ? g : NULL;
}

static struct node *node_of(CUgraphNode handle)
{
    struct node *n = (struct node *)handle;
    return n != NULL && n->magic == NODE_MAGIC ? n : NULL;
}

static CUresult bad_graph(const char *call)
{
    return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "the graph is not a live graph of this "
                   "process");
}

static void free_node(struct node *n)
{
    if (n->kind == CU_GRAPH_NODE_TYPE_KERNEL)
        free(n->op.kernel.params);
    free(n->deps);
    n->magic = 0;
    free(n);
}

static void free_graph(struct graph *g)
{
    for (size_t i = 0; i < g->count; i++)
        free_node(g->nodes[i]);
    free(g->nodes);
    g->magic = 0;
    free(g);
}

static struct graph *new_graph(void)
{
    struct graph *g = calloc(1, sizeof *g);
    if (g != NULL)
        g->magic = GRAPH_MAGIC;
    return g;
}

/* A node of KIND in G after DEPS (each a node of G); NULL without memory. */
static struct node *add_node(struct graph *g, CUgraphNodeType kind, struct node *const *deps,
                             size_t dep_count)
{
    if (ox_grow((void **)&g->nodes, &g->capacity, g->count, sizeof *g->nodes) < 0)
        return NULL;
    struct node *n = calloc(1, sizeof *n);
    if (n == NULL || (dep_count && (n->deps = malloc(dep_count * sizeof *n->deps)) == NULL)) {
        free(n);
        return NULL;
    }
    n->magic = NODE_MAGIC;
    n->graph = g;
    n->index = g->count;
    n->kind = kind;
    if (dep_count)
        memcpy(n->deps, deps, dep_count * sizeof *deps);
    n->dep_count = dep_count;
    g->nodes[g->count++] = n;
    return n;
}

static CUresult no_memory(const char *call)
{
    return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for the graph");
}

/* The checked dependency list of a cuGraphAdd*Node call. */
static CUresult dependencies(struct graph *g, const CUgraphNode *handles, size_t count,
                             const char *call)
{
    if (count && handles == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "dependencies is NULL");
    for (size_t i = 0; i < count; i++) {
        struct node *d = node_of(handles[i]);
        if (d == NULL || d->graph != g)
            return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                           "dependency %zu is not a node of this graph", i);
    }
    return CUDA_SUCCESS;
}

/* Pack a kernel's parameters into node N (CUDA copies them at this point). */
static CUresult set_kernel(struct node *n, CUfunction function, const unsigned grid[3],
                           const unsigned block[3], unsigned shared_mem_bytes,
                           void **kernel_params, void **extra, const char *call)
{
    uint8_t packed[OX_KERNEL_PARAMS_MAX_BYTES];
    const void *params;
    size_t bytes;
    CUresult status = ox_pack_kernel_params(function, kernel_params, extra, packed, &params,
                                            &bytes, call);
    if (status != CUDA_SUCCESS)
        return status;
    n->op.kernel.params = malloc(bytes ? bytes : 1);
    if (n->op.kernel.params == NULL)
        return no_memory(call);
    memcpy(n->op.kernel.params, params, bytes);
    n->op.kernel.params_bytes = bytes;
    n->op.kernel.function = function;
    memcpy(n->op.kernel.grid, grid, sizeof n->op.kernel.grid);
    memcpy(n->op.kernel.block, block, sizeof n->op.kernel.block);
    n->op.kernel.shared_mem_bytes = shared_mem_bytes;
    return CUDA_SUCCESS;
}

/* Add a node to graph handle GRAPH after DEPS, filled by FILL (NULL: none). */
typedef CUresult (*fill_fn)(struct node *n, const void *params, const char *call);

static CUresult add(CUgraphNode *out, CUgraph graph, const CUgraphNode *deps, size_t dep_count,
                    CUgraphNodeType kind, fill_fn fill, const void *params, const char *call)
{
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (out == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "phGraphNode is NULL");
    pthread_mutex_lock(&lock);
    struct graph *g = graph_of(graph);
    if (g == NULL) {
        pthread_mutex_unlock(&lock);
        return bad_graph(call);
    }
    if ((status = dependencies(g, deps, dep_count, call)) != CUDA_SUCCESS) {
        pthread_mutex_unlock(&lock);
        return status;
    }
    struct node *n = add_node(g, kind, (struct node *const *)deps, dep_count);
    if (n == NULL)
        status = no_memory(call);
    else if (fill != NULL && (status = fill(n, params, call)) != CUDA_SUCCESS)
        free_node(g->nodes[--g->count]);
    if (status == CUDA_SUCCESS)
        *out = (CUgraphNode)n;
    pthread_mutex_unlock(&lock);
    return status;
}

static CUresult fill_kernel_v2(struct node *n, const void *params, const char *call)
{
    const CUDA_KERNEL_NODE_PARAMS_v2 *p = params;
    if (p == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "nodeParams is NULL");
    unsigned grid[3] = {p->gridDimX, p->gridDimY, p->gridDimZ};
    unsigned block[3] = {p->blockDimX, p->blockDimY, p->blockDimZ};
    CUfunction function = p->func != NULL ? p->func : (CUfunction)p->kern;
    return set_kernel(n, function, grid, block, p->sharedMemBytes, p->kernelParams, p->extra,
                      call);
}

/* CUDA 10's form: the same without the kernel and context. */
static CUresult fill_kernel_v1(struct node *n, const void *params, const char *call)
{
    const CUDA_KERNEL_NODE_PARAMS_v1 *p = params;
    if (p == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "nodeParams is NULL");
    CUDA_KERNEL_NODE_PARAMS_v2 v2 = {p->func,      p->gridDimX,  p->gridDimY,
                                     p->gridDimZ,  p->blockDimX, p->blockDimY,
                                     p->blockDimZ, p->sharedMemBytes, p->kernelParams,
                                     p->extra,     NULL,         NULL};
    return fill_kernel_v2(n, &v2, call);
}

/* The address a CUDA_MEMCPY3D side names: host, device or unified. */
static CUresult copy_side(int memory_type, const void *host, CUdeviceptr device, CUarray array,
                          size_t x_bytes, CUdeviceptr *out, const char *side, const char *call)
{
    if (array != NULL || memory_type == CU_MEMORYTYPE_ARRAY)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call, "the %s is a CUDA array: arrays are "
                       "not served (docs/runtime-api.md)", side);
    *out = (memory_type == CU_MEMORYTYPE_HOST ? (CUdeviceptr)(uintptr_t)host : device) + x_bytes;
    return CUDA_SUCCESS;
}

static CUresult fill_copy(struct node *n, const void *params, const char *call)
{
    const CUDA_MEMCPY3D *p = params;
    if (p == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "copyParams is NULL");
    if (p->Height > 1 || p->Depth > 1 || p->srcY || p->srcZ || p->dstY || p->dstZ)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                       "a %zu x %zu x %zu copy: only 1-D copies (Height and Depth 1) are served "
                       "in graphs", p->WidthInBytes, p->Height, p->Depth);
    CUresult status = copy_side(p->srcMemoryType, p->srcHost, p->srcDevice, p->srcArray,
                                p->srcXInBytes, &n->op.copy.src, "source", call);
    if (status == CUDA_SUCCESS)
        status = copy_side(p->dstMemoryType, p->dstHost, p->dstDevice, p->dstArray,
                           p->dstXInBytes, &n->op.copy.dst, "destination", call);
    n->op.copy.bytes = p->WidthInBytes;
    return status;
}

static CUresult fill_set(struct node *n, const void *params, const char *call)
{
    const CUDA_MEMSET_NODE_PARAMS *p = params;
    if (p == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "memsetParams is NULL");
    if (p->elementSize != 1 && p->elementSize != 2 && p->elementSize != 4)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "elementSize %u is not 1, 2 or 4",
                       p->elementSize);
    if (p->height > 1)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call, "a %zu-row memset: only 1-D memsets "
                       "are served in graphs", p->height);
    n->op.set.dst = p->dst;
    n->op.set.value = p->value;
    n->op.set.element_bytes = p->elementSize;
    n->op.set.count = p->width;
    return CUDA_SUCCESS;
}

static CUresult fill_host(struct node *n, const void *params, const char *call)
{
    const CUDA_HOST_NODE_PARAMS *p = params;
    if (p == NULL || p->fn == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "nodeParams or its fn is NULL");
    n->op.host.fn = p->fn;
    n->op.host.data = p->userData;
    return CUDA_SUCCESS;
}

CUresult cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
    static const char call[] = "cuGraphCreate";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (phGraph == NULL || flags != 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "phGraph is NULL or flags are not 0");
    struct graph *g = new_graph();
    if (g == NULL)
        return no_memory(call);
    *phGraph = (CUgraph)g;
    return CUDA_SUCCESS;
}

CUresult cuGraphDestroy(CUgraph hGraph)
{
    pthread_mutex_lock(&lock);
    struct graph *g = graph_of(hGraph);
    if (g != NULL)
        free_graph(g);
    pthread_mutex_unlock(&lock);
    return g != NULL ? CUDA_SUCCESS : bad_graph("cuGraphDestroy");
}

CUresult cuGraphAddKernelNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                              const CUgraphNode *dependencies, size_t numDependencies,
                              const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
{
    return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_KERNEL,
               fill_kernel_v1, nodeParams, "cuGraphAddKernelNode");
}

CUresult cuGraphAddKernelNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph,
                                 const CUgraphNode *dependencies, size_t numDependencies,
                                 const CUDA_KERNEL_NODE_PARAMS_v2 *nodeParams)
{
    return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_KERNEL,
               fill_kernel_v2, nodeParams, "cuGraphAddKernelNode");
}

CUresult cuGraphAddMemcpyNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                              const CUgraphNode *dependencies, size_t numDependencies,
                              const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    (void)ctx;  /* copies run on the launch stream's device, by their addresses */
    return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_MEMCPY,
               fill_copy, copyParams, "cuGraphAddMemcpyNode");
}

CUresult cuGraphAddMemsetNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                              const CUgraphNode *dependencies, size_t numDependencies,
                              const CUDA_MEMSET_NODE_PARAMS *memsetParams, CUcontext ctx)
{
    (void)ctx;
    return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_MEMSET,
               fill_set, memsetParams, "cuGraphAddMemsetNode");
}

CUresult cuGraphAddHostNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                            const CUgraphNode *dependencies, size_t numDependencies,
                            const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_HOST,
               fill_host, nodeParams, "cuGraphAddHostNode");
}

CUresult cuGraphAddEmptyNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                             const CUgraphNode *dependencies, size_t numDependencies)
{
    return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_EMPTY,
               NULL, NULL, "cuGraphAddEmptyNode");
}

static CUresult fill_event(struct node *n, const void *params, const char *call)
{
    CUevent event = (CUevent)params;
    if (event == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "event is NULL");
    n->op.event = event;
    return CUDA_SUCCESS;
}

CUresult cuGraphAddEventRecordNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                   const CUgraphNode *dependencies, size_t numDependencies,
                                   CUevent event)
{
    return add(phGraphNode, hGraph, dependencies, numDependencies,
               CU_GRAPH_NODE_TYPE_EVENT_RECORD, fill_event, event, "cuGraphAddEventRecordNode");
}

CUresult cuGraphAddEventWaitNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                 const CUgraphNode *dependencies, size_t numDependencies,
                                 CUevent event)
{
    return add(phGraphNode, hGraph, dependencies, numDependencies,
               CU_GRAPH_NODE_TYPE_WAIT_EVENT, fill_event, event, "cuGraphAddEventWaitNode");
}

/* Edges FROM[i] -> TO[i]: TO[i] runs after FROM[i]. */
CUresult cuGraphAddDependencies(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
                                size_t numDependencies)
{
    static const char call[] = "cuGraphAddDependencies";
    if (numDependencies && (from == NULL || to == NULL))
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "from or to is NULL");
    pthread_mutex_lock(&lock);
    struct graph *g = graph_of(hGraph);
    CUresult status = g == NULL ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
    if (status == CUDA_SUCCESS)
        status = dependencies(g, from, numDependencies, call);
    if (status == CUDA_SUCCESS)
        status = dependencies(g, to, numDependencies, call);
    for (size_t i = 0; i < numDependencies && status == CUDA_SUCCESS; i++) {
        struct node *n = node_of(to[i]);
        struct node **grown = realloc(n->deps, (n->dep_count + 1) * sizeof *grown);
        if (grown == NULL) {
            status = no_memory(call);
            break;
        }
        n->deps = grown;
        n->deps[n->dep_count++] = node_of(from[i]);
    }
    pthread_mutex_unlock(&lock);
    return g == NULL ? bad_graph(call) : status;
}

/* CUDA 12.3's form, with data on each edge: only default edges. */
CUresult cuGraphAddDependencies_v2(CUgraph hGraph, const CUgraphNode *from,
                                   const CUgraphNode *to, const CUgraphEdgeData *edgeData,
                                   size_t numDependencies)
{
    static const uint8_t plain_edge[8];  /* CUgraphEdgeData: 8 bytes, all 0 by default */
    for (size_t i = 0; edgeData != NULL && i < numDependencies; i++)
        if (memcmp((const uint8_t *)edgeData + 8 * i, plain_edge, 8) != 0)
            return ox_fail(CUDA_ERROR_NOT_SUPPORTED, "cuGraphAddDependencies",
                           "edge %zu carries data (ports, programmatic launch): only plain "
                           "edges are served", i);
    return cuGraphAddDependencies(hGraph, from, to, numDependencies);
}

CUresult cuGraphNodeGetType(CUgraphNode hNode, CUgraphNodeType *type)
{
    static const char call[] = "cuGraphNodeGetType";
    pthread_mutex_lock(&lock);
    struct node *n = node_of(hNode);
    if (n != NULL && type != NULL)
        *type = n->kind;
    pthread_mutex_unlock(&lock);
    return n != NULL && type != NULL ? CUDA_SUCCESS
                                     : ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                                               "the node is not a live graph node, or type "
                                               "is NULL");
}

/* NODES (may be NULL) gets up to *COUNT of G's nodes that pass KEEP;
 * *COUNT becomes how many there are (CUDA's two-call convention). */
static CUresult list_nodes(CUgraph graph, CUgraphNode *nodes, size_t *count, int roots_only,
                           const char *call)
{
    if (count == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "numNodes is NULL");
    pthread_mutex_lock(&lock);
    struct graph *g = graph_of(graph);
    if (g == NULL) {
        pthread_mutex_unlock(&lock);
        return bad_graph(call);
    }
    size_t found = 0;
    for (size_t i = 0; i < g->count; i++) {
        if (roots_only && g->nodes[i]->dep_count)
            continue;
        if (nodes != NULL && found < *count)
            nodes[found] = (CUgraphNode)g->nodes[i];
        found++;
    }
    if (nodes != NULL && found > *count)
        found = *count;
    *count = found;
    pthread_mutex_unlock(&lock);
    return CUDA_SUCCESS;
}

CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes)
{
    return list_nodes(hGraph, nodes, numNodes, 0, "cuGraphGetNodes");
}

CUresult cuGraphGetRootNodes(CUgraph hGraph, CUgraphNode *rootNodes, size_t *numRootNodes)
{
    return list_nodes(hGraph, rootNodes, numRootNodes, 1, "cuGraphGetRootNodes");
}

/* A copy of G, its nodes in an order that keeps every dependency; NULL
 * without memory or for a cycle. Lock held. */
static struct graph *copy_graph(const struct graph *g)
{
    struct graph *c = new_graph();
    /* Where each of G's nodes lands in C (SIZE_MAX: not yet). */
    size_t *position = malloc((g->count ? g->count : 1) * sizeof *position);
    if (c == NULL || position == NULL)
        goto fail;
    for (size_t i = 0; i < g->count; i++)
        position[i] = SIZE_MAX;
    /* Nodes are made after their dependencies, but cuGraphAddDependencies
     * can add any edge: Kahn's order, ties in creation order. */
    while (c->count < g->count) {
        size_t before = c->count;
        for (size_t i = 0; i < g->count; i++) {
            const struct node *from = g->nodes[i];
            int ready = position[i] == SIZE_MAX;
            for (size_t d = 0; d < from->dep_count && ready; d++)
                ready = position[from->deps[d]->index] != SIZE_MAX;
            if (!ready)
                continue;
            struct node *to = add_node(c, from->kind, from->deps, from->dep_count);
            if (to == NULL)
                goto fail;
            position[i] = to->index;
            to->op = from->op;
            for (size_t d = 0; d < from->dep_count; d++)  /* copied already: placed before */
                to->deps[d] = c->nodes[position[from->deps[d]->index]];
            if (from->kind == CU_GRAPH_NODE_TYPE_KERNEL) {
                to->op.kernel.params = malloc(from->op.kernel.params_bytes + 1);
                if (to->op.kernel.params == NULL) {
                    to->kind = CU_GRAPH_NODE_TYPE_EMPTY;  /* nothing of its own to free */
                    goto fail;
                }
                memcpy(to->op.kernel.params, from->op.kernel.params,
                       from->op.kernel.params_bytes);
            }
        }
        if (c->count == before)
            goto fail;  /* a cycle */
    }
    free(position);
    return c;
fail:
    if (c != NULL)
        free_graph(c);
    free(position);
    return NULL;
}

CUresult cuGraphClone(CUgraph *phGraphClone, CUgraph originalGraph)
{
    static const char call[] = "cuGraphClone";
    if (phGraphClone == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "phGraphClone is NULL");
    pthread_mutex_lock(&lock);
    struct graph *g = graph_of(originalGraph);
    struct graph *c = g != NULL ? copy_graph(g) : NULL;
    pthread_mutex_unlock(&lock);
    if (g == NULL)
        return bad_graph(call);
    if (c == NULL)
        return no_memory(call);
    *phGraphClone = (CUgraph)c;
    return CUDA_SUCCESS;
}

/* -- executable graphs ---------------------------------------------------------------- */

static CUresult instantiate(CUgraphExec *out, CUgraph graph, const char *call)
{
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (out == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "phGraphExec is NULL");
    struct exec *e = calloc(1, sizeof *e);
    pthread_mutex_lock(&lock);
    struct graph *g = graph_of(graph);
    struct graph *ordered = g != NULL && e != NULL ? copy_graph(g) : NULL;
    pthread_mutex_unlock(&lock);
    if (ordered == NULL) {
        free(e);
        return g == NULL ? bad_graph(call)
                         : ox_fail(e == NULL ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_INVALID_VALUE,
                                   call, "the graph has a cycle, or no host memory is left");
    }
    e->magic = EXEC_MAGIC;
    e->graph = ordered;
    *out = (CUgraphExec)e;
    return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
                                     unsigned long long flags)
{
    (void)flags;  /* auto-free, upload, device launch and priority change nothing here */
    return instantiate(phGraphExec, hGraph, "cuGraphInstantiateWithFlags");
}

CUresult cuGraphInstantiate(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode,
                            char *logBuffer, size_t bufferSize)
{
    if (phErrorNode != NULL)
        *phErrorNode = NULL;
    if (logBuffer != NULL && bufferSize > 0)
        logBuffer[0] = '\0';
    return instantiate(phGraphExec, hGraph, "cuGraphInstantiate");
}

CUresult cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                      CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    CUresult status = instantiate(phGraphExec, hGraph, "cuGraphInstantiateWithParams");
    if (instantiateParams != NULL) {
        instantiateParams->hErrNode_out = NULL;
        instantiateParams->result_out = status == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS
                                                               : CUDA_GRAPH_INSTANTIATE_ERROR;
    }
    return status;
}

CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
{
    struct exec *e = (struct exec *)hGraphExec;
    if (e == NULL || e->magic != EXEC_MAGIC)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, "cuGraphExecDestroy",
                       "the executable graph is not a live one of this process");
    pthread_mutex_lock(&lock);
    free_graph(e->graph);
    e->magic = 0;
    pthread_mutex_unlock(&lock);
    free(e);
    return CUDA_SUCCESS;
}

/* Issue node N on STREAM as the asynchronous call it stands for. */
static CUresult issue(const struct node *n, CUstream stream)
{
    switch (n->kind) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
        size_t bytes = n->op.kernel.params_bytes;
        void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, n->op.kernel.params,
                         CU_LAUNCH_PARAM_BUFFER_SIZE, &bytes, CU_LAUNCH_PARAM_END};
        const unsigned *g = n->op.kernel.grid, *b = n->op.kernel.block;
        return cuLaunchKernel(n->op.kernel.function, g[0], g[1], g[2], b[0], b[1], b[2],
                              n->op.kernel.shared_mem_bytes, stream, NULL, extra);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        return n->op.copy.bytes ? cuMemcpyAsync(n->op.copy.dst, n->op.copy.src,
                                                n->op.copy.bytes, stream)
                                : CUDA_SUCCESS;
    case CU_GRAPH_NODE_TYPE_MEMSET:
        if (n->op.set.element_bytes == 1)
            return cuMemsetD8Async(n->op.set.dst, (unsigned char)n->op.set.value,
                                   n->op.set.count, stream);
        if (n->op.set.element_bytes == 2)
            return cuMemsetD16Async(n->op.set.dst, (unsigned short)n->op.set.value,
                                    n->op.set.count, stream);
        return cuMemsetD32Async(n->op.set.dst, n->op.set.value, n->op.set.count, stream);
    case CU_GRAPH_NODE_TYPE_HOST:
        return cuLaunchHostFunc(stream, n->op.host.fn, n->op.host.data);
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
        return cuEventRecord(n->op.event, stream);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
        return cuStreamWaitEvent(stream, n->op.event, 0);
    default:
        return CUDA_SUCCESS;  /* an empty node */
    }
}

CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
    static const char call[] = "cuGraphLaunch";
    struct exec *e = (struct exec *)hGraphExec;
    if (e == NULL || e->magic != EXEC_MAGIC)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "the executable graph is not a live one of this process");
    if (ox_capture_active(hStream))
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                       "launching a graph into a stream being captured (a child graph) is not "
                       "served");
    /* Nodes are immutable once instantiated: no lock while they run. */
    for (size_t i = 0; i < e->graph->count; i++) {
        CUresult status = issue(e->graph->nodes[i], hStream);
        if (status != CUDA_SUCCESS)
            return status;
    }
    return CUDA_SUCCESS;
}

CUresult cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream)
{
    (void)hStream;  /* nothing to place ahead: nodes are issued at launch */
    struct exec *e = (struct exec *)hGraphExec;
    return e != NULL && e->magic == EXEC_MAGIC
               ? CUDA_SUCCESS
               : ox_fail(CUDA_ERROR_INVALID_VALUE, "cuGraphUpload",
                         "the executable graph is not a live one of this process");
}

/* -- stream capture ------------------------------------------------------------------- */

/* The capture of STREAM, or of EVENT (one of them NULL). Lock held. */
static struct capture *find_capture(CUstream stream, CUevent event)
{
    for (int i = 0; i < CAPTURES_MAX; i++)
        if (captures[i].in_use && (stream ? captures[i].stream == stream
                                          : captures[i].event == event))
            return &captures[i];
    return NULL;
}

static struct capture *new_capture(void)
{
    for (int i = 0; i < CAPTURES_MAX; i++) {
        if (!captures[i].in_use) {
            captures[i] = (struct capture){.in_use = 1};
            return &captures[i];
        }
    }
    return NULL;
}

static void end_capture(struct capture *c)
{
    free(c->tails);
    *c = (struct capture){0};
}

static int set_tails(struct capture *c, struct node *const *tails, size_t count)
{
    struct node **copy = count ? malloc(count * sizeof *copy) : NULL;
    if (count && copy == NULL)
        return -1;
    if (count)
        memcpy(copy, tails, count * sizeof *copy);
    free(c->tails);
    c->tails = copy;
    c->tail_count = count;
    return 0;
}

static void count_captures(void)
{
    int active = 0;
    for (int i = 0; i < CAPTURES_MAX; i++)
        active += captures[i].in_use && captures[i].stream != NULL;
    __atomic_store_n(&captures_active, active, __ATOMIC_RELEASE);
}

static CUresult check_stream(CUstream stream, const char *call)
{
    int device;
    struct ox_session *session;
    uint64_t server_stream;
    CUresult status = ox_stream_target(stream, call, &device, &session, &server_stream);
    if (status == CUDA_SUCCESS && (stream == NULL || stream == CU_STREAM_LEGACY
                                   || stream == CU_STREAM_PER_THREAD))
        return ox_fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, call,
                       "the default stream cannot be captured: capture a stream of your own");
    return status;
}

CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
    static const char call[] = "cuStreamBeginCapture";
    (void)mode;  /* every mode: other threads' unsafe calls are not checked */
    CUresult status = check_stream(hStream, call);
    if (status != CUDA_SUCCESS)
        return status;
    pthread_mutex_lock(&lock);
    int already = find_capture(hStream, NULL) != NULL;
    struct capture *c = already ? NULL : new_capture();
    struct graph *g = c != NULL ? new_graph() : NULL;
    if (g != NULL) {
        c->stream = c->origin = hStream;
        c->graph = g;
        c->id = ++capture_ids;
        count_captures();
    } else if (c != NULL) {
        end_capture(c);
    }
    pthread_mutex_unlock(&lock);
    if (g != NULL)
        return CUDA_SUCCESS;
    if (already)
        return ox_fail(CUDA_ERROR_ILLEGAL_STATE, call, "the stream is being captured already");
    return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call,
                   "no room for another capture (at most %d streams at once)", CAPTURES_MAX);
}

CUresult cuStreamBeginCapture(CUstream hStream)
{
    return cuStreamBeginCapture_v2(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL);
}

CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
    static const char call[] = "cuStreamEndCapture";
    if (phGraph == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "phGraph is NULL");
    pthread_mutex_lock(&lock);
    struct capture *c = find_capture(hStream, NULL);
    int origin = c != NULL && c->origin == hStream;
    struct graph *g = origin ? c->graph : NULL;
    if (origin) {
        for (int i = 0; i < CAPTURES_MAX; i++)  /* joined streams and marked events too */
            if (captures[i].in_use && captures[i].graph == g)
                end_capture(&captures[i]);
        count_captures();
        *phGraph = (CUgraph)g;
    }
    pthread_mutex_unlock(&lock);
    if (c == NULL)
        return ox_fail(CUDA_ERROR_ILLEGAL_STATE, call, "the stream is not being captured");
    if (!origin)
        return ox_fail(CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, call,
                       "the capture began on another stream: end it there");
    return CUDA_SUCCESS;
}

int ox_capture_active(CUstream stream)
{
    return ox_capture_status(stream, NULL);
}

int ox_capture_status(CUstream stream, uint64_t *id)
{
    if (__atomic_load_n(&captures_active, __ATOMIC_ACQUIRE) == 0 || stream == NULL)
        return 0;
    pthread_mutex_lock(&lock);
    struct capture *c = find_capture(stream, NULL);
    if (c != NULL && id != NULL)
        *id = c->id;
    pthread_mutex_unlock(&lock);
    return c != NULL;
}

/* Append a node of KIND to STREAM's capture (lock taken here); FILL fills
 * it from PARAMS. */
static CUresult capture_node(CUstream stream, CUgraphNodeType kind, fill_fn fill,
                             const void *params, const char *call)
{
    pthread_mutex_lock(&lock);
    struct capture *c = find_capture(stream, NULL);
    CUresult status = CUDA_SUCCESS;
    struct node *n = c != NULL ? add_node(c->graph, kind, c->tails, c->tail_count) : NULL;
    if (c == NULL)
        status = ox_fail(CUDA_ERROR_ILLEGAL_STATE, call, "the stream's capture has ended");
    else if (n == NULL)
        status = no_memory(call);
    else if (fill != NULL && (status = fill(n, params, call)) != CUDA_SUCCESS)
        free_node(c->graph->nodes[--c->graph->count]);
    else if (set_tails(c, &n, 1) < 0)
        status = no_memory(call);
    pthread_mutex_unlock(&lock);
    return status;
}

struct captured_kernel {
    CUfunction function;
    const unsigned *grid, *block;
    unsigned shared_mem_bytes;
    void **kernel_params, **extra;
};

static CUresult fill_captured_kernel(struct node *n, const void *params, const char *call)
{
    const struct captured_kernel *k = params;
    return set_kernel(n, k->function, k->grid, k->block, k->shared_mem_bytes,
                      k->kernel_params, k->extra, call);
}

CUresult ox_capture_launch(CUstream stream, CUfunction function, const unsigned grid[3],
                           const unsigned block[3], unsigned shared_mem_bytes,
                           void **kernel_params, void **extra, const char *call)
{
    struct captured_kernel k = {function, grid, block, shared_mem_bytes, kernel_params, extra};
    return capture_node(stream, CU_GRAPH_NODE_TYPE_KERNEL, fill_captured_kernel, &k, call);
}

CUresult ox_capture_copy(CUstream stream, CUdeviceptr dst, CUdeviceptr src, size_t bytes,
                         const char *call)
{
    CUDA_MEMCPY3D p = {.srcMemoryType = CU_MEMORYTYPE_UNIFIED, .srcDevice = src,
                       .dstMemoryType = CU_MEMORYTYPE_UNIFIED, .dstDevice = dst,
                       .WidthInBytes = bytes, .Height = 1, .Depth = 1};
    return capture_node(stream, CU_GRAPH_NODE_TYPE_MEMCPY, fill_copy, &p, call);
}

CUresult ox_capture_memset(CUstream stream, CUdeviceptr dst, unsigned value,
                           unsigned element_bytes, size_t count, const char *call)
{
    CUDA_MEMSET_NODE_PARAMS p = {.dst = dst, .value = value, .elementSize = element_bytes,
                                 .width = count, .height = 1};
    return capture_node(stream, CU_GRAPH_NODE_TYPE_MEMSET, fill_set, &p, call);
}

CUresult ox_capture_host(CUstream stream, CUhostFn fn, void *data, const char *call)
{
    CUDA_HOST_NODE_PARAMS p = {fn, data};
    return capture_node(stream, CU_GRAPH_NODE_TYPE_HOST, fill_host, &p, call);
}

CUresult ox_capture_event_record(CUevent event, CUstream stream, const char *call)
{
    pthread_mutex_lock(&lock);
    struct capture *c = find_capture(stream, NULL);
    struct capture *mark = c != NULL ? find_capture(NULL, event) : NULL;
    if (c != NULL && mark == NULL)
        mark = new_capture();
    CUresult status = CUDA_SUCCESS;
    if (c == NULL)
        status = ox_fail(CUDA_ERROR_ILLEGAL_STATE, call, "the stream's capture has ended");
    else if (mark == NULL)
        status = ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no room to mark the event");
    else if (set_tails(mark, c->tails, c->tail_count) < 0)
        status = no_memory(call);
    if (status == CUDA_SUCCESS) {
        mark->in_use = 1;
        mark->stream = NULL;
        mark->event = event;
        mark->graph = c->graph;
        mark->origin = c->origin;
        mark->id = c->id;
    }
    pthread_mutex_unlock(&lock);
    return status;
}

int ox_capture_wait_event(CUstream stream, CUevent event, CUresult *result, const char *call)
{
    if (__atomic_load_n(&captures_active, __ATOMIC_ACQUIRE) == 0)
        return 0;
    pthread_mutex_lock(&lock);
    struct capture *mark = find_capture(NULL, event);
    struct capture *c = stream != NULL ? find_capture(stream, NULL) : NULL;
    if (mark == NULL) {
        pthread_mutex_unlock(&lock);
        if (c == NULL)
            return 0;  /* no capture involved: an ordinary wait */
        *result = ox_fail(CUDA_ERROR_STREAM_CAPTURE_ISOLATION, call,
                          "a captured stream waits for an event recorded outside the capture");
        return 1;
    }
    *result = CUDA_SUCCESS;
    if (c == NULL) {
        /* Fork: the stream joins the capture where the event was recorded. */
        c = new_capture();
        if (c == NULL || set_tails(c, mark->tails, mark->tail_count) < 0) {
            if (c != NULL)
                end_capture(c);
            *result = ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no room for the joined stream");
        } else {
            c->stream = stream;
            c->graph = mark->graph;
            c->origin = mark->origin;
            c->id = mark->id;
            count_captures();
        }
    } else if (c->graph == mark->graph) {
        /* Join: the stream's next node waits for both places. */
        size_t count = c->tail_count + mark->tail_count;
        struct node **both = realloc(c->tails, (count ? count : 1) * sizeof *both);
        if (both == NULL) {
            *result = no_memory(call);
        } else {
            memcpy(both + c->tail_count, mark->tails, mark->tail_count * sizeof *both);
            c->tails = both;
            c->tail_count = count;
        }
    } else {
        *result = ox_fail(CUDA_ERROR_STREAM_CAPTURE_ISOLATION, call,
                          "the event was recorded in another capture");
    }
    pthread_mutex_unlock(&lock);
    return 1;
}
