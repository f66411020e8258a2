/*
 * Events through the C API against the real Eureka server (REGISTRAR_TEST_EUREKA_URL):
 * registrar_client_set_event_listener and registrar_discovery_set_event_listener.
 *
 *   - a client sees REGISTERED -> STATUS_CHANGED (host) -> STOPPED, in order, on one thread
 *     that is not the caller's, and nothing after stop returns; free_user_data runs once;
 *   - the instance deleted from the registry behind the client's back: REGISTRATION_LOST
 *     (cause NOT_FOUND, a reason) then REREGISTERED;
 *   - a failing health check that gives a reason (registrar_health_check_set_reason): the
 *     STATUS_CHANGED to DOWN (cause HEALTH_CHECK) carries it;
 *   - a discovery cache sees DISCOVERY_READY (version 1), then DISCOVERY_CHANGED when another
 *     instance registers, and nothing after stop returns;
 *   - NULL handles are refused.
 */
#include "testutil.h" /* first: it defines _GNU_SOURCE */

#include <pthread.h>

#define APP "C-EVENTS-TEST"
#define MAX_EVENTS 64

static const char *url;

typedef struct {
    pthread_mutex_t lock;
    int n;
    registrar_event_kind kinds[MAX_EVENTS];
    registrar_instance_status statuses[MAX_EVENTS];
    registrar_event_cause causes[MAX_EVENTS];
    registrar_status errors[MAX_EVENTS];
    uint64_t versions[MAX_EVENTS];
    char reasons[MAX_EVENTS][256];
    int has_reason[MAX_EVENTS];
    pthread_t thread;
    int threads_seen; /* 1 while every event came on the same thread */
    int returned;     /* set right after stop returned */
    int late;         /* events after that */
    int freed;
} recorder;

static void recorder_init(recorder *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
}

static void on_event(void *user_data, const registrar_event *event) {
    recorder *r = user_data;
    pthread_mutex_lock(&r->lock);
    if (r->returned) r->late++;
    if (r->n == 0) {
        r->thread = pthread_self();
        r->threads_seen = 1;
    } else if (!pthread_equal(r->thread, pthread_self())) {
        r->threads_seen = 2;
    }
    if (r->n < MAX_EVENTS) {
        int i = r->n;
        r->kinds[i] = event->kind;
        r->statuses[i] = event->status;
        r->causes[i] = event->cause;
        r->errors[i] = event->error;
        r->versions[i] = event->version;
        r->has_reason[i] = event->reason != NULL;
        if (event->reason) snprintf(r->reasons[i], sizeof r->reasons[i], "%s", event->reason);
    }
    r->n++;
    pthread_mutex_unlock(&r->lock);
}

static void on_free(void *user_data) {
    recorder *r = user_data;
    pthread_mutex_lock(&r->lock);
    r->freed++;
    pthread_mutex_unlock(&r->lock);
}

