/*
 * The C API against registries that misbehave (tests/c/fault_registry.py, started by
 * scripts/test-c.sh): failover with quarantine on 500/503/429, redirects refused, a stop that
 * says when the registry was not told and sends nothing after it returns, bounded responses
 * (an endless body, a body that stops arriving).
 *
 * Environment: REGISTRAR_FAULT_STUB (required): http://127.0.0.1:PORT/ of the stub.
 */
#include "testutil.h"

#define APP "C_TEST_FAULTS"

static const char *stub;

static void mode_url(char *out, size_t len, const char *mode) {
    snprintf(out, len, "%s%s/eureka/", stub, mode);
}

/* Requests the stub has received for `mode` so far. */
static long count(const char *mode) {
    char path[64], body[64];
    snprintf(path, sizeof path, "_count/%s", mode);
    if (tu_http_get(stub, path, NULL, body, sizeof body) != 200) return -1;
    return atol(body);
}

static registrar_client *client(const char *registry, const char *tag) {
    char id[96];
    snprintf(id, sizeof id, "c-%ld-%s", (long)getpid(), tag);
    registrar_config *cfg = NULL;
    registrar_client *c = NULL;
    CHECK_STATUS(registrar_config_new(&cfg), REGISTRAR_OK);
    registrar_config_set(cfg, "REGISTRY_URL", registry);
    registrar_config_set(cfg, "REGISTRY_APP_NAME", APP);
    registrar_config_set(cfg, "REGISTRY_INSTANCE_ID", id);
    registrar_config_set(cfg, "REGISTRY_HOSTNAME", "127.0.0.1");
    registrar_config_set(cfg, "REGISTRY_IP_ADDRESS", "127.0.0.1");
    registrar_config_set(cfg, "REGISTRY_HEARTBEAT_INTERVAL", "0.05");
    registrar_config_set(cfg, "REGISTRY_LEASE_DURATION", "5");
    registrar_config_set(cfg, "REGISTRY_TIMEOUT", "2");
    CHECK_STATUS(registrar_client_new(cfg, &c), REGISTRAR_OK);
    registrar_config_free(cfg);
    return c;
}

static const char *client_error(registrar_client *c) {
    static char buf[2048];
    size_t len = 0;
    registrar_client_last_error(c, buf, sizeof buf, &len);
    return buf;
}

/* 500, 503 and 429 move the same request to the next URL; the failing server is then skipped
 * (quarantined), not asked again on every heartbeat. */
static void test_failover_and_quarantine(const char *failing) {
    char bad[256], good[256], both[600];
    mode_url(bad, sizeof bad, failing);
    mode_url(good, sizeof good, "ok");
    snprintf(both, sizeof both, "%s,%s", bad, good);
    long bad0 = count(failing);
    registrar_client *c = client(both, failing);
    registrar_client_set_status(c, REGISTRAR_INSTANCE_UP);
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 3000), REGISTRAR_OK);
    tu_sleep_ms(1000); /* about 20 heartbeats */
    registrar_client_info info;
    registrar_client_get_info(c, &info);
    long asked = count(failing) - bad0;
    CHECK(info.heartbeats >= 5, "%s: heartbeats went on (%llu)", failing,
          (unsigned long long)info.heartbeats);
    CHECK(asked >= 1 && asked <= 3, "%s: the failing server was asked %ld times, not per beat",
          failing, asked);
    CHECK_STATUS(registrar_client_stop(c, 2000), REGISTRAR_OK);
    registrar_client_free(c);
}

/* A 3xx is an error naming the status and the Location; nothing follows it. */
static void test_redirect_refused(void) {
    char url[256];
    mode_url(url, sizeof url, "redirect");
    long ok0 = count("ok");
    registrar_client *c = client(url, "redirect");
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 800), REGISTRAR_ERR_TIMEOUT);
    const char *e = client_error(c);
    CHECK(tu_contains(e, "302") && tu_contains(e, "/ok/eureka/apps/"), "error: %s", e);
    CHECK(count("ok") == ok0, "the redirect was not followed (%ld requests)", count("ok") - ok0);
    registrar_client_free(c);
}

