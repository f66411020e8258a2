/*
 * TLS through the C API against the real Eureka server over https (scripts/test-tls-servers.sh):
 * REGISTRY_CA_FILE for a client and a discovery handle, SSL_CERT_FILE, an unknown issuer,
 * wrong-host and expired certificates (served by tests/c/tls_listener.py: one Eureka server
 * cannot serve them beside its good certificate), failover past a TLS failure, mutual TLS
 * with and without a client certificate, and bad files as REGISTRAR_ERR_INVALID_CONFIG naming
 * the setting, for clients and discovery handles alike.
 *
 * Environment (set by scripts/test-c.sh): REGISTRAR_TEST_TLS_CERTS (scripts/test-certs.sh),
 * REGISTRAR_TEST_EUREKA_TLS_URL, REGISTRAR_TEST_EUREKA_MTLS_URL, and the listeners'
 * REGISTRAR_TEST_TLS_WRONG_HOST_URL and REGISTRAR_TEST_TLS_EXPIRED_URL.
 */
#include "testutil.h"

static const char *certs, *tls_url, *mtls_url, *wrong_host_url, *expired_url;

static const char *cert(const char *name) {
    static char paths[8][1024];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", certs, name);
    return p;
}

/* A fast client config for `registry`; `pairs` is NULL-terminated key, value, key, value... */
static registrar_config *tls_config(const char *registry, const char *const *pairs) {
    static int seq;
    char app[64];
    snprintf(app, sizeof app, "C_TLS_%ld_%d", (long)getpid(), ++seq);
    registrar_config *cfg = NULL;
    CHECK_STATUS(registrar_config_new(&cfg), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "url", registry), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "app_name", app), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "hostname", "127.0.0.1"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "ip_address", "127.0.0.1"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "heartbeat_interval", "0.2"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "lease_duration", "2"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "timeout", "2"), REGISTRAR_OK);
    for (; pairs && pairs[0]; pairs += 2)
        CHECK_STATUS(registrar_config_set(cfg, pairs[0], pairs[1]), REGISTRAR_OK);
    return cfg;
}

/* Starts a client; returns the wait_registered status after `ms` and, on failure, copies the
 * client's last error into `why`. */
static registrar_status try_register(const char *registry, const char *const *pairs, uint32_t ms,
                                     char *why, size_t why_len) {
    registrar_config *cfg = tls_config(registry, pairs);
    registrar_client *c = NULL;
    registrar_status st = registrar_client_new(cfg, &c);
    registrar_config_free(cfg);
    if (st != REGISTRAR_OK) {
        snprintf(why, why_len, "%s", tu_last_error());
        return st;
    }
    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    st = registrar_client_wait_registered(c, ms);
    size_t len = 0;
    why[0] = '\0';
    if (st != REGISTRAR_OK)
        CHECK_STATUS(registrar_client_last_error(c, why, why_len, &len), REGISTRAR_OK);
    registrar_client_stop(c, 3000);
    registrar_client_free(c);
    return st;
}

static void test_ca_file_and_discovery(void) {
    char why[2048];
    const char *ca[] = {"ca_file", cert("ca.pem"), NULL};
    CHECK(try_register(tls_url, ca, 10000, why, sizeof why) == REGISTRAR_OK,
          "https with REGISTRY_CA_FILE: %s", why);

    registrar_config *cfg = NULL;
    CHECK_STATUS(registrar_config_new(&cfg), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "url", tls_url), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "ca_file", cert("ca.pem")), REGISTRAR_OK);
    registrar_discovery *d = NULL;
    CHECK_STATUS(registrar_discovery_new(cfg, &d), REGISTRAR_OK);
    registrar_config_free(cfg);
    CHECK_STATUS(registrar_discovery_start(d), REGISTRAR_OK);
    CHECK_STATUS(registrar_discovery_wait_ready(d, 10000), REGISTRAR_OK);
    registrar_discovery_free(d);
}

static void test_ssl_cert_file(void) {
    char why[2048];
    setenv("SSL_CERT_FILE", cert("ca.pem"), 1);
    registrar_status st = try_register(tls_url, NULL, 10000, why, sizeof why);
    unsetenv("SSL_CERT_FILE");
    CHECK(st == REGISTRAR_OK, "https trusted through SSL_CERT_FILE: %s", why);
}

