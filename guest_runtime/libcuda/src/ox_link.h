/* A KVM guest's link to its host's agent (the format is guest_runtime/
 * vm_link.py's): a byte stream over vsock or a virtio-serial port, with
 * bulk data through an ivshmem region when the VM has a free one. The link
 * carries the wire protocol unchanged, in records; the agent swaps in the
 * VM's session token, so the guest's HELLO carries none.
 *
 * Used by one thread at a time (its stream's). Calls return 0, or -1 with
 * the reason in ox_link_error(). */
#ifndef OX_LINK_H
#define OX_LINK_H

#include <stddef.h>
#include <sys/uio.h>

struct ox_link;

/* Connect over vsock CID:PORT (VSOCK) or the serial port PATH (a unix
 * socket there stands in for the port, as QEMU's host side of one is),
 * claim a free ivshmem region under PCI_SYSFS_ROOT (NULL: none) and do the
 * handshake. Returns the link and the VM's vGPU count in *VGPU_COUNT; NULL
 * with WHY, *REFUSED set when the agent answered but does not serve this VM. */
struct ox_link *ox_link_open(int vsock, const char *path, unsigned cid, unsigned port,
                             const char *pci_sysfs_root, int timeout_ms, int *vgpu_count,
                             int *refused, char *why, size_t why_bytes);
int ox_link_send(struct ox_link *link, const struct iovec *parts, int count);
int ox_link_recv(struct ox_link *link, void *dst, size_t nbytes);
const char *ox_link_error(const struct ox_link *link);
/* Whether bulk data goes through a shared region. */
int ox_link_has_region(const struct ox_link *link);
/* Tell the agent the session is over (once; ox_link_close does it too). */
void ox_link_end(struct ox_link *link);
/* Tell the agent the session is over (a serial port stays open), let go of
 * the region and the channel, free LINK. */
void ox_link_close(struct ox_link *link);

#endif