/* stop says so when the registry was not told (DELETE refused). */
static void test_stop_tells_the_truth(void) {
    char url[256];
    mode_url(url, sizeof url, "nodelete");
    registrar_client *c = client(url, "nodelete");
    registrar_client_set_status(c, REGISTRAR_INSTANCE_UP);
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 3000), REGISTRAR_OK);
    registrar_status st = registrar_client_stop(c, 2000);
    const char *e = tu_last_error();
    CHECK(st == REGISTRAR_ERR_REJECTED, "stop -> %s", registrar_status_str((int32_t)st));
    CHECK(tu_contains(e, "DELETE") && tu_contains(e, "500") &&
              tu_contains(e, "delete refused (stub)"),
          "stop's message: %s", e);
    CHECK_STATUS(registrar_client_stop(c, 2000), REGISTRAR_ERR_REJECTED);
    registrar_client_free(c);
}

/* After stop returns, nothing more leaves for that client, on any URL: a registration hung on
 * the first server must not go on to the second once its timeout passes. */
static void test_nothing_after_stop(void) {
    char hang[256], good[256], both[600];
    mode_url(hang, sizeof hang, "hang");
    mode_url(good, sizeof good, "ok");
    snprintf(both, sizeof both, "%s,%s", hang, good);
    long ok0 = count("ok");
    registrar_client *c = client(both, "afterstop");
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    tu_sleep_ms(300);
    double t0 = tu_now_ms();
    registrar_status st = registrar_client_stop(c, 300);
    double took = tu_now_ms() - t0;
    CHECK(took < 1000, "stop returned after %.0f ms (%s)", took, registrar_status_str((int32_t)st));
    tu_sleep_ms(2600); /* past the 2 s timeout of the hung request */
    CHECK(count("ok") == ok0, "%ld requests reached the second server after stop",
          count("ok") - ok0);
    registrar_client_free(c);
}

static registrar_discovery *cache(const char *mode, const char *max_bytes) {
    char url[256];
    mode_url(url, sizeof url, mode);
    registrar_config *cfg = NULL;
    registrar_discovery *d = NULL;
    registrar_config_new(&cfg);
    registrar_config_set(cfg, "REGISTRY_URL", url);
    registrar_config_set(cfg, "REGISTRY_TIMEOUT", "1");
    if (max_bytes) CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_MAX_RESPONSE_BYTES", max_bytes),
                                REGISTRAR_OK);
    CHECK_STATUS(registrar_discovery_new(cfg, &d), REGISTRAR_OK);
    registrar_config_free(cfg);
    return d;
}

/* An endless body and a body that stops arriving are errors that say so. */
static void test_bounded_responses(void) {
    registrar_discovery *d = cache("endless", "1000000");
    CHECK_STATUS(registrar_discovery_start(d), REGISTRAR_OK);
    registrar_status st = registrar_discovery_refresh(d, 5000);
    const char *e = tu_last_error();
    CHECK(st != REGISTRAR_OK && tu_contains(e, "1000000 bytes") &&
              tu_contains(e, "REGISTRY_MAX_RESPONSE_BYTES"),
          "endless body: %s: %s", registrar_status_str((int32_t)st), e);
    registrar_discovery_free(d);

    d = cache("stall", NULL);
    CHECK_STATUS(registrar_discovery_start(d), REGISTRAR_OK);
    st = registrar_discovery_refresh(d, 5000);
    e = tu_last_error();
    CHECK(st == REGISTRAR_ERR_TIMEOUT && tu_contains(e, "stopped arriving") &&
              !tu_contains(e, "JSON") && !tu_contains(e, "readable"),
          "stalled body: %s: %s", registrar_status_str((int32_t)st), e);
    registrar_discovery_free(d);

    /* The setting is checked like every other. */
    registrar_config *cfg = NULL;
    registrar_config_new(&cfg);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_URL", "http://127.0.0.1:1/eureka/"),
                 REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_MAX_RESPONSE_BYTES", "lots"), REGISTRAR_OK);
    registrar_discovery *bad = NULL;
    CHECK_STATUS(registrar_discovery_new(cfg, &bad), REGISTRAR_ERR_INVALID_CONFIG);
    CHECK(tu_contains(tu_last_error(), "REGISTRY_MAX_RESPONSE_BYTES"), "%s", tu_last_error());
    registrar_config_free(cfg);
}

int main(void) {
    tu_init();
    stub = getenv("REGISTRAR_FAULT_STUB");
    if (!stub) {
        fprintf(stderr, "REGISTRAR_FAULT_STUB is not set\n");
        return 2;
    }
    test_failover_and_quarantine("500");
    test_failover_and_quarantine("503");
    test_failover_and_quarantine("429");
    test_redirect_refused();
    test_stop_tells_the_truth();
    test_nothing_after_stop();
    test_bounded_responses();
    return tu_finish("test_faults");
}
