/*
 * Small helpers shared by the C test programs (tests/c/) and the core benchmark (bench/core/):
 * check macros with a pass/fail count, the thread's last registrar error as a string, a
 * monotonic clock, and a tiny HTTP/1.0 GET over a raw socket to look at the registry the way
 * any other Eureka client would (no curl, no libcurl).
 *
 * Header-only (static functions) so each program stays a single translation unit.
 */
#ifndef REGISTRAR_TESTUTIL_H
#define REGISTRAR_TESTUTIL_H

#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "registrar.h"

/* ---- checks ---------------------------------------------------------------------------- */

static int tu_passed;
static int tu_failed;
static int tu_verbose;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (cond) {                                                                          \
            tu_passed++;                                                                     \
            if (tu_verbose) {                                                                \
                printf("  ok   %s:%d: ", __FILE__, __LINE__);                                \
                printf(__VA_ARGS__);                                                         \
                printf("\n");                                                                \
            }                                                                                \
        } else {                                                                             \
            tu_failed++;                                                                     \
            printf("  FAIL %s:%d: (%s) ", __FILE__, __LINE__, #cond);                        \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
        }                                                                                    \
        fflush(stdout);                                                                      \
    } while (0)

/* Checks a registrar status against the expected one and shows the message on failure. */
#define CHECK_STATUS(call, expected)                                                         \
    do {                                                                                     \
        registrar_status st_ = (call);                                                       \
        CHECK(st_ == (expected), "%s -> %s (want %s) msg='%s'", #call,                       \
              registrar_status_str((int32_t)st_), registrar_status_str((int32_t)(expected)), \
              tu_last_error());                                                              \
    } while (0)

static inline void tu_init(void) {
    const char *v = getenv("REGISTRAR_TEST_VERBOSE");
    tu_verbose = v && *v && strcmp(v, "0") != 0;
}

/* Prints the summary line of one program and returns its exit code. */
static inline int tu_finish(const char *program) {
    printf("%s: %d checks passed, %d failed\n", program, tu_passed, tu_failed);
    fflush(stdout);
    return tu_failed == 0 ? 0 : 1;
}

/* The calling thread's last registrar error (copied into a thread-local buffer). */
static inline const char *tu_last_error(void) {
    static __thread char buf[2048];
    registrar_last_error_message(buf, sizeof buf);
    return buf;
}

static inline int tu_contains(const char *haystack, const char *needle) {
    return haystack != NULL && needle != NULL && strstr(haystack, needle) != NULL;
}

/* ---- time ------------------------------------------------------------------------------ */

static inline double tu_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline void tu_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* ---- HTTP ------------------------------------------------------------------------------ */

/* base64 for the Basic auth header. */
static inline void tu_base64(const char *in, char *out, size_t out_len) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n && o + 5 < out_len; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = 0;
}

/*
 * METHOD (GET, DELETE) {base}{path} where base is "http://127.0.0.1:PORT/prefix/" (IPv4 only: the
 * tests talk to loopback servers). `userpass` ("user:password") adds Basic auth, or NULL.
 * Writes the body (NUL-terminated, truncated to body_len) and returns the HTTP status,
 * or -1 on a transport error (errno-ish message on stderr).
 */
static inline int tu_http(const char *method, const char *base, const char *path,
                          const char *userpass, char *body, size_t body_len) {
    char host[64];
    int port = 80;
    const char *p = base;
    if (strncmp(p, "http://", 7) != 0) return -1;
    p += 7;
    size_t h = strcspn(p, ":/");
    if (h == 0 || h >= sizeof host) return -1;
    memcpy(host, p, h);
    host[h] = 0;
    p += h;
    if (*p == ':') port = atoi(p + 1);
    const char *prefix = strchr(p, '/');
    if (!prefix) prefix = "/";

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    char auth[512] = "";
    if (userpass) {
        char b64[400];
        tu_base64(userpass, b64, sizeof b64);
        snprintf(auth, sizeof auth, "Authorization: Basic %s\r\n", b64);
    }
    /* HTTP/1.0: no chunked encoding, the server closes the connection after the answer. */
    char req[2048];
    int len = snprintf(req, sizeof req,
                       "%s %s%s HTTP/1.0\r\nHost: %s:%d\r\nAccept: application/json\r\n%s\r\n",
                       method, prefix, path, host, port, auth);
    if (len <= 0 || (size_t)len >= sizeof req || send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
        close(fd);
        return -1;
    }
    static __thread char resp[65536];
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
        if (got == sizeof resp - 1) break;
    }
    close(fd);
    resp[got] = 0;
    int status = -1;
    if (sscanf(resp, "HTTP/%*d.%*d %d", &status) != 1) return -1;
    if (body && body_len) {
        const char *b = strstr(resp, "\r\n\r\n");
        snprintf(body, body_len, "%s", b ? b + 4 : "");
    }
    return status;
}

static inline int tu_http_get(const char *base, const char *path, const char *userpass, char *body,
                              size_t body_len) {
    return tu_http("GET", base, path, userpass, body, body_len);
}

/* GET {base}apps/{app}/{id}: the one registry read Eureka never caches. */
static inline int tu_get_instance(const char *base, const char *app, const char *id,
                           const char *userpass, char *body, size_t body_len) {
    char path[512];
    snprintf(path, sizeof path, "apps/%s/%s", app, id);
    return tu_http_get(base, path, userpass, body, body_len);
}

/* The instance's status as the registry shows it ("UP", ...), "" when absent. */
static inline const char *tu_json_status(const char *body, char *out, size_t out_len) {
    out[0] = 0;
    const char *s = strstr(body, "\"status\":\"");
    if (s) {
        s += strlen("\"status\":\"");
        size_t n = strcspn(s, "\"");
        if (n >= out_len) n = out_len - 1;
        memcpy(out, s, n);
        out[n] = 0;
    }
    return out;
}

/* A numeric JSON field such as "lastRenewalTimestamp" (number or string form), 0 if absent. */
static inline long long tu_json_number(const char *body, const char *field) {
    char key[128];
    snprintf(key, sizeof key, "\"%s\":", field);
    const char *s = strstr(body, key);
    if (!s) return 0;
    s += strlen(key);
    if (*s == '"') s++;
    return atoll(s);
}

#endif /* REGISTRAR_TESTUTIL_H */
