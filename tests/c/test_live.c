/*
 * The C API against a real Eureka server (Spring Cloud Netflix, started by scripts/test-c.sh or
 * scripts/test.sh): register with status UP, see it through GET apps/{APP}/{ID}, heartbeats
 * renew the lease, metadata and status changes arrive, stop and free deregister (404 at once),
 * log callbacks (free_user_data exactly once, stop from inside the callback), basic auth with
 * right and wrong credentials, and many threads using one handle at once.
 *
 * Environment: REGISTRAR_TEST_EUREKA_URL (required), REGISTRAR_TEST_EUREKA_AUTH_URL (optional,
 * a server requiring user "registrar" and REGISTRAR_TEST_PASSWORD, default "s3cret-pw").
 */
#include "testutil.h"

#include <pthread.h>

#define APP "C_TEST_LIVE"

static const char *url;
static const char *auth_url;
static const char *password;
static char body[65536];

/* A config for a fast test instance with a unique id: APP / c-<pid>-<tag>. */
static registrar_config *live_config(const char *registry, const char *tag, char *id,
                                     size_t id_len) {
    snprintf(id, id_len, "c-%ld-%s", (long)getpid(), tag);
    registrar_config *cfg = NULL;
    CHECK_STATUS(registrar_config_new(&cfg), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_URL", registry), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_APP_NAME", APP), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_INSTANCE_ID", id), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_HOSTNAME", "127.0.0.1"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_IP_ADDRESS", "127.0.0.1"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_PORT", "18080"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_HEARTBEAT_INTERVAL", "0.2"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_LEASE_DURATION", "5"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_TIMEOUT", "3"), REGISTRAR_OK);
    return cfg;
}

static registrar_client *live_client(const char *tag, char *id, size_t id_len) {
    registrar_config *cfg = live_config(url, tag, id, id_len);
    registrar_client *c = NULL;
    CHECK_STATUS(registrar_client_new(cfg, &c), REGISTRAR_OK);
    registrar_config_free(cfg);
    return c;
}

static int get_status_code(const char *base, const char *id, const char *userpass) {
    return tu_get_instance(base, APP, id, userpass, body, sizeof body);
}

