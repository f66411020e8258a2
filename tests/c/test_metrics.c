/*
 * Metrics, JSON snapshots and the log callback's recovery message through the C API, against a
 * real Eureka server: heartbeats counted as result="success" in registrar_metrics_text, a failed
 * heartbeat (the registry stops answering) counted as result="error" and shown in
 * registrar_client_snapshot_json, discovery fetches counted by kind, and the snprintf contract
 * of the three text functions.
 *
 * "The registry stops" is a loopback relay in this program in front of the real server: the
 * client talks to the relay, and closing it is, for the client, a registry that went away.
 *
 * Environment: REGISTRAR_TEST_EUREKA_URL (required).
 */
#include "testutil.h"

#include <poll.h>
#include <pthread.h>

#define APP "C_TEST_METRICS"

static const char *url;

/* ---- a loopback TCP relay that can be switched off ----------------------------------------- */

#define RELAY_MAX_CONNS 32

static struct {
    int listen_fd;
    int port;
    struct sockaddr_in upstream;
    volatile int stopping;
    pthread_t acceptor;
    pthread_t pumps[RELAY_MAX_CONNS];
    int n_pumps;
    pthread_mutex_t lock;
} relay = { .listen_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

static void *relay_pump(void *arg) {
    int down = (int)(intptr_t)arg;
    int up = socket(AF_INET, SOCK_STREAM, 0);
    if (up < 0 || connect(up, (struct sockaddr *)&relay.upstream, sizeof relay.upstream) != 0) {
        if (up >= 0) close(up);
        close(down);
        return NULL;
    }
    char buf[16384];
    struct pollfd fds[2] = { { down, POLLIN, 0 }, { up, POLLIN, 0 } };
    while (!relay.stopping) {
        int n = poll(fds, 2, 50);
        if (n < 0) break;
        int done = 0;
        for (int i = 0; i < 2 && !done; i++) {
            if (!fds[i].revents) continue;
            ssize_t got = read(fds[i].fd, buf, sizeof buf);
            if (got <= 0 || write(fds[1 - i].fd, buf, (size_t)got) != got) done = 1;
        }
        if (done) break;
    }
    close(up);
    close(down);
    return NULL;
}

static void *relay_accept(void *arg) {
    (void)arg;
    while (!relay.stopping) {
        struct pollfd p = { relay.listen_fd, POLLIN, 0 };
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(relay.listen_fd, NULL, NULL);
        if (fd < 0) continue;
        pthread_mutex_lock(&relay.lock);
        if (relay.n_pumps < RELAY_MAX_CONNS &&
            pthread_create(&relay.pumps[relay.n_pumps], NULL, relay_pump, (void *)(intptr_t)fd) == 0)
            relay.n_pumps++;
        else
            close(fd);
        pthread_mutex_unlock(&relay.lock);
    }
    return NULL;
}

/* Listens on loopback `port` (0: any free port) and starts accepting. SO_REUSEADDR on every
 * listener, so that the same port can be taken again while closed connections linger. */
static int relay_listen(int port) {
    relay.stopping = 0;
    relay.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in addr = { 0 };
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)port);
    socklen_t len = sizeof addr;
    if (relay.listen_fd < 0 ||
        setsockopt(relay.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(relay.listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(relay.listen_fd, 16) != 0 ||
        getsockname(relay.listen_fd, (struct sockaddr *)&addr, &len) != 0)
        return -1;
    relay.port = ntohs(addr.sin_port);
    return pthread_create(&relay.acceptor, NULL, relay_accept, NULL) == 0 ? 0 : -1;
}

/* Starts the relay in front of the registry at `base` (http://127.0.0.1:PORT/...). */
static int relay_start(const char *base) {
    int up_port = 0;
    if (sscanf(base, "http://127.0.0.1:%d/", &up_port) != 1) return -1;
    memset(&relay.upstream, 0, sizeof relay.upstream);
    relay.upstream.sin_family = AF_INET;
    relay.upstream.sin_port = htons((uint16_t)up_port);
    relay.upstream.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return relay_listen(0);
}

/* Closes the listener and every relayed connection: new connections are refused. */
static void relay_stop(void) {
    relay.stopping = 1;
    pthread_join(relay.acceptor, NULL);
    close(relay.listen_fd);
    for (int i = 0; i < relay.n_pumps; i++) pthread_join(relay.pumps[i], NULL);
    relay.n_pumps = 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* registrar_metrics_text into a malloc'd string (the caller frees it). */
static char *metrics_text(void) {
    for (int attempt = 0; attempt < 8; attempt++) {
        size_t need = 0;
        if (registrar_metrics_text(NULL, 0, &need) != REGISTRAR_OK) return NULL;
        char *buf = malloc(need + 64);
        size_t got = 0;
        if (buf && registrar_metrics_text(buf, need + 64, &got) == REGISTRAR_OK && got < need + 64)
            return buf;
        free(buf);
    }
    return NULL;
}

/* The value of the sample that starts with `series` (name{labels}), or -1 if there is none. */
static double metric(const char *series) {
    char *text = metrics_text();
    double value = -1;
    size_t n = strlen(series);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            value = strtod(line + n + 1, NULL);
            break;
        }
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return value;
}

static double heartbeats(const char *id, const char *result) {
    char series[512];
    snprintf(series, sizeof series,
             "registrar_heartbeats_total{app=\"" APP "\",instance=\"%s\",result=\"%s\"}", id, result);
    return metric(series);
}

static void client_snapshot(registrar_client *c, char *buf, size_t len) {
    size_t need = 0;
    CHECK_STATUS(registrar_client_snapshot_json(c, buf, len, &need), REGISTRAR_OK);
    CHECK(need < len, "snapshot fits (%zu bytes)", need);
}

static registrar_client *make_client(const char *registry, const char *tag, char *id, size_t id_len) {
    snprintf(id, id_len, "c-%ld-%s", (long)getpid(), tag);
    registrar_config *cfg = NULL;
    CHECK_STATUS(registrar_config_new(&cfg), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_URL", registry), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_APP_NAME", APP), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_INSTANCE_ID", id), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_HOSTNAME", "127.0.0.1"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_IP_ADDRESS", "127.0.0.1"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_HEARTBEAT_INTERVAL", "0.2"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_LEASE_DURATION", "5"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_TIMEOUT", "1"), REGISTRAR_OK);
    registrar_client *c = NULL;
    CHECK_STATUS(registrar_client_new(cfg, &c), REGISTRAR_OK);
    registrar_config_free(cfg);
    return c;
}