static void test_refused_certificates(void) {
    char why[2048];
    const char *ca[] = {"ca_file", cert("ca.pem"), NULL};
    CHECK(try_register(tls_url, NULL, 1500, why, sizeof why) == REGISTRAR_ERR_TIMEOUT &&
              tu_contains(why, "unknown issuer") && tu_contains(why, tls_url),
          "untrusted: %s", why);
    CHECK(try_register(wrong_host_url, ca, 1500, why, sizeof why) == REGISTRAR_ERR_TIMEOUT &&
              tu_contains(why, "wrong host name") && tu_contains(why, "wrong-host.invalid"),
          "wrong host: %s", why);
    CHECK(try_register(expired_url, ca, 1500, why, sizeof why) == REGISTRAR_ERR_TIMEOUT &&
              tu_contains(why, "has expired") && tu_contains(why, expired_url),
          "expired: %s", why);

    /* A TLS failure moves on to the next service URL. */
    char both[1024];
    snprintf(both, sizeof both, "%s,%s", expired_url, tls_url);
    CHECK(try_register(both, ca, 10000, why, sizeof why) == REGISTRAR_OK,
          "failover past an expired certificate: %s", why);
}

static void test_mutual_tls(void) {
    char why[2048];
    const char *with[] = {"ca_file",     cert("ca.pem"),     "client_cert", cert("client.pem"),
                          "client_key",  cert("client.key"), NULL};
    CHECK(try_register(mtls_url, with, 10000, why, sizeof why) == REGISTRAR_OK,
          "mTLS with a client certificate: %s", why);
    const char *without[] = {"ca_file", cert("ca.pem"), NULL};
    CHECK(try_register(mtls_url, without, 1500, why, sizeof why) == REGISTRAR_ERR_TIMEOUT &&
              tu_contains(why, "requires a client certificate"),
          "mTLS without one: %s", why);
}

static void test_bad_files(void) {
    struct {
        const char *pairs[5];
        const char *want;
    } cases[] = {
        {{"ca_file", "/nonexistent/ca.pem", NULL}, "REGISTRY_CA_FILE '/nonexistent/ca.pem'"},
        {{"ca_file", cert("not-pem.txt"), NULL}, "REGISTRY_CA_FILE"},
        {{"client_cert", cert("client.pem"), NULL}, "REGISTRY_CLIENT_KEY is not"},
        {{"client_cert", cert("client.pem"), "client_key", cert("not-pem.txt"), NULL},
         "REGISTRY_CLIENT_KEY"},
        {{"client_cert", cert("client.pem"), "client_key", cert("client-rsa.key"), NULL},
         "does not belong to the certificate in REGISTRY_CLIENT_CERT"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        registrar_config *cfg = tls_config(tls_url, cases[i].pairs);
        registrar_client *c = NULL;
        registrar_status st = registrar_client_new(cfg, &c);
        CHECK(st == REGISTRAR_ERR_INVALID_CONFIG && c == NULL &&
                  tu_contains(tu_last_error(), cases[i].want),
              "client_new: %s: %s", registrar_status_str((int32_t)st), tu_last_error());
        registrar_discovery *d = NULL;
        st = registrar_discovery_new(cfg, &d);
        CHECK(st == REGISTRAR_ERR_INVALID_CONFIG && d == NULL &&
                  tu_contains(tu_last_error(), cases[i].want),
              "discovery_new: %s: %s", registrar_status_str((int32_t)st), tu_last_error());
        registrar_config_free(cfg);
    }
}

static const char *need(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "test_tls: %s is not set (run scripts/test-c.sh)\n", name);
        exit(2);
    }
    return v;
}

int main(void) {
    tu_init();
    certs = need("REGISTRAR_TEST_TLS_CERTS");
    tls_url = need("REGISTRAR_TEST_EUREKA_TLS_URL");
    mtls_url = need("REGISTRAR_TEST_EUREKA_MTLS_URL");
    wrong_host_url = need("REGISTRAR_TEST_TLS_WRONG_HOST_URL");
    expired_url = need("REGISTRAR_TEST_TLS_EXPIRED_URL");
    /* The test CA must come from the settings under test, never from the environment. */
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    test_ca_file_and_discovery();
    test_ssl_cert_file();
    test_refused_certificates();
    test_mutual_tls();
    test_bad_files();
    return tu_finish("test_tls");
}