static const char *shown_status(void) {
    static char s[64];
    return tu_json_status(body, s, sizeof s);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void test_lifecycle(void) {
    char id[128];
    registrar_client *c = live_client("life", id, sizeof id);
    registrar_client_info info;
    char buf[256];
    size_t len;

    CHECK_STATUS(registrar_client_instance_id(c, buf, sizeof buf, &len), REGISTRAR_OK);
    CHECK(strcmp(buf, id) == 0, "instance id %s", buf);
    CHECK_STATUS(registrar_client_app_name(c, buf, sizeof buf, &len), REGISTRAR_OK);
    CHECK(strcmp(buf, APP) == 0, "app %s", buf);
    CHECK(get_status_code(url, id, NULL) == 404, "not registered before start");

    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_OK);
    double t0 = tu_now_ms();
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 5000), REGISTRAR_OK);
    int code = get_status_code(url, id, NULL);
    double took = tu_now_ms() - t0;
    CHECK(code == 200 && strcmp(shown_status(), "UP") == 0, "GET %d status %s", code,
          shown_status());
    /* Registered at start, not after a heartbeat interval; the bound is generous because a loaded
     * CI machine can take a second for the JVM to answer (speed is measured in bench/, not here). */
    CHECK(took < 5000, "visible UP %.1f ms after start (< 5 s)", took);
    CHECK(tu_contains(body, "\"app\":\"" APP "\"") && tu_contains(body, "\"ipAddr\":\"127.0.0.1\""),
          "payload as configured");

    CHECK_STATUS(registrar_client_get_info(c, &info), REGISTRAR_OK);
    CHECK(info.state == REGISTRAR_STATE_REGISTERED && info.status == REGISTRAR_INSTANCE_UP &&
              info.registrations >= 1 && info.last_error == REGISTRAR_OK,
          "info: state %d status %d registrations %llu", (int)info.state, (int)info.status,
          (unsigned long long)info.registrations);
    CHECK_STATUS(registrar_client_last_error(c, buf, sizeof buf, &len), REGISTRAR_OK);
    CHECK(len == 0 && buf[0] == 0, "no background error: '%s'", buf);

    /* Heartbeats every 0.2 s renew the lease. */
    long long renewed0 = tu_json_number(body, "lastRenewalTimestamp");
    uint64_t beats0 = info.heartbeats;
    /* At least 3 heartbeats follow (0.6 s at the 0.2 s interval; up to 5 s allowed on a loaded
     * machine: this checks that heartbeats keep going, not how fast). */
    for (int i = 0; i < 50; i++) {
        tu_sleep_ms(100);
        CHECK_STATUS(registrar_client_get_info(c, &info), REGISTRAR_OK);
        if (info.heartbeats >= beats0 + 3) break;
    }
    code = get_status_code(url, id, NULL);
    long long renewed1 = tu_json_number(body, "lastRenewalTimestamp");
    CHECK(info.heartbeats >= beats0 + 3, "heartbeats %llu -> %llu within 5 s",
          (unsigned long long)beats0, (unsigned long long)info.heartbeats);
    CHECK(code == 200 && renewed1 > renewed0, "lastRenewalTimestamp %lld -> %lld", renewed0,
          renewed1);

    /* Metadata reaches the registry by re-registration. */
    CHECK_STATUS(registrar_client_set_metadata(c, "zone", "c-zone-1"), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 3000), REGISTRAR_OK);
    code = get_status_code(url, id, NULL);
    CHECK(code == 200 && tu_contains(body, "\"zone\":\"c-zone-1\""), "metadata shown");
    CHECK_STATUS(registrar_client_set_metadata(c, "zone", NULL), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 3000), REGISTRAR_OK);
    code = get_status_code(url, id, NULL);
    CHECK(code == 200 && !tu_contains(body, "\"zone\""), "metadata removed");

    /* Status changes too. */
    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_OUT_OF_SERVICE), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 3000), REGISTRAR_OK);
    code = get_status_code(url, id, NULL);
    CHECK(code == 200 && strcmp(shown_status(), "OUT_OF_SERVICE") == 0, "status %s",
          shown_status());
    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 3000), REGISTRAR_OK);
    code = get_status_code(url, id, NULL);
    CHECK(code == 200 && strcmp(shown_status(), "UP") == 0, "back UP: %s", shown_status());

    /* Stop: gone at once, nothing more counted, idempotent. */
    t0 = tu_now_ms();
    CHECK_STATUS(registrar_client_stop(c, 5000), REGISTRAR_OK);
    took = tu_now_ms() - t0;
    code = get_status_code(url, id, NULL);
    CHECK(code == 404, "GET after stop: %d (stop took %.1f ms)", code, took);
    CHECK_STATUS(registrar_client_get_info(c, &info), REGISTRAR_OK);
    uint64_t beats = info.heartbeats, regs = info.registrations;
    CHECK(info.state == REGISTRAR_STATE_STOPPED, "state stopped");
    tu_sleep_ms(500);
    CHECK_STATUS(registrar_client_get_info(c, &info), REGISTRAR_OK);
    CHECK(info.heartbeats == beats && info.registrations == regs, "no request after stop");
    CHECK(get_status_code(url, id, NULL) == 404, "still gone");
    CHECK_STATUS(registrar_client_stop(c, 5000), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_ERR_SHUT_DOWN);
    registrar_client_free(c);
}

