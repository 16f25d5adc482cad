/* TLS for tls:HOST:PORT endpoints, through the system's OpenSSL 3 loaded at
 * first use: no build-time dependency, and a process that never asks for
 * TLS never loads it. The few calls needed are declared here; OpenSSL's
 * ABI for them is stable across 3.x. The server's certificate is verified
 * against ORIONX_TLS_CA_FILE (else the system's CAs) and HOST (a name, or
 * an IP address matched against the certificate's IP entries). */
#include "ox_tls.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIBSSL "libssl.so.3"

/* OpenSSL's constants (ssl.h, x509_vfy.h) for the calls below. */
#define SSL_VERIFY_PEER 0x01
#define SSL_ERROR_SSL 1
#define SSL_ERROR_WANT_READ 2
#define SSL_ERROR_WANT_WRITE 3
#define SSL_ERROR_SYSCALL 5
#define SSL_ERROR_ZERO_RETURN 6
#define SSL_CTRL_SET_TLSEXT_HOSTNAME 55
#define TLSEXT_NAMETYPE_host_name 0
#define X509_V_OK 0

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct ssl_method_st SSL_METHOD;
typedef struct X509_VERIFY_PARAM_st X509_VERIFY_PARAM;

static struct {
    const SSL_METHOD *(*TLS_client_method)(void);
    SSL_CTX *(*SSL_CTX_new)(const SSL_METHOD *);
    void (*SSL_CTX_free)(SSL_CTX *);
    int (*SSL_CTX_load_verify_locations)(SSL_CTX *, const char *, const char *);
    int (*SSL_CTX_set_default_verify_paths)(SSL_CTX *);
    void (*SSL_CTX_set_verify)(SSL_CTX *, int, void *);
    SSL *(*SSL_new)(SSL_CTX *);
    void (*SSL_free)(SSL *);
    int (*SSL_set_fd)(SSL *, int);
    long (*SSL_ctrl)(SSL *, int, long, void *);
    int (*SSL_set1_host)(SSL *, const char *);
    X509_VERIFY_PARAM *(*SSL_get0_param)(SSL *);
    int (*X509_VERIFY_PARAM_set1_ip_asc)(X509_VERIFY_PARAM *, const char *);
    int (*SSL_connect)(SSL *);
    int (*SSL_read)(SSL *, void *, int);
    int (*SSL_write)(SSL *, const void *, int);
    int (*SSL_get_error)(const SSL *, int);
    long (*SSL_get_verify_result)(const SSL *);
    const char *(*X509_verify_cert_error_string)(long);
    unsigned long (*ERR_get_error)(void);
    void (*ERR_error_string_n)(unsigned long, char *, size_t);
    void (*ERR_clear_error)(void);
} ssl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[512];

static void load(void)
{
    /* LOCAL: OpenSSL's names stay out of the program's namespace. dlsym on
     * the handle also finds libcrypto's calls, which libssl brings. */
    void *handle = dlopen(LIBSSL, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        snprintf(load_error, sizeof load_error,
                 "TLS needs the system's OpenSSL 3 (%s), which cannot be loaded (%s): install "
                 "it (Debian: apt-get install libssl3) or use a tcp: endpoint", LIBSSL,
                 dlerror());
        return;
    }
    struct { void **slot; const char *name; } names[] = {
#define NAME(f) {(void **)&ssl.f, #f}
        NAME(TLS_client_method), NAME(SSL_CTX_new), NAME(SSL_CTX_free),
        NAME(SSL_CTX_load_verify_locations), NAME(SSL_CTX_set_default_verify_paths),
        NAME(SSL_CTX_set_verify), NAME(SSL_new), NAME(SSL_free), NAME(SSL_set_fd),
        NAME(SSL_ctrl), NAME(SSL_set1_host), NAME(SSL_get0_param),
        NAME(X509_VERIFY_PARAM_set1_ip_asc), NAME(SSL_connect), NAME(SSL_read),
        NAME(SSL_write), NAME(SSL_get_error), NAME(SSL_get_verify_result),
        NAME(X509_verify_cert_error_string), NAME(ERR_get_error), NAME(ERR_error_string_n),
        NAME(ERR_clear_error),
#undef NAME
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        *names[i].slot = dlsym(handle, names[i].name);
        if (*names[i].slot == NULL) {
            snprintf(load_error, sizeof load_error,
                     "the system's %s lacks %s: it is not OpenSSL 3; use a tcp: endpoint",
                     LIBSSL, names[i].name);
            return;  /* the handle stays: nothing it holds is freed midway */
        }
    }
}

struct ox_tls {
    SSL_CTX *ctx;
    SSL *ssl;
};

/* OpenSSL's queued error, or FALLBACK. */
static void describe(char *why, size_t why_bytes, const char *what, const char *fallback)
{
    unsigned long code = ssl.ERR_get_error();
    char text[256];
    if (code)
        ssl.ERR_error_string_n(code, text, sizeof text);
    snprintf(why, why_bytes, "%s: %s", what, code ? text : fallback);
    ssl.ERR_clear_error();
}

