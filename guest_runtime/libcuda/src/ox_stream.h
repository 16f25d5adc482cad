/* Byte streams that carry protocol frames: a connected socket (unix, TCP,
 * TLS), a KVM guest's link to its host's agent (vsock or virtio-serial,
 * with ivshmem for bulk data; ox_link.h) or, after SHM_ATTACH, the
 * shared-memory rings of docs/protocol.md.
 *
 * A stream is used by one thread at a time (its session's I/O lock). Every
 * call returns 0, or -1 with the reason in ox_stream_error(); after -1 the
 * stream is dead and only ox_stream_close() is left to call.
 */
#ifndef OX_STREAM_H
#define OX_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct ox_stream;

/* Descriptors SHM_ATTACH's reply carries: the memfd, then the eventfds
 * client->server data, client->server space, server->client data,
 * server->client space. */
#define OX_SHM_FDS 5

/* A stream on the unix socket PATH, or NULL with the reason in WHY. */
struct ox_stream *ox_stream_connect_unix(const char *path, char *why, size_t why_bytes);
/* A stream on TCP HOST:PORT (TCP_NODELAY), giving up after TIMEOUT_MS. */
struct ox_stream *ox_stream_connect_tcp(const char *host, const char *port, int timeout_ms,
                                        char *why, size_t why_bytes);
/* TLS on TCP HOST:PORT, the server's certificate verified against CA_FILE
 * ("": the system's CAs) and HOST. */
struct ox_stream *ox_stream_connect_tls(const char *host, const char *port, int timeout_ms,
                                        const char *ca_file, char *why, size_t why_bytes);

/* Where a KVM guest finds its host's agent (guest_runtime/vm_devices.py). */
#define OX_VSOCK_DEVICE "/dev/vsock"
#define OX_VSOCK_HOST_CID 2u
#define OX_VSOCK_DEFAULT_PORT 8702ul
#define OX_SERIAL_PORT_PATH "/dev/virtio-ports/org.orionx.agent.0"
#define OX_PCI_SYSFS_ROOT "/sys/bus/pci/devices"

/* A session over a VM's link to its agent: vsock CID:PORT when VSOCK, else
 * the serial port PATH; bulk data through a free ivshmem region listed
 * under PCI_SYSFS_ROOT. The link's handshake is done. */
struct ox_stream *ox_stream_connect_link(int vsock, const char *path, unsigned cid,
                                         unsigned port, const char *pci_sysfs_root,
                                         int timeout_ms, char *why, size_t why_bytes);
/* How many vGPUs the agent serves this VM over that link (no session, no
 * region); 0 with WHY, and *REFUSED set when the agent answered no. */
int ox_stream_link_count(int vsock, const char *path, unsigned cid, unsigned port,
                         int timeout_ms, char *why, size_t why_bytes, int *refused);
/* "unix", "tcp", "tls", "vsock", "serial" or "shm". */
const char *ox_stream_kind(const struct ox_stream *stream);
/* Why the last call failed. */
const char *ox_stream_error(const struct ox_stream *stream);
/* Write COUNT buffers, in order, completely. */
int ox_stream_send(struct ox_stream *stream, const struct iovec *parts, int count);
/* Read exactly NBYTES into DST. */
int ox_stream_recv(struct ox_stream *stream, void *dst, size_t nbytes);
/* After a failed send: read exactly NBYTES that the server sent before it
 * went and that wait here already (its SESSION_ENDED saying why), never
 * waiting for more; -1 when they are not all there. Sockets and shared
 * memory only; TLS and VM links answer -1. */
int ox_stream_recv_left(struct ox_stream *stream, void *dst, size_t nbytes);
/* While ON, reads of a unix stream also collect SCM_RIGHTS descriptors. */
void ox_stream_expect_fds(struct ox_stream *stream, int on);
/* Move up to MAX collected descriptors into FDS; returns how many. */
int ox_stream_take_fds(struct ox_stream *stream, int *fds, int max);
/* From now on, carry frames through the rings of the memfd FDS[0] (whose
 * size is 4096 + 2 * RING_BYTES); the socket stays open to notice when the
 * server goes. Takes the descriptors (closes them on failure too). */
int ox_stream_upgrade_shm(struct ox_stream *stream, const int fds[OX_SHM_FDS],
                          uint64_t ring_bytes);
/* The process is ending: a VM's link tells the agent its session is over;
 * other streams need nothing (their socket closes with the process). */
void ox_stream_finish(struct ox_stream *stream);
/* Close everything the stream holds and free it. */
void ox_stream_close(struct ox_stream *stream);

#endif