static void test_free_without_stop(void) {
    char id[128];
    registrar_client *c = live_client("free", id, sizeof id);
    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 5000), REGISTRAR_OK);
    CHECK(get_status_code(url, id, NULL) == 200, "registered");
    double t0 = tu_now_ms();
    registrar_client_free(c);
    double took = tu_now_ms() - t0;
    int code = get_status_code(url, id, NULL);
    CHECK(code == 404, "free deregistered: GET %d, free took %.1f ms", code, took);
}

/* ---- log callbacks ---------------------------------------------------------------------- */

struct sink {
    pthread_mutex_t lock;
    registrar_client *client; /* for stop from the callback */
    const char *id;
    int stop_in_callback;
    int calls, frees, calls_after_free;
    int saw_registered, saw_deregistered;
    registrar_status stop_status;
    double stop_ms;
};

static void on_log(void *user_data, int32_t level, const char *message) {
    struct sink *s = user_data;
    int do_stop = 0;
    if (tu_verbose) printf("  log  [%d] %s\n", (int)level, message);
    pthread_mutex_lock(&s->lock);
    s->calls++;
    if (s->frees) s->calls_after_free++;
    /* The first INFO message is the accepted registration ("registered: APP/ID status UP";
     * the exact wording is not part of the API, so only the instance id and status count). */
    if (level == REGISTRAR_LOG_INFO && strstr(message, "regist") && strstr(message, s->id) &&
        strstr(message, "status UP")) {
        s->saw_registered++;
        do_stop = s->stop_in_callback && s->saw_registered == 1;
    }
    else if (strstr(message, "deregistered") && strstr(message, s->id))
        s->saw_deregistered++;
    pthread_mutex_unlock(&s->lock);
    if (do_stop) {
        /* From the worker thread: only requests the stop and returns at once. */
        double t0 = tu_now_ms();
        registrar_status st = registrar_client_stop(s->client, 0);
        double took = tu_now_ms() - t0;
        pthread_mutex_lock(&s->lock);
        s->stop_status = st;
        s->stop_ms = took;
        pthread_mutex_unlock(&s->lock);
    }
}

static void on_free(void *user_data) {
    struct sink *s = user_data;
    pthread_mutex_lock(&s->lock);
    s->frees++;
    pthread_mutex_unlock(&s->lock);
}

static void test_logger(void) {
    char id[128];
    struct sink s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.lock, NULL);
    registrar_client *c = live_client("log", id, sizeof id);
    s.id = id;
    CHECK_STATUS(registrar_client_set_logger(c, on_log, &s, on_free, REGISTRAR_LOG_DEBUG),
                 REGISTRAR_OK);
    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 5000), REGISTRAR_OK);
    tu_sleep_ms(300);
    CHECK_STATUS(registrar_client_stop(c, 5000), REGISTRAR_OK);
    pthread_mutex_lock(&s.lock);
    int calls = s.calls;
    CHECK(s.saw_registered >= 1 && s.saw_deregistered == 1, "logged registered %d, deregistered %d",
          s.saw_registered, s.saw_deregistered);
    CHECK(s.frees == 0, "not freed while installed");
    pthread_mutex_unlock(&s.lock);
    tu_sleep_ms(300);
    registrar_client_free(c);
    CHECK(s.calls == calls && s.frees == 1 && s.calls_after_free == 0,
          "after stop: %d more calls, freed %d time(s)", s.calls - calls, s.frees);
    pthread_mutex_destroy(&s.lock);
}