/* The index of the first event of `kind` at or after `from`, or -1. */
static int find(recorder *r, registrar_event_kind kind, int from) {
    pthread_mutex_lock(&r->lock);
    int found = -1;
    for (int i = from; i < r->n && i < MAX_EVENTS; i++) {
        if (r->kinds[i] == kind) {
            found = i;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return found;
}

static int wait_for(recorder *r, registrar_event_kind kind, int from, long timeout_ms) {
    double deadline = tu_now_ms() + (double)timeout_ms;
    int i;
    while ((i = find(r, kind, from)) < 0 && tu_now_ms() < deadline) tu_sleep_ms(20);
    return i;
}

static int count(recorder *r) {
    pthread_mutex_lock(&r->lock);
    int n = r->n;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static registrar_config *fast_config(const char *id) {
    registrar_config *cfg = NULL;
    CHECK_STATUS(registrar_config_new(&cfg), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_URL", url), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_APP_NAME", APP), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_INSTANCE_ID", id), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_HOSTNAME", "127.0.0.1"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_IP_ADDRESS", "127.0.0.1"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_HEARTBEAT_INTERVAL", "0.2"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_LEASE_DURATION", "5"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_TIMEOUT", "3"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_FETCH_INTERVAL", "0.2"), REGISTRAR_OK);
    return cfg;
}

static registrar_client *new_client(const char *tag, char *id, size_t id_len) {
    snprintf(id, id_len, "c-%ld-%s", (long)getpid(), tag);
    registrar_config *cfg = fast_config(id);
    registrar_client *c = NULL;
    CHECK_STATUS(registrar_client_new(cfg, &c), REGISTRAR_OK);
    registrar_config_free(cfg);
    return c;
}

static void test_client_order(void) {
    char id[128];
    static recorder r;
    recorder_init(&r);
    registrar_client *c = new_client("order", id, sizeof id);
    CHECK_STATUS(registrar_client_set_event_listener(c, on_event, &r, on_free), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 10000), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 10000), REGISTRAR_OK);
    tu_sleep_ms(400); /* heartbeats announce nothing */
    CHECK_STATUS(registrar_client_stop(c, 5000), REGISTRAR_OK);
    pthread_mutex_lock(&r.lock);
    r.returned = 1;
    pthread_mutex_unlock(&r.lock);

    CHECK(count(&r) == 3, "3 events, got %d", count(&r));
    CHECK(r.kinds[0] == REGISTRAR_EVENT_REGISTERED && r.statuses[0] == REGISTRAR_INSTANCE_STARTING,
          "first REGISTERED STARTING (kind %d status %d)", r.kinds[0], r.statuses[0]);
    CHECK(r.kinds[1] == REGISTRAR_EVENT_STATUS_CHANGED && r.statuses[1] == REGISTRAR_INSTANCE_UP &&
              r.causes[1] == REGISTRAR_CAUSE_HOST,
          "then STATUS_CHANGED UP by the host (kind %d status %d cause %d)", r.kinds[1],
          r.statuses[1], r.causes[1]);
    CHECK(r.kinds[2] == REGISTRAR_EVENT_STOPPED && r.errors[2] == REGISTRAR_OK && !r.has_reason[2],
          "last STOPPED, deregistered (kind %d error %d)", r.kinds[2], r.errors[2]);
    CHECK(r.threads_seen == 1 && !pthread_equal(r.thread, pthread_self()),
          "all on one background thread");
    tu_sleep_ms(400);
    CHECK(r.late == 0, "nothing after stop returned (%d late)", r.late);
    CHECK(r.freed == 0, "user data kept until free");
    registrar_client_free(c);
    CHECK(r.freed == 1, "free_user_data called once at free (%d)", r.freed);
}

static void test_lost_and_reregistered(void) {
    char id[128], path[256], body[4096];
    static recorder r;
    recorder_init(&r);
    registrar_client *c = new_client("lost", id, sizeof id);
    CHECK_STATUS(registrar_client_set_event_listener(c, on_event, &r, NULL), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 10000), REGISTRAR_OK);

    snprintf(path, sizeof path, "apps/%s/%s", APP, id);
    CHECK(tu_http("DELETE", url, path, NULL, body, sizeof body) == 200, "DELETE behind its back");
    int lost = wait_for(&r, REGISTRAR_EVENT_REGISTRATION_LOST, 0, 10000);
    CHECK(lost == 1, "REGISTRATION_LOST right after REGISTERED (index %d)", lost);
    if (lost >= 0) {
        CHECK(r.causes[lost] == REGISTRAR_CAUSE_NOT_FOUND && r.errors[lost] == REGISTRAR_ERR_NOT_FOUND,
              "cause NOT_FOUND (cause %d error %d)", r.causes[lost], r.errors[lost]);
        CHECK(r.has_reason[lost] && tu_contains(r.reasons[lost], "does not know this instance"),
              "with the reason '%s'", r.reasons[lost]);
        CHECK(r.statuses[lost] == REGISTRAR_INSTANCE_UP, "the status it held");
    }
    int back = wait_for(&r, REGISTRAR_EVENT_REREGISTERED, 0, 10000);
    CHECK(back == 2 && r.statuses[back] == REGISTRAR_INSTANCE_UP, "then REREGISTERED UP (%d)", back);
    CHECK(tu_get_instance(url, APP, id, NULL, body, sizeof body) == 200, "listed again");
    CHECK_STATUS(registrar_client_stop(c, 5000), REGISTRAR_OK);
    CHECK(count(&r) == 4 && r.kinds[3] == REGISTRAR_EVENT_STOPPED, "STOPPED last (%d events)",
          count(&r));
    registrar_client_free(c);
}

/* Healthy until told otherwise; then fails and says why. */
static volatile int check_fails;
static int32_t reasoned_check(void *user_data) {
    (void)user_data;
    if (!__atomic_load_n(&check_fails, __ATOMIC_SEQ_CST)) return 1;
    registrar_health_check_set_reason("db unreachable");
    return 0;
}