/* The log callback keeps the messages (the recovery must be logged after a failure). */
static struct {
    pthread_mutex_t lock;
    char text[8192];
} logged = { PTHREAD_MUTEX_INITIALIZER, "" };

static void on_log(void *user_data, int32_t level, const char *message) {
    (void)user_data;
    pthread_mutex_lock(&logged.lock);
    size_t used = strlen(logged.text);
    snprintf(logged.text + used, sizeof logged.text - used, "%d %s\n", (int)level, message);
    pthread_mutex_unlock(&logged.lock);
}

static int was_logged(const char *needle) {
    pthread_mutex_lock(&logged.lock);
    int found = strstr(logged.text, needle) != NULL;
    pthread_mutex_unlock(&logged.lock);
    return found;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_snprintf_contract(void) {
    size_t need = 0, again = 0;
    CHECK_STATUS(registrar_metrics_text(NULL, 0, &need), REGISTRAR_OK);
    CHECK(need > 100, "metrics text needs %zu bytes", need);
    char small[16];
    memset(small, 'x', sizeof small);
    CHECK_STATUS(registrar_metrics_text(small, sizeof small, &again), REGISTRAR_OK);
    CHECK(small[15] == 0 && strlen(small) == 15 && again >= need, "truncated and terminated");
    CHECK(strncmp(small, "# HELP registrar", 15) == 0, "starts with a HELP line: %s", small);
    CHECK_STATUS(registrar_metrics_text(small, sizeof small, NULL), REGISTRAR_ERR_NULL_ARGUMENT);
    CHECK_STATUS(registrar_client_snapshot_json(NULL, small, sizeof small, &need),
                 REGISTRAR_ERR_NULL_ARGUMENT);
    CHECK_STATUS(registrar_discovery_snapshot_json(NULL, small, sizeof small, &need),
                 REGISTRAR_ERR_NULL_ARGUMENT);
}

static void test_heartbeats_and_a_registry_that_goes_away(void) {
    CHECK(relay_start(url) == 0, "relay started in front of %s", url);
    char base[128], id[128], snap[4096];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/eureka/", relay.port);
    registrar_client *c = make_client(base, "relay", id, sizeof id);
    CHECK_STATUS(registrar_client_set_logger(c, on_log, NULL, NULL, REGISTRAR_LOG_INFO), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_OK);
    CHECK(heartbeats(id, "success") == 0, "counted from zero before start");
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 20000), REGISTRAR_OK);
    double t0 = tu_now_ms();
    while (heartbeats(id, "success") < 2 && tu_now_ms() - t0 < 10000) tu_sleep_ms(50);
    CHECK(heartbeats(id, "success") >= 2, "heartbeats counted as success: %.0f",
          heartbeats(id, "success"));
    CHECK(heartbeats(id, "error") == 0, "no heartbeat error yet");
    client_snapshot(c, snap, sizeof snap);
    CHECK(tu_contains(snap, "\"phase\":\"registered\"") && tu_contains(snap, "\"status\":\"UP\"") &&
              tu_contains(snap, "\"last_error\":null") && tu_contains(snap, base),
          "snapshot while registered: %s", snap);

    relay_stop(); /* the registry is gone, as far as the client can tell */
    t0 = tu_now_ms();
    while (heartbeats(id, "error") < 1 && tu_now_ms() - t0 < 10000) tu_sleep_ms(50);
    CHECK(heartbeats(id, "error") >= 1, "a failed heartbeat counted as error: %.0f",
          heartbeats(id, "error"));
    client_snapshot(c, snap, sizeof snap);
    CHECK(tu_contains(snap, "\"code\":\"REGISTRAR_ERR_TRANSPORT\"") ||
              tu_contains(snap, "\"code\":\"REGISTRAR_ERR_TIMEOUT\""),
          "snapshot shows the error: %s", snap);
    CHECK(was_logged("1 heartbeat failed"), "the failure was logged as a warning");

    /* The registry comes back on the same port: the recovery is logged once. */
    int port = relay.port;
    CHECK(relay_listen(port) == 0, "relay back on port %d (%s)", port, strerror(errno));
    t0 = tu_now_ms();
    while (!was_logged("the registry answers again") && tu_now_ms() - t0 < 10000) tu_sleep_ms(50);
    CHECK(was_logged("2 the registry answers again (after: heartbeat failed"),
          "the recovery was logged (info): %s", logged.text);

    CHECK_STATUS(registrar_client_stop(c, 5000), REGISTRAR_OK);
    registrar_client_free(c);
    CHECK(heartbeats(id, "success") == -1, "a freed client leaves the metrics");
    relay_stop();
}