static void test_stop_from_callback(void) {
    char id[128];
    struct sink s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.lock, NULL);
    s.stop_status = (registrar_status)-1;
    registrar_client *c = live_client("cbstop", id, sizeof id);
    s.id = id;
    s.client = c;
    s.stop_in_callback = 1;
    CHECK_STATUS(registrar_client_set_logger(c, on_log, &s, on_free, REGISTRAR_LOG_INFO),
                 REGISTRAR_OK);
    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    /* The callback stops the client when it hears "registered": wait for the stopped state. */
    registrar_client_info info;
    memset(&info, 0, sizeof info);
    double end = tu_now_ms() + 5000;
    while (tu_now_ms() < end) {
        CHECK_STATUS(registrar_client_get_info(c, &info), REGISTRAR_OK);
        if (info.state == REGISTRAR_STATE_STOPPED) break;
        tu_sleep_ms(10);
    }
    CHECK(info.state == REGISTRAR_STATE_STOPPED, "stopped by the callback (state %d)",
          (int)info.state);
    /* A stop from this thread waits for the worker's DELETE and joins it. */
    CHECK_STATUS(registrar_client_stop(c, 5000), REGISTRAR_OK);
    pthread_mutex_lock(&s.lock);
    CHECK(s.stop_status == REGISTRAR_OK && s.stop_ms < 50,
          "stop inside the callback -> %s in %.2f ms", registrar_status_str((int32_t)s.stop_status),
          s.stop_ms);
    pthread_mutex_unlock(&s.lock);
    int code = get_status_code(url, id, NULL);
    CHECK(code == 404, "deregistered after stop from the callback: GET %d", code);
    registrar_client_free(c);
    CHECK(s.frees == 1 && s.calls_after_free == 0, "freed once (%d)", s.frees);
    pthread_mutex_destroy(&s.lock);
}

/* ---- one handle, many threads ----------------------------------------------------------- */

static registrar_client *shared_client;

static void *hammer(void *arg) {
    long n = (long)arg;
    char key[32], val[32], buf[64];
    size_t len;
    registrar_client_info info;
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "t%ld", n);
        snprintf(val, sizeof val, "v%d", i);
        bad += registrar_client_set_metadata(shared_client, key, val) != REGISTRAR_OK;
        bad += registrar_client_get_metadata(shared_client, key, buf, sizeof buf, &len) !=
               REGISTRAR_OK;
        bad += registrar_client_get_info(shared_client, &info) != REGISTRAR_OK;
        bad += registrar_client_set_status(shared_client, (i % 2) ? REGISTRAR_INSTANCE_UP
                                                                  : REGISTRAR_INSTANCE_DOWN) !=
               REGISTRAR_OK;
        bad += registrar_client_last_error(shared_client, buf, sizeof buf, &len) != REGISTRAR_OK;
    }
    return (void *)(long)bad;
}

static void test_threads(void) {
    char id[128];
    shared_client = live_client("threads", id, sizeof id);
    CHECK_STATUS(registrar_client_start(shared_client), REGISTRAR_OK);
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, hammer, (void *)i);
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    CHECK(bad == 0, "4 threads x 1000 calls: %ld failures", bad);
    /* The last values win: UP (i = 199 is odd) and t0..t3 = v199. */
    CHECK_STATUS(registrar_client_wait_registered(shared_client, 5000), REGISTRAR_OK);
    int code = get_status_code(url, id, NULL);
    CHECK(code == 200 && strcmp(shown_status(), "UP") == 0 &&
              tu_contains(body, "\"t0\":\"v199\"") && tu_contains(body, "\"t3\":\"v199\""),
          "registry has the final state: %d %s", code, shown_status());
    CHECK_STATUS(registrar_client_stop(shared_client, 5000), REGISTRAR_OK);
    CHECK(get_status_code(url, id, NULL) == 404, "gone");
    registrar_client_free(shared_client);
}

/* ---- basic auth --------------------------------------------------------------------------- */

