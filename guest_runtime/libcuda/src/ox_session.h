/* A session with a GPU server: one per device (vGPU) of the process.
 *
 * Concurrency: a session's wire answers in request order, so one thread at
 * a time holds its I/O lock for one exchange (send, then read the reply);
 * the process's state lock is never held meanwhile. Asynchronous ops are
 * not answered: they are gathered here and sent with the next synchronous
 * op, or once OX_PENDING_FLUSH_BYTES wait (docs/protocol.md, "Asynchronous
 * ops and sticky errors"). Answers of cacheable ops are kept per session.
 */
#ifndef OX_SESSION_H
#define OX_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "orionx/cuda.h"
#include "ox_protocol.h"

#define OX_PENDING_FLUSH_BYTES (64u << 10)

struct ox_session;
struct ox_config;

/* Connect to the first reachable endpoint of device DEVICE's route in
 * CONFIG, say HELLO with its token and vGPU index and, on a unix socket
 * whose server offers it, move to shared memory. CALL names the driver
 * call for errors. */
CUresult ox_session_open(const struct ox_config *config, int device, const char *call,
                         struct ox_session **out);
/* Run one op: REQUEST is its encoded fixed struct, SEND_BUFFER its trailing
 * request buffer. For synchronous ops wait for the reply: its fixed struct
 * into REPLY, a reply buffer into RECV_BUFFER (up to RECV_CAPACITY bytes,
 * the rest dropped; *RECV_BYTES says how many came). A failed reply's code
 * is returned and its message reported once. A lost connection or a
 * SESSION_ENDED frame ends the session: that call and every later one
 * return its code. */
CUresult ox_session_exchange(struct ox_session *session, const char *call,
                             const struct ox_op_info *op, const uint8_t *request,
                             const void *send_buffer, size_t send_bytes, uint8_t *reply,
                             void *recv_buffer, size_t recv_capacity, size_t *recv_bytes);
/* Send the asynchronous ops still gathered. */
CUresult ox_session_flush(struct ox_session *session, const char *call);
/* The process is ending: send what is gathered and, on a VM's link, the
 * end of the session (its port outlives the process). Leaves the session
 * locked and allocated: another thread may still be in it. */
void ox_session_finish(struct ox_session *session);
/* Send what is gathered and close (the program's last launches still run). */
void ox_session_close(struct ox_session *session);

#endif