static void test_discovery_fetches(void) {
    registrar_config *cfg = NULL;
    CHECK_STATUS(registrar_config_new(&cfg), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_URL", url), REGISTRAR_OK);
    registrar_discovery *d = NULL;
    CHECK_STATUS(registrar_discovery_new(cfg, &d), REGISTRAR_OK);
    registrar_config_free(cfg);
    char snap[4096];
    size_t need = 0;
    CHECK_STATUS(registrar_discovery_snapshot_json(d, snap, sizeof snap, &need), REGISTRAR_OK);
    CHECK(tu_contains(snap, "\"phase\":\"not_started\""), "before start: %s", snap);
    int cache = 0;
    const char *at = strstr(snap, "\"cache\":");
    CHECK(at && sscanf(at, "\"cache\":%d", &cache) == 1, "cache number in %s", snap);
    CHECK_STATUS(registrar_discovery_start(d), REGISTRAR_OK);
    CHECK_STATUS(registrar_discovery_wait_ready(d, 10000), REGISTRAR_OK);
    CHECK_STATUS(registrar_discovery_refresh(d, 10000), REGISTRAR_OK);
    char series[256];
    snprintf(series, sizeof series,
             "registrar_discovery_fetches_total{cache=\"%d\",kind=\"full\",result=\"success\"}", cache);
    CHECK(metric(series) >= 1, "%s = %.0f", series, metric(series));
    snprintf(series, sizeof series,
             "registrar_discovery_fetches_total{cache=\"%d\",kind=\"delta\",result=\"success\"}", cache);
    CHECK(metric(series) >= 1, "%s = %.0f", series, metric(series));
    CHECK(metric("registrar_discovery_caches") >= 1, "caches counted");
    CHECK_STATUS(registrar_discovery_snapshot_json(d, snap, sizeof snap, &need), REGISTRAR_OK);
    CHECK(tu_contains(snap, "\"phase\":\"running\"") && tu_contains(snap, url),
          "running: %s", snap);
    CHECK_STATUS(registrar_discovery_stop(d, 5000), REGISTRAR_OK);
    registrar_discovery_free(d);
    snprintf(series, sizeof series, "registrar_discovery_instances{cache=\"%d\"}", cache);
    CHECK(metric(series) == -1, "a freed cache leaves the metrics");
}

int main(void) {
    tu_init();
    url = getenv("REGISTRAR_TEST_EUREKA_URL");
    if (!url || !*url) {
        fprintf(stderr, "test_metrics: REGISTRAR_TEST_EUREKA_URL is not set\n");
        return 2;
    }
    test_snprintf_contract();
    test_heartbeats_and_a_registry_that_goes_away();
    test_discovery_fetches();
    return tu_finish("test_metrics");
}