static void test_health_check_reason(void) {
    char id[128];
    static recorder r;
    recorder_init(&r);
    snprintf(id, sizeof id, "c-%ld-health", (long)getpid());
    registrar_config *cfg = fast_config(id);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_HEALTH_INTERVAL", "0.2"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_HEALTH_THRESHOLD", "1"), REGISTRAR_OK);
    registrar_client *c = NULL;
    CHECK_STATUS(registrar_client_new(cfg, &c), REGISTRAR_OK);
    registrar_config_free(cfg);
    CHECK_STATUS(registrar_client_set_event_listener(c, on_event, &r, NULL), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_set_health_check(c, reasoned_check, NULL, NULL), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(c, 10000), REGISTRAR_OK);
    __atomic_store_n(&check_fails, 1, __ATOMIC_SEQ_CST);
    int down = wait_for(&r, REGISTRAR_EVENT_STATUS_CHANGED, 0, 10000);
    CHECK(down > 0, "STATUS_CHANGED when the check fails (%d)", down);
    if (down > 0) {
        CHECK(r.statuses[down] == REGISTRAR_INSTANCE_DOWN &&
                  r.causes[down] == REGISTRAR_CAUSE_HEALTH_CHECK,
              "DOWN by the health check (status %d cause %d)", r.statuses[down], r.causes[down]);
        CHECK(r.has_reason[down] &&
                  tu_contains(r.reasons[down], "the health check failed: db unreachable"),
              "with the check's reason: '%s'", r.reasons[down]);
    }
    char body[4096];
    double deadline = tu_now_ms() + 10000;
    while (!(tu_get_instance(url, APP, id, NULL, body, sizeof body) == 200 &&
             tu_contains(body, "\"DOWN\"")) &&
           tu_now_ms() < deadline)
        tu_sleep_ms(50);
    CHECK(tu_contains(body, "\"DOWN\""), "the registry shows DOWN");
    CHECK_STATUS(registrar_client_stop(c, 5000), REGISTRAR_OK);
    registrar_client_free(c);
}

static void test_discovery(void) {
    char id[128];
    static recorder r;
    recorder_init(&r);
    registrar_config *cfg = fast_config("c-events-discovery");
    registrar_discovery *d = NULL;
    CHECK_STATUS(registrar_discovery_new(cfg, &d), REGISTRAR_OK);
    registrar_config_free(cfg);
    CHECK_STATUS(registrar_discovery_set_event_listener(d, on_event, &r, on_free), REGISTRAR_OK);
    CHECK_STATUS(registrar_discovery_start(d), REGISTRAR_OK);
    CHECK_STATUS(registrar_discovery_wait_ready(d, 10000), REGISTRAR_OK);
    int ready = wait_for(&r, REGISTRAR_EVENT_DISCOVERY_READY, 0, 2000);
    CHECK(ready == 0 && r.versions[0] == 1 && r.statuses[0] == REGISTRAR_INSTANCE_UNKNOWN,
          "DISCOVERY_READY first, version 1 (index %d)", ready);

    registrar_client *other = new_client("other", id, sizeof id);
    CHECK_STATUS(registrar_client_set_status(other, REGISTRAR_INSTANCE_UP), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_start(other), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_wait_registered(other, 10000), REGISTRAR_OK);
    int changed = wait_for(&r, REGISTRAR_EVENT_DISCOVERY_CHANGED, 0, 10000);
    CHECK(changed > 0 && r.versions[changed] >= 2, "DISCOVERY_CHANGED when another registers (%d)",
          changed);

    CHECK_STATUS(registrar_discovery_stop(d, 5000), REGISTRAR_OK);
    pthread_mutex_lock(&r.lock);
    r.returned = 1;
    pthread_mutex_unlock(&r.lock);
    CHECK_STATUS(registrar_client_stop(other, 5000), REGISTRAR_OK); /* a change nobody hears */
    registrar_client_free(other);
    tu_sleep_ms(500);
    CHECK(r.late == 0, "nothing after the discovery stop returned (%d late)", r.late);
    CHECK(find(&r, REGISTRAR_EVENT_DISCOVERY_FETCH_FAILING, 0) < 0, "no fetch failure");
    registrar_discovery_free(d);
    CHECK(r.freed == 1, "free_user_data once (%d)", r.freed);
}

static void test_null(void) {
    CHECK_STATUS(registrar_client_set_event_listener(NULL, on_event, NULL, NULL),
                 REGISTRAR_ERR_NULL_ARGUMENT);
    CHECK_STATUS(registrar_discovery_set_event_listener(NULL, on_event, NULL, NULL),
                 REGISTRAR_ERR_NULL_ARGUMENT);
}

int main(void) {
    tu_init();
    url = getenv("REGISTRAR_TEST_EUREKA_URL");
    if (!url || !*url) {
        fprintf(stderr, "test_events: REGISTRAR_TEST_EUREKA_URL is not set\n");
        return 2;
    }
    printf("test_events: registry %s\n", url);
    test_null();
    test_client_order();
    test_lost_and_reregistered();
    test_health_check_reason();
    test_discovery();
    return tu_finish("test_events");
}