static void test_auth(void) {
    char id[128], userpass[256], buf[1024];
    size_t len;
    registrar_client_info info;
    snprintf(userpass, sizeof userpass, "registrar:%s", password);

    /* Right credentials. */
    registrar_config *cfg = live_config(auth_url, "auth-ok", id, sizeof id);
    CHECK_STATUS(registrar_config_set(cfg, "user", "registrar"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "password", password), REGISTRAR_OK);
    registrar_client *c = NULL;
    CHECK_STATUS(registrar_client_new(cfg, &c), REGISTRAR_OK);
    registrar_config_free(cfg);
    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 5000), REGISTRAR_OK);
    int code = get_status_code(auth_url, id, userpass);
    CHECK(code == 200 && strcmp(shown_status(), "UP") == 0, "auth: GET %d %s", code,
          shown_status());
    CHECK(get_status_code(auth_url, id, NULL) == 401, "the server really requires auth");
    CHECK_STATUS(registrar_client_stop(c, 5000), REGISTRAR_OK);
    CHECK(get_status_code(auth_url, id, userpass) == 404, "auth: gone after stop");
    registrar_client_free(c);

    /* Wrong password and no credentials: a clear error, no crash, no password in messages. */
    const char *wrong = "wrong-pw-never-printed";
    for (int variant = 0; variant < 2; variant++) {
        cfg = live_config(auth_url, variant ? "auth-none" : "auth-bad", id, sizeof id);
        if (variant == 0) {
            CHECK_STATUS(registrar_config_set(cfg, "user", "registrar"), REGISTRAR_OK);
            CHECK_STATUS(registrar_config_set(cfg, "password", wrong), REGISTRAR_OK);
        }
        c = NULL;
        CHECK_STATUS(registrar_client_new(cfg, &c), REGISTRAR_OK);
        registrar_config_free(cfg);
        CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
        CHECK_STATUS(registrar_client_wait_registered(c, 1500), REGISTRAR_ERR_TIMEOUT);
        const char *why = tu_last_error();
        CHECK(tu_contains(why, "401") && !tu_contains(why, wrong), "wait says: %s", why);
        CHECK_STATUS(registrar_client_get_info(c, &info), REGISTRAR_OK);
        CHECK(info.last_error == REGISTRAR_ERR_UNAUTHORIZED &&
                  info.state == REGISTRAR_STATE_REGISTERING,
              "last error %s", registrar_status_str((int32_t)info.last_error));
        CHECK_STATUS(registrar_client_last_error(c, buf, sizeof buf, &len), REGISTRAR_OK);
        CHECK(tu_contains(buf, variant ? "requires credentials" : "refused the credentials") &&
                  !tu_contains(buf, wrong),
              "last_error: %s", buf);
        CHECK_STATUS(registrar_client_stop(c, 5000), REGISTRAR_OK);
        registrar_client_free(c);
    }
}

int main(void) {
    tu_init();
    url = getenv("REGISTRAR_TEST_EUREKA_URL");
    auth_url = getenv("REGISTRAR_TEST_EUREKA_AUTH_URL");
    password = getenv("REGISTRAR_TEST_PASSWORD");
    if (!password || !*password) password = "s3cret-pw";
    if (!url || !*url) {
        fprintf(stderr, "test_live: REGISTRAR_TEST_EUREKA_URL is not set\n");
        return 2;
    }
    printf("test_live: registry %s%s%s\n", url, auth_url ? ", auth registry " : "",
           auth_url ? auth_url : "");
    /* A freshly started server (JIT, first requests) can take a second or more on its first
     * registration on a loaded machine: warm it up once before timing anything. */
    {
        char id[128];
        registrar_client *w = live_client("warmup", id, sizeof id);
        CHECK_STATUS(registrar_client_start(w), REGISTRAR_OK);
        CHECK_STATUS(registrar_client_wait_registered(w, 20000), REGISTRAR_OK);
        CHECK_STATUS(registrar_client_stop(w, 5000), REGISTRAR_OK);
        registrar_client_free(w);
    }
    test_lifecycle();
    test_free_without_stop();
    test_logger();
    test_stop_from_callback();
    test_threads();
    if (auth_url && *auth_url)
        test_auth();
    else
        printf("test_live: REGISTRAR_TEST_EUREKA_AUTH_URL not set: auth checks skipped\n");
    return tu_finish("test_live");
}