static int is_ip_address(const char *host)
{
    unsigned char bytes[16];
    return inet_pton(AF_INET, host, bytes) == 1 || inet_pton(AF_INET6, host, bytes) == 1;
}

/* OpenSSL writes to the socket with write(): a peer that went would raise
 * SIGPIPE in the program. Block it on this thread meanwhile and drop one
 * that the write raised. */
static int write_without_sigpipe(struct ox_tls *t, const void *data, int nbytes)
{
    sigset_t pipe_only, old, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    int n = ssl.SSL_write(t->ssl, data, nbytes);
    if (!was_pending) {
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE)) {
            struct timespec now = {0, 0};
            sigtimedwait(&pipe_only, NULL, &now);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return n;
}

struct ox_tls *ox_tls_connect(int sock, const char *host, const char *ca_file, char *why,
                              size_t why_bytes)
{
    pthread_once(&load_once, load);
    if (load_error[0]) {
        snprintf(why, why_bytes, "%s", load_error);
        return NULL;
    }
    struct ox_tls *t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(why, why_bytes, "out of host memory");
        return NULL;
    }
    ssl.ERR_clear_error();
    t->ctx = ssl.SSL_CTX_new(ssl.TLS_client_method());
    if (t->ctx == NULL) {
        describe(why, why_bytes, "TLS set-up failed", "no context");
        free(t);
        return NULL;
    }
    ssl.SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    int loaded = ca_file && *ca_file ? ssl.SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL)
                                     : ssl.SSL_CTX_set_default_verify_paths(t->ctx);
    if (loaded != 1) {
        char what[700];
        snprintf(what, sizeof what, "cannot read the CA certificates %s%s",
                 ca_file && *ca_file ? "of ORIONX_TLS_CA_FILE=" : "of the system",
                 ca_file && *ca_file ? ca_file : "");
        describe(why, why_bytes, what, "no certificate in it");
        ox_tls_close(t);
        return NULL;
    }
    t->ssl = ssl.SSL_new(t->ctx);
    int named = t->ssl != NULL && ssl.SSL_set_fd(t->ssl, sock) == 1;
    if (named && is_ip_address(host))
        named = ssl.X509_VERIFY_PARAM_set1_ip_asc(ssl.SSL_get0_param(t->ssl), host) == 1;
    else if (named)
        named = ssl.SSL_set1_host(t->ssl, host) == 1
                && ssl.SSL_ctrl(t->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                                (void *)host) == 1;
    if (!named) {
        describe(why, why_bytes, "TLS set-up failed", "cannot set the host name");
        ox_tls_close(t);
        return NULL;
    }
    int rc = ssl.SSL_connect(t->ssl);
    if (rc != 1) {
        long verify = ssl.SSL_get_verify_result(t->ssl);
        if (verify != X509_V_OK) {
            ssl.ERR_clear_error();
            snprintf(why, why_bytes, "the GPU server's certificate is not trusted for %s: %s "
                     "(check ORIONX_TLS_CA_FILE and the host name)", host,
                     ssl.X509_verify_cert_error_string(verify));
        } else {
            describe(why, why_bytes, "TLS handshake failed",
                     ssl.SSL_get_error(t->ssl, rc) == SSL_ERROR_SYSCALL ? strerror(errno)
                                                                      : "the server refused");
        }
        ox_tls_close(t);
        return NULL;
    }
    return t;
}

ssize_t ox_tls_read(struct ox_tls *t, void *dst, size_t nbytes, char *why, size_t why_bytes)
{
    int want = nbytes > (1u << 30) ? 1 << 30 : (int)nbytes;
    for (;;) {
        int n = ssl.SSL_read(t->ssl, dst, want);
        if (n > 0)
            return n;
        int error = ssl.SSL_get_error(t->ssl, n);
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE
            || (error == SSL_ERROR_SYSCALL && errno == EINTR))
            continue;
        if (error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && errno == 0)) {
            ssl.ERR_clear_error();
            return 0;
        }
        describe(why, why_bytes, "TLS receive failed",
                 error == SSL_ERROR_SYSCALL ? strerror(errno) : "protocol error");
        return -1;
    }
}

int ox_tls_write(struct ox_tls *t, const void *data, size_t nbytes, char *why, size_t why_bytes)
{
    const char *p = data;
    while (nbytes) {
        int chunk = nbytes > (1u << 30) ? 1 << 30 : (int)nbytes;
        int n = write_without_sigpipe(t, p, chunk);
        if (n <= 0) {
            int error = ssl.SSL_get_error(t->ssl, n);
            if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE
                || (error == SSL_ERROR_SYSCALL && errno == EINTR))
                continue;
            describe(why, why_bytes, "TLS send failed",
                     error == SSL_ERROR_SYSCALL ? strerror(errno) : "protocol error");
            return -1;
        }
        p += n;
        nbytes -= (size_t)n;
    }
    return 0;
}

void ox_tls_close(struct ox_tls *t)
{
    if (t == NULL)
        return;
    if (t->ssl != NULL)
        ssl.SSL_free(t->ssl);
    if (t->ctx != NULL)
        ssl.SSL_CTX_free(t->ctx);
    ssl.ERR_clear_error();
    free(t);
}
