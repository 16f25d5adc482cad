/* TLS over a connected socket, with the system's OpenSSL 3 loaded at first
 * use (ox_tls.c). One thread at a time per connection. */
#ifndef OX_TLS_H
#define OX_TLS_H

#include <stddef.h>
#include <sys/types.h>

struct ox_tls;

/* The handshake on SOCK, verifying the server's certificate against
 * CA_FILE ("" or NULL: the system's CAs) and HOST; NULL with WHY. */
struct ox_tls *ox_tls_connect(int sock, const char *host, const char *ca_file, char *why,
                              size_t why_bytes);
/* Up to NBYTES; 0 when the server closed, -1 with WHY. */
ssize_t ox_tls_read(struct ox_tls *tls, void *dst, size_t nbytes, char *why, size_t why_bytes);
/* All NBYTES, or -1 with WHY. */
int ox_tls_write(struct ox_tls *tls, const void *data, size_t nbytes, char *why,
                 size_t why_bytes);
/* Free the connection's TLS state (the socket is the caller's). */
void ox_tls_close(struct ox_tls *tls);

#endif
