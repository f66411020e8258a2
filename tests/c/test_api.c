/*
 * The C API without a registry: misuse (NULL for every pointer argument, invalid UTF-8,
 * unknown settings, bad values, invalid enum ints), the last-error buffer, status names,
 * lifecycle corner cases (stop before start, double stop, free without stop, free(NULL)),
 * log callbacks against an unreachable registry, health check reasons given wrongly, and fork().
 *
 * The "registry" here is a closed loopback port, so requests fail at once (connection refused)
 * and nothing leaves the machine. Exit code 0 when every check passed.
 */
#include "testutil.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

/* Nobody listens on port 1 of loopback (it would need a privileged listener). */
#define CLOSED_URL "http://127.0.0.1:1/eureka/"
#define PASSWORD "hunter2-never-printed"

/* A config that validates: only explicit settings, nothing from the environment. */
static registrar_config *good_config(const char *app) {
    registrar_config *cfg = NULL;
    CHECK_STATUS(registrar_config_new(&cfg), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "url", CLOSED_URL), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "app_name", app), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "ip_address", "127.0.0.1"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "hostname", "c-test-host"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "timeout", "2"), REGISTRAR_OK);
    return cfg;
}

static registrar_client *good_client(const char *app) {
    registrar_config *cfg = good_config(app);
    registrar_client *client = NULL;
    CHECK_STATUS(registrar_client_new(cfg, &client), REGISTRAR_OK);
    registrar_config_free(cfg);
    CHECK(client != NULL, "client created");
    return client;
}

/* ---- version, status names -------------------------------------------------------------- */

static void test_version_and_status_names(void) {
    CHECK(strcmp(registrar_version(), REGISTRAR_VERSION) == 0, "version %s == header %s",
          registrar_version(), REGISTRAR_VERSION);
    CHECK(registrar_abi_version() == REGISTRAR_ABI_VERSION, "ABI %u", registrar_abi_version());

    static const char *names[] = {
        "REGISTRAR_OK",
        "REGISTRAR_ERR_NULL_ARGUMENT",
        "REGISTRAR_ERR_INVALID_UTF8",
        "REGISTRAR_ERR_INVALID_CONFIG",
        "REGISTRAR_ERR_INVALID_ARGUMENT",
        "REGISTRAR_ERR_TRANSPORT",
        "REGISTRAR_ERR_TIMEOUT",
        "REGISTRAR_ERR_UNAUTHORIZED",
        "REGISTRAR_ERR_NOT_FOUND",
        "REGISTRAR_ERR_REJECTED",
        "REGISTRAR_ERR_SHUT_DOWN",
        "REGISTRAR_ERR_FORKED",
        "REGISTRAR_ERR_PANIC",
    };
    /* The enum values in the header are the numbers the names describe. */
    CHECK(REGISTRAR_ERR_PANIC == 12 && REGISTRAR_ERR_NULL_ARGUMENT == 1, "stable numbers");
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
        const char *s = registrar_status_str(i);
        CHECK(s && strcmp(s, names[i]) == 0, "status_str(%d) = %s", i, s ? s : "(null)");
        /* Static: the same pointer every time. */
        CHECK(s == registrar_status_str(i), "status_str(%d) is static", i);
    }
    const int32_t bad[] = {-1, 13, 14, 100, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *s = registrar_status_str(bad[i]);
        CHECK(s && strcmp(s, "REGISTRAR_UNKNOWN_STATUS") == 0, "status_str(%" PRId32 ") = %s",
              bad[i], s ? s : "(null)");
    }
}

/* ---- NULL arguments --------------------------------------------------------------------- */

/* Checks a call returned NULL_ARGUMENT with a message naming the function and the argument. */
#define CHECK_NULL_ARG(call, function, argument)                                               \
    do {                                                                                       \
        registrar_status st_ = (call);                                                         \
        const char *m_ = tu_last_error();                                                      \
        CHECK(st_ == REGISTRAR_ERR_NULL_ARGUMENT && tu_contains(m_, function) &&               \
                  tu_contains(m_, "'" argument "'"),                                           \
              "%s -> %s '%s'", #call, registrar_status_str((int32_t)st_), m_);                 \
    } while (0)

static void test_null_arguments(void) {
    registrar_client *client = good_client("c-null");
    registrar_config *cfg = good_config("c-null");
    char buf[64];
    size_t len = 0;
    registrar_client_info info;

    CHECK_NULL_ARG(registrar_config_new(NULL), "registrar_config_new", "out");
    CHECK_NULL_ARG(registrar_config_from_env(NULL), "registrar_config_from_env", "out");
    CHECK_NULL_ARG(registrar_config_set(NULL, "url", "x"), "registrar_config_set", "config");
    CHECK_NULL_ARG(registrar_config_set(cfg, NULL, "x"), "registrar_config_set", "key");
    CHECK_NULL_ARG(registrar_config_validate(NULL), "registrar_config_validate", "config");

    registrar_client *sentinel = (registrar_client *)&len; /* never dereferenced */
    registrar_client *out = sentinel;
    CHECK_NULL_ARG(registrar_client_new(NULL, &out), "registrar_client_new", "config");
    CHECK(out == sentinel, "out untouched on failure");
    CHECK_NULL_ARG(registrar_client_new(cfg, NULL), "registrar_client_new", "out");

    CHECK_NULL_ARG(registrar_client_set_logger(NULL, NULL, NULL, NULL, REGISTRAR_LOG_INFO),
                   "registrar_client_set_logger", "client");
    CHECK_NULL_ARG(registrar_client_start(NULL), "registrar_client_start", "client");
    CHECK_NULL_ARG(registrar_client_wait_registered(NULL, 10), "registrar_client_wait_registered",
                   "client");
    CHECK_NULL_ARG(registrar_client_set_status(NULL, REGISTRAR_INSTANCE_UP),
                   "registrar_client_set_status", "client");
    CHECK_NULL_ARG(registrar_client_set_metadata(NULL, "k", "v"), "registrar_client_set_metadata",
                   "client");
    CHECK_NULL_ARG(registrar_client_set_metadata(client, NULL, "v"),
                   "registrar_client_set_metadata", "key");
    CHECK_NULL_ARG(registrar_client_get_metadata(NULL, "k", buf, sizeof buf, &len),
                   "registrar_client_get_metadata", "client");
    CHECK_NULL_ARG(registrar_client_get_metadata(client, NULL, buf, sizeof buf, &len),
                   "registrar_client_get_metadata", "key");
    CHECK_STATUS(registrar_client_set_metadata(client, "k", "v"), REGISTRAR_OK);
    CHECK_NULL_ARG(registrar_client_get_metadata(client, "k", buf, sizeof buf, NULL),
                   "registrar_client_get_metadata", "out_len");
    CHECK_NULL_ARG(registrar_client_get_info(NULL, &info), "registrar_client_get_info", "client");
    CHECK_NULL_ARG(registrar_client_get_info(client, NULL), "registrar_client_get_info", "out");
    CHECK_NULL_ARG(registrar_client_last_error(NULL, buf, sizeof buf, &len),
                   "registrar_client_last_error", "client");
    CHECK_NULL_ARG(registrar_client_last_error(client, buf, sizeof buf, NULL),
                   "registrar_client_last_error", "out_len");
    CHECK_NULL_ARG(registrar_client_instance_id(NULL, buf, sizeof buf, &len),
                   "registrar_client_instance_id", "client");
    CHECK_NULL_ARG(registrar_client_instance_id(client, buf, sizeof buf, NULL),
                   "registrar_client_instance_id", "out_len");
    CHECK_NULL_ARG(registrar_client_app_name(NULL, buf, sizeof buf, &len),
                   "registrar_client_app_name", "client");
    CHECK_NULL_ARG(registrar_client_app_name(client, buf, sizeof buf, NULL),
                   "registrar_client_app_name", "out_len");
    CHECK_NULL_ARG(registrar_client_stop(NULL, 100), "registrar_client_stop", "client");

    /* NULLs that are allowed: value (removes), buf with buf_len 0 (asks for the length),
     * callback (removes the logger), user data. */
    CHECK_STATUS(registrar_config_set(cfg, "metadata", NULL), REGISTRAR_OK);
    len = 0;
    CHECK_STATUS(registrar_client_app_name(client, NULL, 0, &len), REGISTRAR_OK);
    CHECK(len == strlen("C-NULL"), "length query: %zu", len);
    len = 0;
    CHECK_STATUS(registrar_client_instance_id(client, NULL, 0, &len), REGISTRAR_OK);
    CHECK(len == strlen("c-test-host:c-null:8080"), "instance id length %zu", len);
    CHECK_STATUS(registrar_client_set_logger(client, NULL, NULL, NULL, REGISTRAR_LOG_DEBUG),
                 REGISTRAR_OK);
    CHECK_STATUS(registrar_client_set_metadata(client, "k", NULL), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_get_metadata(client, "k", buf, sizeof buf, &len),
                 REGISTRAR_ERR_NOT_FOUND);
    CHECK(tu_contains(tu_last_error(), "'k'"), "not found names the key: %s", tu_last_error());
    CHECK(registrar_last_error_message(NULL, 0) > 0, "length query of the last error");

    /* free(NULL) is a no-op for both handle types. */
    registrar_client_free(NULL);
    registrar_config_free(NULL);
    CHECK(1, "free(NULL) returned");

    registrar_config_free(cfg);
    registrar_client_free(client);
}

/* ---- invalid UTF-8 ----------------------------------------------------------------------- */

static void test_invalid_utf8(void) {
    registrar_config *cfg = good_config("c-utf8");
    registrar_client *client = good_client("c-utf8");
    char buf[32];
    size_t len;
    const char *bad[] = {"\xff", "ok\xc3\x28", "\xe2\x82", "\xed\xa0\x80" /* surrogate */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STATUS(registrar_config_set(cfg, bad[i], "x"), REGISTRAR_ERR_INVALID_UTF8);
        CHECK(tu_contains(tu_last_error(), "'key'"), "names the argument: %s", tu_last_error());
        CHECK_STATUS(registrar_config_set(cfg, "app_name", bad[i]), REGISTRAR_ERR_INVALID_UTF8);
        CHECK(tu_contains(tu_last_error(), "'value'"), "names the argument: %s", tu_last_error());
        CHECK_STATUS(registrar_client_set_metadata(client, bad[i], "v"),
                     REGISTRAR_ERR_INVALID_UTF8);
        CHECK_STATUS(registrar_client_set_metadata(client, "k", bad[i]),
                     REGISTRAR_ERR_INVALID_UTF8);
        CHECK_STATUS(registrar_client_get_metadata(client, bad[i], buf, sizeof buf, &len),
                     REGISTRAR_ERR_INVALID_UTF8);
    }
    /* Valid multi-byte UTF-8 is fine. */
    CHECK_STATUS(registrar_client_set_metadata(client, "city", "Z\xc3\xbcrich \xe2\x82\xac"),
                 REGISTRAR_OK);
    CHECK_STATUS(registrar_client_get_metadata(client, "city", buf, sizeof buf, &len),
                 REGISTRAR_OK);
    CHECK(strcmp(buf, "Z\xc3\xbcrich \xe2\x82\xac") == 0 && len == strlen(buf), "utf-8 kept");
    /* The failed sets changed nothing: the config still validates. */
    CHECK_STATUS(registrar_config_validate(cfg), REGISTRAR_OK);
    registrar_config_free(cfg);
    registrar_client_free(client);
}

/* ---- settings ---------------------------------------------------------------------------- */

struct bad_value {
    const char *key, *value, *must_name;
};

/* REGISTRY_URL values that leaked the password before the one core redaction (issue 9):
 * unencoded '/', '#', '?', '@', ',' in the password, no scheme, several URLs. The password is
 * "Xy7q<sep>Zw9k"; neither half may appear in the validation message or the description. */
static void test_malformed_urls_never_show_the_password(void) {
    const char *urls[] = {
        "http://user:Xy7q/Zw9k@127.0.0.1:8761/eureka/",
        "http://user:Xy7q#Zw9k@127.0.0.1:8761/eureka/",
        "http://user:Xy7q?Zw9k@127.0.0.1:8761/eureka/",
        "http://user:Xy7q@Zw9k@127.0.0.1:8761/eureka/",
        "http://user:Xy7q,Zw9k@127.0.0.1:8761/eureka/",
        "user:Xy7qZw9k@127.0.0.1:8761/eureka/",
        "http://ok:1/eureka/,http://user:Xy7q/Zw9k@127.0.0.1:8761/eureka/",
        "http://user:Xy7qZw9k@a:1/eureka/, user:Xy7qZw9k@b:2/eureka/",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        registrar_config *cfg = good_config("c-redaction");
        CHECK_STATUS(registrar_config_set(cfg, "url", urls[i]), REGISTRAR_OK);
        /* A bad port too, so even the URLs that parse fail validation. */
        CHECK_STATUS(registrar_config_set(cfg, "port", "x"), REGISTRAR_OK);
        CHECK_STATUS(registrar_config_validate(cfg), REGISTRAR_ERR_INVALID_CONFIG);
        const char *msg = tu_last_error();
        CHECK(!tu_contains(msg, "Xy7q") && !tu_contains(msg, "Zw9k"), "%s: message '%s'", urls[i],
              msg);
        char desc[1024];
        size_t len = 0;
        CHECK_STATUS(registrar_config_describe(cfg, desc, sizeof desc, &len), REGISTRAR_OK);
        CHECK(len == strlen(desc) && tu_contains(desc, "REGISTRY_URL='") &&
                  tu_contains(desc, "REGISTRY_PORT='x'") && !tu_contains(desc, "Xy7q") &&
                  !tu_contains(desc, "Zw9k"),
              "%s: description '%s'", urls[i], desc);
        registrar_config_free(cfg);
    }
    /* The password setting itself, and snprintf semantics of describe. */
    registrar_config *cfg = good_config("c-redaction");
    CHECK_STATUS(registrar_config_set(cfg, "user", "u"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "password", PASSWORD), REGISTRAR_OK);
    size_t need = 0;
    CHECK_STATUS(registrar_config_describe(cfg, NULL, 0, &need), REGISTRAR_OK);
    char small[8];
    size_t len = 0;
    CHECK_STATUS(registrar_config_describe(cfg, small, sizeof small, &len), REGISTRAR_OK);
    CHECK(len == need && need > sizeof small && strlen(small) == sizeof small - 1,
          "describe is snprintf-style: need %zu, got '%s'", need, small);
    char *full = malloc(need + 1);
    CHECK_STATUS(registrar_config_describe(cfg, full, need + 1, &len), REGISTRAR_OK);
    CHECK(strlen(full) == need && tu_contains(full, "REGISTRY_PASSWORD='***'") &&
              !tu_contains(full, PASSWORD),
          "description hides the password: %s", full);
    free(full);
    CHECK_STATUS(registrar_config_describe(NULL, small, sizeof small, &len),
                 REGISTRAR_ERR_NULL_ARGUMENT);
    CHECK_STATUS(registrar_config_describe(cfg, small, sizeof small, NULL),
                 REGISTRAR_ERR_NULL_ARGUMENT);
    registrar_config_free(cfg);
}

/* One message names every mistake, and a huge value does not make a huge message. */
static void test_every_mistake_at_once(void) {
    registrar_config *cfg = good_config("c-settings");
    CHECK_STATUS(registrar_config_set(cfg, "type", "consul"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "port", "eighty"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_validate(cfg), REGISTRAR_ERR_INVALID_CONFIG);
    CHECK(tu_contains(tu_last_error(), "REGISTRY_TYPE 'consul'") &&
              tu_contains(tu_last_error(), "REGISTRY_PORT 'eighty'"),
          "both mistakes: %s", tu_last_error());
    registrar_config_free(cfg);

    size_t huge_len = 1 << 20;
    char *huge = malloc(huge_len + 1);
    memset(huge, 'a', huge_len);
    huge[huge_len] = 0;
    cfg = good_config("c-settings");
    CHECK_STATUS(registrar_config_set(cfg, "app_name", huge), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_validate(cfg), REGISTRAR_ERR_INVALID_CONFIG);
    size_t msg_len = registrar_last_error_message(NULL, 0);
    CHECK(msg_len < 1000 && tu_contains(tu_last_error(), "REGISTRY_APP_NAME"),
          "1 MB app name: %zu-byte message '%s'", msg_len, tu_last_error());
    registrar_config_free(cfg);
    free(huge);
}

static void test_settings(void) {
    registrar_config *cfg = good_config("c-settings");

    /* Unknown keys are refused at once, and the message lists the known ones. */
    CHECK_STATUS(registrar_config_set(cfg, "no_such_setting", "x"), REGISTRAR_ERR_INVALID_CONFIG);
    CHECK(tu_contains(tu_last_error(), "no_such_setting") &&
              tu_contains(tu_last_error(), "REGISTRY_URL"),
          "unknown setting message: %s", tu_last_error());
    CHECK_STATUS(registrar_config_set(cfg, "", "x"), REGISTRAR_ERR_INVALID_CONFIG);
    CHECK_STATUS(registrar_config_set(cfg, "REGISTRY_", "x"), REGISTRAR_ERR_INVALID_CONFIG);
    /* Key spellings: any case, prefix optional. */
    const char *spellings[] = {"REGISTRY_PORT", "registry_port", "port", "Port", "rEgIsTrY_pOrT"};
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++)
        CHECK_STATUS(registrar_config_set(cfg, spellings[i], "8081"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_validate(cfg), REGISTRAR_OK);

    /* The library's list of settings: static strings, every name accepted as a key. */
    size_t count = registrar_setting_count();
    CHECK(count >= 20, "at least the 20 first settings: %zu", count);
    for (size_t i = 0; i < count; i++) {
        const char *name = registrar_setting_name(i), *description = registrar_setting_description(i);
        CHECK(name && strncmp(name, "REGISTRY_", 9) == 0 && description && *description,
              "setting %zu: %s: %s", i, name ? name : "(null)", description ? description : "(null)");
        CHECK(name == registrar_setting_name(i), "setting name %zu is static", i);
        if (name) CHECK_STATUS(registrar_config_set(cfg, name, NULL), REGISTRAR_OK);
    }
    CHECK(registrar_setting_name(count) == NULL && registrar_setting_description(count) == NULL &&
              registrar_setting_name(SIZE_MAX) == NULL,
          "out of range: NULL");
    registrar_config_free(cfg);

    /* Each bad value: validate and client_new both refuse it with a message naming the
     * variable; out stays untouched. */
    const struct bad_value cases[] = {
        {"url", NULL, "REGISTRY_URL"},
        {"url", "not a url", "REGISTRY_URL"},
        {"url", "ftp://127.0.0.1/eureka/", "REGISTRY_URL"},
        {"url", "http://127.0.0.1:8761/eureka/,,http://127.0.0.1:8762/eureka/", "REGISTRY_URL"},
        {"app_name", NULL, "REGISTRY_APP_NAME"},
        {"app_name", "has/slash", "REGISTRY_APP_NAME"},
        {"app_name", "has space", "REGISTRY_APP_NAME"},
        {"type", "CONSUL", "NETFLIX_EUREKA"},
        {"type", "CONSUL", "REGISTRY_TYPE"},
        {"port", "abc", "REGISTRY_PORT"},
        {"port", "0", "REGISTRY_PORT"},
        {"port", "70000", "REGISTRY_PORT"},
        {"port", "-1", "REGISTRY_PORT"},
        {"secure_port", "https", "REGISTRY_SECURE_PORT"},
        {"ip_address", "999.1.1.1", "REGISTRY_IP_ADDRESS"},
        {"instance_id", "a/b", "REGISTRY_INSTANCE_ID"},
        {"metadata", "novalue", "REGISTRY_METADATA"},
        {"metadata", "1bad=x", "REGISTRY_METADATA"},
        {"heartbeat_interval", "soon", "REGISTRY_HEARTBEAT_INTERVAL"},
        {"heartbeat_interval", "-5", "REGISTRY_HEARTBEAT_INTERVAL"},
        {"heartbeat_interval", "100", "REGISTRY_LEASE_DURATION"}, /* >= default lease 90 */
        {"lease_duration", "0", "REGISTRY_LEASE_DURATION"},
        {"lease_duration", "1.5", "REGISTRY_LEASE_DURATION"},
        {"timeout", "never", "REGISTRY_TIMEOUT"},
        {"timeout", "0", "REGISTRY_TIMEOUT"},
        {"password", PASSWORD, "REGISTRY_USER"}, /* password without user */
        {"user", "a:b", "REGISTRY_USER"},
        /* Names a URL parser would rewrite (issue 9): dot segments and what smuggles one in. */
        {"app_name", ".", "REGISTRY_APP_NAME"},
        {"app_name", "..", "REGISTRY_APP_NAME"},
        {"app_name", "%2e%2E", "REGISTRY_APP_NAME"},
        {"app_name", "a\\b", "REGISTRY_APP_NAME"},
        {"instance_id", ".", "REGISTRY_INSTANCE_ID"},
        {"instance_id", "..", "REGISTRY_INSTANCE_ID"},
        {"instance_id", "x;y", "REGISTRY_INSTANCE_ID"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cfg = good_config("c-settings");
        CHECK_STATUS(registrar_config_set(cfg, cases[i].key, cases[i].value), REGISTRAR_OK);
        registrar_status st = registrar_config_validate(cfg);
        char validate_msg[2048];
        snprintf(validate_msg, sizeof validate_msg, "%s", tu_last_error());
        CHECK(st == REGISTRAR_ERR_INVALID_CONFIG && tu_contains(validate_msg, cases[i].must_name),
              "%s=%s: validate -> %s '%s'", cases[i].key, cases[i].value ? cases[i].value : "(unset)",
              registrar_status_str((int32_t)st), validate_msg);
        registrar_client *sentinel = (registrar_client *)&st, *out = sentinel;
        st = registrar_client_new(cfg, &out);
        CHECK(st == REGISTRAR_ERR_INVALID_CONFIG && strcmp(tu_last_error(), validate_msg) == 0 &&
                  out == sentinel,
              "%s: client_new -> %s with the same message", cases[i].key,
              registrar_status_str((int32_t)st));
        CHECK(!tu_contains(validate_msg, PASSWORD), "no password in '%s'", validate_msg);
        registrar_config_free(cfg);
    }

    /* Passwords never appear, whether set as a setting or in the URL's user-info. */
    cfg = good_config("c-settings");
    CHECK_STATUS(registrar_config_set(cfg, "url", "http://user:" PASSWORD "@127.0.0.1:1/eureka/?x=1"),
                 REGISTRAR_OK);
    CHECK_STATUS(registrar_config_validate(cfg), REGISTRAR_ERR_INVALID_CONFIG);
    CHECK(tu_contains(tu_last_error(), "REGISTRY_URL") && !tu_contains(tu_last_error(), PASSWORD),
          "URL message hides the password: %s", tu_last_error());
    registrar_config_free(cfg);

    test_malformed_urls_never_show_the_password();
    test_every_mistake_at_once();

    /* Setting "" or NULL removes an explicit value again. */
    cfg = good_config("c-settings");
    CHECK_STATUS(registrar_config_set(cfg, "port", "nope"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_validate(cfg), REGISTRAR_ERR_INVALID_CONFIG);
    CHECK_STATUS(registrar_config_set(cfg, "port", ""), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_validate(cfg), REGISTRAR_OK);
    registrar_config_free(cfg);

    /* The environment: read by config_from_env (not by config_new); explicit values win. */
    setenv("REGISTRY_URL", CLOSED_URL, 1);
    setenv("REGISTRY_APP_NAME", "c-from-env", 1);
    setenv("REGISTRY_IP_ADDRESS", "127.0.0.1", 1);
    setenv("REGISTRY_PORT", "not-a-port", 1);
    CHECK_STATUS(registrar_config_from_env(&cfg), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_validate(cfg), REGISTRAR_ERR_INVALID_CONFIG);
    CHECK(tu_contains(tu_last_error(), "REGISTRY_PORT") &&
              tu_contains(tu_last_error(), "not-a-port"),
          "env value named: %s", tu_last_error());
    CHECK_STATUS(registrar_config_set(cfg, "port", "9090"), REGISTRAR_OK);
    registrar_client *client = NULL;
    CHECK_STATUS(registrar_client_new(cfg, &client), REGISTRAR_OK);
    registrar_config_free(cfg); /* the client copied what it needs */
    char buf[128];
    size_t len = 0;
    CHECK_STATUS(registrar_client_app_name(client, buf, sizeof buf, &len), REGISTRAR_OK);
    CHECK(strcmp(buf, "C-FROM-ENV") == 0, "app name upper-cased: %s", buf);
    CHECK_STATUS(registrar_client_instance_id(client, buf, sizeof buf, &len), REGISTRAR_OK);
    CHECK(tu_contains(buf, ":c-from-env:9090"), "default instance id %s", buf);
    registrar_client_free(client);
    /* Read at creation time: later changes of the environment are not seen. */
    CHECK_STATUS(registrar_config_from_env(&cfg), REGISTRAR_OK);
    setenv("REGISTRY_PORT", "9091", 1);
    CHECK_STATUS(registrar_config_validate(cfg), REGISTRAR_ERR_INVALID_CONFIG);
    registrar_config_free(cfg);
    CHECK_STATUS(registrar_config_new(&cfg), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_validate(cfg), REGISTRAR_ERR_INVALID_CONFIG);
    CHECK(tu_contains(tu_last_error(), "REGISTRY_URL"), "config_new ignores the environment: %s",
          tu_last_error());
    registrar_config_free(cfg);
    unsetenv("REGISTRY_URL");
    unsetenv("REGISTRY_APP_NAME");
    unsetenv("REGISTRY_IP_ADDRESS");
    unsetenv("REGISTRY_PORT");
}

/* ---- last-error buffer ------------------------------------------------------------------- */

static void *other_thread(void *arg) {
    size_t *seen = arg;
    seen[0] = registrar_last_error_message(NULL, 0); /* nothing failed on this thread */
    registrar_config_set(NULL, "x", "y");
    seen[1] = registrar_last_error_message(NULL, 0);
    return NULL;
}

static void test_last_error_buffer(void) {
    CHECK_STATUS(registrar_config_validate(NULL), REGISTRAR_ERR_NULL_ARGUMENT);
    size_t full = registrar_last_error_message(NULL, 0);
    char whole[512];
    size_t again = registrar_last_error_message(whole, sizeof whole);
    CHECK(full > 10 && again == full && strlen(whole) == full, "full length %zu, copy %zu", full,
          again);

    /* Truncation: at most buf_len - 1 bytes plus NUL; the return value is still the full length. */
    char small[8];
    memset(small, 'X', sizeof small);
    size_t n = registrar_last_error_message(small, 5);
    CHECK(n == full, "truncated call returns the full length (%zu)", n);
    CHECK(small[4] == 0 && strlen(small) == 4 && strncmp(small, whole, 4) == 0,
          "4 bytes + NUL: '%s'", small);
    CHECK(small[5] == 'X' && small[7] == 'X', "nothing written past buf_len");
    memset(small, 'X', sizeof small);
    n = registrar_last_error_message(small, 1);
    CHECK(n == full && small[0] == 0 && small[1] == 'X', "buf_len 1: just the NUL");
    memset(small, 'X', sizeof small);
    n = registrar_last_error_message(small, 0);
    CHECK(n == full && small[0] == 'X', "buf_len 0: nothing written");
    char exact[512];
    n = registrar_last_error_message(exact, full + 1);
    CHECK(n == full && strcmp(exact, whole) == 0, "buf_len = length + 1 fits exactly");
    n = registrar_last_error_message(exact, full);
    CHECK(n == full && strlen(exact) == full - 1, "buf_len = length truncates by one");
    /* Reading does not clear it. */
    CHECK(registrar_last_error_message(NULL, 0) == full, "reading keeps the message");

    /* Thread-local: another thread sees only its own failures. */
    size_t seen[2] = {99, 0};
    pthread_t t;
    pthread_create(&t, NULL, other_thread, seen);
    pthread_join(t, NULL);
    CHECK(seen[0] == 0 && seen[1] > 0, "other thread: %zu then %zu", seen[0], seen[1]);
    CHECK(registrar_last_error_message(NULL, 0) == full, "this thread's message kept");

    /* A successful fallible call clears it. */
    registrar_config *cfg = NULL;
    CHECK_STATUS(registrar_config_new(&cfg), REGISTRAR_OK);
    memset(small, 'X', sizeof small);
    n = registrar_last_error_message(small, sizeof small);
    CHECK(n == 0 && small[0] == 0, "cleared by success (%zu)", n);
    registrar_config_free(cfg);

    /* Output strings of the client follow the same snprintf rules. */
    registrar_client *client = good_client("c-trunc");
    size_t len = 0;
    memset(small, 'X', sizeof small);
    CHECK_STATUS(registrar_client_instance_id(client, small, 6, &len), REGISTRAR_OK);
    CHECK(len == strlen("c-test-host:c-trunc:8080") && strcmp(small, "c-tes") == 0 &&
              small[6] == 'X',
          "instance id truncated to '%s', full %zu", small, len);
    CHECK_STATUS(registrar_client_set_metadata(client, "key", "0123456789"), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_get_metadata(client, "key", small, sizeof small, &len),
                 REGISTRAR_OK);
    CHECK(len == 10 && strcmp(small, "0123456") == 0, "metadata truncated '%s' full %zu", small,
          len);
    CHECK_STATUS(registrar_client_last_error(client, small, sizeof small, &len), REGISTRAR_OK);
    CHECK(len == 0 && small[0] == 0, "no background error yet");
    registrar_client_free(client);
}

/* ---- lifecycle misuse ------------------------------------------------------------------- */

static int state_of(registrar_client *c) {
    registrar_client_info info;
    memset(&info, 0xff, sizeof info);
    if (registrar_client_get_info(c, &info) != REGISTRAR_OK) return -1;
    return (int)info.state;
}

static void test_lifecycle_misuse(void) {
    registrar_client_info info;

    /* Fresh client: not started, status STARTING, no counters. */
    registrar_client *c = good_client("c-life");
    CHECK_STATUS(registrar_client_get_info(c, &info), REGISTRAR_OK);
    CHECK(info.state == REGISTRAR_STATE_NOT_STARTED && info.status == REGISTRAR_INSTANCE_STARTING &&
              info.last_error == REGISTRAR_OK && info.registrations == 0 && info.heartbeats == 0 &&
              info.failed_requests == 0,
          "fresh info: state %d status %d", (int)info.state, (int)info.status);

    /* wait_registered before start times out and says why. */
    double t0 = tu_now_ms();
    CHECK_STATUS(registrar_client_wait_registered(c, 50), REGISTRAR_ERR_TIMEOUT);
    CHECK(tu_contains(tu_last_error(), "not been started"), "why: %s", tu_last_error());
    CHECK(tu_now_ms() - t0 < 1000, "bounded wait");

    /* set_status with invalid ints. */
    const int32_t bad[] = {-1, 5, 6, 100, INT32_MAX, INT32_MIN, REGISTRAR_INSTANCE_UNKNOWN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STATUS(registrar_client_set_status(c, bad[i]), REGISTRAR_ERR_INVALID_ARGUMENT);
        CHECK(strlen(tu_last_error()) > 0, "message for status %" PRId32 ": %s", bad[i],
              tu_last_error());
    }
    CHECK_STATUS(registrar_client_get_info(c, &info), REGISTRAR_OK);
    CHECK(info.status == REGISTRAR_INSTANCE_STARTING, "status unchanged by bad values");
    const int32_t good[] = {REGISTRAR_INSTANCE_UP, REGISTRAR_INSTANCE_DOWN,
                            REGISTRAR_INSTANCE_OUT_OF_SERVICE, REGISTRAR_INSTANCE_STARTING,
                            REGISTRAR_INSTANCE_UP};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK_STATUS(registrar_client_set_status(c, good[i]), REGISTRAR_OK);
        CHECK_STATUS(registrar_client_get_info(c, &info), REGISTRAR_OK);
        CHECK((int32_t)info.status == good[i], "status %d", (int)info.status);
    }
    /* Bad metadata keys and log levels. */
    CHECK_STATUS(registrar_client_set_metadata(c, "1abc", "v"), REGISTRAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(registrar_client_set_metadata(c, "", "v"), REGISTRAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(registrar_client_set_metadata(c, "a b", "v"), REGISTRAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(registrar_client_set_logger(c, NULL, NULL, NULL, -1),
                 REGISTRAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(registrar_client_set_logger(c, NULL, NULL, NULL, 4),
                 REGISTRAR_ERR_INVALID_ARGUMENT);

    /* Stop before start: just becomes stopped; everything afterwards says SHUT_DOWN. */
    t0 = tu_now_ms();
    CHECK_STATUS(registrar_client_stop(c, 1000), REGISTRAR_OK);
    CHECK(tu_now_ms() - t0 < 100, "stop of a never-started client is immediate");
    CHECK(state_of(c) == REGISTRAR_STATE_STOPPED, "stopped");
    CHECK_STATUS(registrar_client_stop(c, 1000), REGISTRAR_OK); /* double stop */
    CHECK_STATUS(registrar_client_stop(c, 0), REGISTRAR_OK);    /* triple, default timeout */
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_ERR_SHUT_DOWN);
    CHECK(strlen(tu_last_error()) > 0, "shut down message: %s", tu_last_error());
    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_ERR_SHUT_DOWN);
    CHECK_STATUS(registrar_client_set_metadata(c, "k", "v"), REGISTRAR_ERR_SHUT_DOWN);
    CHECK_STATUS(registrar_client_wait_registered(c, 10), REGISTRAR_ERR_SHUT_DOWN);
    CHECK(state_of(c) == REGISTRAR_STATE_STOPPED, "still stopped");
    /* Reads still work on a stopped client. */
    char buf[64];
    size_t len;
    CHECK_STATUS(registrar_client_app_name(c, buf, sizeof buf, &len), REGISTRAR_OK);
    registrar_client_free(c);

    /* Free without stop, never started. */
    c = good_client("c-life");
    t0 = tu_now_ms();
    registrar_client_free(c);
    CHECK(tu_now_ms() - t0 < 100, "free of a never-started client is immediate");

    /* Start against an unreachable registry: start returns at once, the worker retries, the
     * waiter learns why, and stop/free stay bounded. */
    c = good_client("c-life");
    CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_OK);
    t0 = tu_now_ms();
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    CHECK(tu_now_ms() - t0 < 100, "start returns at once (%.1f ms)", tu_now_ms() - t0);
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK); /* again: no-op */
    CHECK_STATUS(registrar_client_wait_registered(c, 700), REGISTRAR_ERR_TIMEOUT);
    CHECK(tu_contains(tu_last_error(), "unreachable"), "wait says why: %s", tu_last_error());
    CHECK_STATUS(registrar_client_get_info(c, &info), REGISTRAR_OK);
    CHECK(info.state == REGISTRAR_STATE_REGISTERING && info.last_error == REGISTRAR_ERR_TRANSPORT &&
              info.failed_requests >= 2 && info.registrations == 0,
          "registering, TRANSPORT, %llu failures", (unsigned long long)info.failed_requests);
    char why[512];
    CHECK_STATUS(registrar_client_last_error(c, why, sizeof why, &len), REGISTRAR_OK);
    CHECK(tu_contains(why, "registry unreachable") && tu_contains(why, "127.0.0.1:1") &&
              len == strlen(why),
          "last_error: %s", why);
    /* A small buffer gets the same message truncated. */
    CHECK_STATUS(registrar_client_last_error(c, buf, 10, &len), REGISTRAR_OK);
    CHECK(len == strlen(why) && strlen(buf) == 9, "client last_error truncation");
    t0 = tu_now_ms();
    CHECK_STATUS(registrar_client_stop(c, 3000), REGISTRAR_OK);
    CHECK(tu_now_ms() - t0 < 2500, "stop bounded (%.1f ms)", tu_now_ms() - t0);
    CHECK_STATUS(registrar_client_stop(c, 3000), REGISTRAR_OK);
    registrar_client_free(c);

    /* Free without stop of a running client (stops first, bounded by REGISTRY_TIMEOUT = 2 s). */
    c = good_client("c-life");
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    tu_sleep_ms(150);
    t0 = tu_now_ms();
    registrar_client_free(c);
    CHECK(tu_now_ms() - t0 < 2500, "free of a running client bounded (%.1f ms)",
          tu_now_ms() - t0);
}

/* ---- log callbacks ----------------------------------------------------------------------- */

struct log_sink {
    int calls;
    int warn_calls;
    int frees;
    int calls_after_free;
    pthread_t main_thread;
    int on_main_thread;
    char last[512];
    pthread_mutex_t lock;
};

static void sink_log(void *user_data, int32_t level, const char *message) {
    struct log_sink *s = user_data;
    pthread_mutex_lock(&s->lock);
    s->calls++;
    if (level == REGISTRAR_LOG_WARN) s->warn_calls++;
    if (s->frees) s->calls_after_free++;
    if (pthread_equal(pthread_self(), s->main_thread)) s->on_main_thread++;
    snprintf(s->last, sizeof s->last, "%s", message ? message : "(null)");
    pthread_mutex_unlock(&s->lock);
}

static void sink_free(void *user_data) {
    struct log_sink *s = user_data;
    pthread_mutex_lock(&s->lock);
    s->frees++;
    pthread_mutex_unlock(&s->lock);
}

static void sink_init(struct log_sink *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->main_thread = pthread_self();
}

static void test_log_callbacks(void) {
    struct log_sink a, b;
    sink_init(&a);
    sink_init(&b);

    /* A refused set_logger neither installs the callback nor frees the user data. */
    registrar_client *c = good_client("c-log");
    CHECK_STATUS(registrar_client_set_logger(c, sink_log, &a, sink_free, 99),
                 REGISTRAR_ERR_INVALID_ARGUMENT);
    CHECK(a.frees == 0, "not freed on error");

    /* Replacing a logger frees the old user data once; removing frees the new one. */
    CHECK_STATUS(registrar_client_set_logger(c, sink_log, &a, sink_free, REGISTRAR_LOG_DEBUG),
                 REGISTRAR_OK);
    CHECK_STATUS(registrar_client_set_logger(c, sink_log, &b, sink_free, REGISTRAR_LOG_WARN),
                 REGISTRAR_OK);
    CHECK(a.frees == 1 && b.frees == 0, "replaced: a freed %d, b freed %d", a.frees, b.frees);
    CHECK_STATUS(registrar_client_set_logger(c, NULL, NULL, NULL, REGISTRAR_LOG_WARN),
                 REGISTRAR_OK);
    CHECK(a.frees == 1 && b.frees == 1, "removed: b freed %d", b.frees);
    CHECK(a.calls == 0 && b.calls == 0, "nothing logged before start");
    registrar_client_free(c);
    CHECK(a.frees == 1 && b.frees == 1, "freeing the client frees nothing twice");

    /* Against an unreachable registry: a failure is logged once per distinct problem, on the
     * background thread, and the user data is freed exactly once, after the last call. */
    sink_init(&a);
    c = good_client("c-log");
    CHECK_STATUS(registrar_client_set_logger(c, sink_log, &a, sink_free, REGISTRAR_LOG_DEBUG),
                 REGISTRAR_OK);
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK);
    tu_sleep_ms(1600); /* backoff 100+200+400+800 ms: about 4-5 attempts */
    registrar_client_info info;
    CHECK_STATUS(registrar_client_get_info(c, &info), REGISTRAR_OK);
    pthread_mutex_lock(&a.lock);
    CHECK(info.failed_requests >= 3 && a.warn_calls == 1,
          "%llu failed attempts logged %d time(s) at WARN: %s",
          (unsigned long long)info.failed_requests, a.warn_calls, a.last);
    CHECK(tu_contains(a.last, "unreachable"), "log says why: %s", a.last);
    CHECK(a.on_main_thread == 0, "callback runs on the background thread");
    pthread_mutex_unlock(&a.lock);
    CHECK_STATUS(registrar_client_stop(c, 2000), REGISTRAR_OK);
    pthread_mutex_lock(&a.lock);
    int calls_at_stop = a.calls;
    pthread_mutex_unlock(&a.lock);
    tu_sleep_ms(200);
    pthread_mutex_lock(&a.lock);
    CHECK(a.calls == calls_at_stop, "no call after stop returned");
    pthread_mutex_unlock(&a.lock);
    registrar_client_free(c);
    CHECK(a.frees == 1 && a.calls_after_free == 0, "freed once (%d), no calls after (%d)",
          a.frees, a.calls_after_free);
    pthread_mutex_destroy(&a.lock);
    pthread_mutex_destroy(&b.lock);
}

/* ---- fork --------------------------------------------------------------------------------- */

/* ---- health checks: ownership of user_data, and the settings validated by the library ---- */
static int health_freed[3];
static int32_t always_healthy(void *user_data) {
    (void)user_data;
    return 1;
}
static void count_health_free(void *user_data) { health_freed[*(int *)user_data]++; }

static void test_health_check_misuse(void) {
    static int ids[3] = {0, 1, 2};
    CHECK_STATUS(registrar_client_set_health_check(NULL, always_healthy, &ids[0], count_health_free),
                 REGISTRAR_ERR_NULL_ARGUMENT);
    CHECK(health_freed[0] == 0, "refused: user data not freed (%d)", health_freed[0]);

    registrar_client *client = good_client("c-health");
    CHECK_STATUS(registrar_client_set_health_check(client, always_healthy, &ids[0], count_health_free),
                 REGISTRAR_OK);
    /* Replaced: the first one's user data is freed at once (no call in progress). */
    CHECK_STATUS(registrar_client_set_health_check(client, always_healthy, &ids[1], count_health_free),
                 REGISTRAR_OK);
    CHECK(health_freed[0] == 1 && health_freed[1] == 0, "replaced: freed %d/%d", health_freed[0],
          health_freed[1]);
    CHECK_STATUS(registrar_client_stop(client, 100), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_set_health_check(client, always_healthy, &ids[2], count_health_free),
                 REGISTRAR_ERR_SHUT_DOWN);
    CHECK(health_freed[2] == 0, "refused after stop: not freed (%d)", health_freed[2]);
    registrar_client_free(client);
    CHECK(health_freed[1] == 1, "freed with the client (%d)", health_freed[1]);

    /* REGISTRY_HEALTH_URL and REGISTRY_DRAIN_SECONDS are validated when the client is made. */
    const char *bad[][2] = {{"health_url", "localhost:8080/health"},
                            {"health_interval", "often"},
                            {"health_threshold", "0"},
                            {"drain_seconds", "-1"}};
    const char *named[] = {"REGISTRY_HEALTH_URL", "REGISTRY_HEALTH_INTERVAL",
                           "REGISTRY_HEALTH_THRESHOLD", "REGISTRY_DRAIN_SECONDS"};
    for (size_t i = 0; i < 4; i++) {
        registrar_config *cfg = good_config("c-health-bad");
        CHECK_STATUS(registrar_config_set(cfg, bad[i][0], bad[i][1]), REGISTRAR_OK);
        registrar_client *none = NULL;
        CHECK_STATUS(registrar_client_new(cfg, &none), REGISTRAR_ERR_INVALID_CONFIG);
        char msg[512];
        registrar_last_error_message(msg, sizeof msg);
        CHECK(none == NULL && tu_contains(msg, named[i]), "%s: '%s'", bad[i][0], msg);
        registrar_config_free(cfg);
    }
}

/* ---- a health check's reason: registrar_health_check_set_reason misused ------------------ */
typedef struct {
    pthread_mutex_t lock;
    int calls;
    registrar_status null_st, utf8_st, ok_st;
    char null_msg[256], utf8_msg[256];
} reason_probe;

/* Gives a NULL and a non-UTF-8 reason (refused), then a good one, and fails. */
static int32_t misusing_check(void *user_data) {
    reason_probe *p = user_data;
    char null_msg[256], utf8_msg[256];
    registrar_status null_st = registrar_health_check_set_reason(NULL);
    registrar_last_error_message(null_msg, sizeof null_msg);
    registrar_status utf8_st = registrar_health_check_set_reason("disk \xff full");
    registrar_last_error_message(utf8_msg, sizeof utf8_msg);
    registrar_status ok_st = registrar_health_check_set_reason("disk full");
    pthread_mutex_lock(&p->lock);
    if (p->calls++ == 0) {
        p->null_st = null_st;
        p->utf8_st = utf8_st;
        p->ok_st = ok_st;
        memcpy(p->null_msg, null_msg, sizeof null_msg);
        memcpy(p->utf8_msg, utf8_msg, sizeof utf8_msg);
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static void test_health_check_reason_misuse(void) {
    /* Outside a check: the arguments are checked first, then where it is called from. */
    CHECK_NULL_ARG(registrar_health_check_set_reason(NULL), "registrar_health_check_set_reason",
                   "reason");
    CHECK_STATUS(registrar_health_check_set_reason("\xff"), REGISTRAR_ERR_INVALID_UTF8);
    CHECK(tu_contains(tu_last_error(), "'reason'"), "names the argument: %s", tu_last_error());
    CHECK_STATUS(registrar_health_check_set_reason("db unreachable"), REGISTRAR_ERR_INVALID_ARGUMENT);
    CHECK(tu_contains(tu_last_error(), "registrar_health_check_set_reason") &&
              tu_contains(tu_last_error(), "not called from a health check"),
          "says it is not in a check: %s", tu_last_error());

    /* Inside a check (which runs although the registry is unreachable): the same refusals,
     * and the good reason is the failure's. */
    static reason_probe p;
    memset(&p, 0, sizeof p);
    pthread_mutex_init(&p.lock, NULL);
    registrar_config *cfg = good_config("c-health-reason");
    CHECK_STATUS(registrar_config_set(cfg, "health_interval", "0.1"), REGISTRAR_OK);
    CHECK_STATUS(registrar_config_set(cfg, "health_threshold", "1"), REGISTRAR_OK);
    registrar_client *client = NULL;
    CHECK_STATUS(registrar_client_new(cfg, &client), REGISTRAR_OK);
    registrar_config_free(cfg);
    CHECK_STATUS(registrar_client_set_health_check(client, misusing_check, &p, NULL), REGISTRAR_OK);
    CHECK_STATUS(registrar_client_start(client), REGISTRAR_OK);
    char snap[4096];
    size_t len = 0;
    int found = 0;
    for (int i = 0; i < 100 && !found; i++) {
        tu_sleep_ms(50);
        CHECK_STATUS(registrar_client_snapshot_json(client, snap, sizeof snap, &len), REGISTRAR_OK);
        found = tu_contains(snap, "\"last_failure\":\"the health check failed: disk full\"");
    }
    CHECK(found, "the snapshot's last_failure is the check's reason: %s", snap);
    CHECK_STATUS(registrar_client_stop(client, 1000), REGISTRAR_OK);
    pthread_mutex_lock(&p.lock);
    CHECK(p.calls >= 1, "the check ran (%d calls)", p.calls);
    CHECK(p.null_st == REGISTRAR_ERR_NULL_ARGUMENT && tu_contains(p.null_msg, "'reason'"),
          "NULL in a check: %s '%s'", registrar_status_str((int32_t)p.null_st), p.null_msg);
    CHECK(p.utf8_st == REGISTRAR_ERR_INVALID_UTF8 && tu_contains(p.utf8_msg, "'reason'"),
          "invalid UTF-8 in a check: %s '%s'", registrar_status_str((int32_t)p.utf8_st), p.utf8_msg);
    CHECK(p.ok_st == REGISTRAR_OK, "a good reason in a check: %s",
          registrar_status_str((int32_t)p.ok_st));
    pthread_mutex_unlock(&p.lock);
    registrar_client_free(client);
    /* The check's call is over: outside again. */
    CHECK_STATUS(registrar_health_check_set_reason("late"), REGISTRAR_ERR_INVALID_ARGUMENT);
    pthread_mutex_destroy(&p.lock);
}

static void test_fork(void) {
    registrar_client *c = good_client("c-fork");
    CHECK_STATUS(registrar_client_start(c), REGISTRAR_OK); /* worker + HTTP thread running */
    tu_sleep_ms(50);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* Child: the parent's threads do not exist here. Every call refuses; free only
         * releases memory and must return at once. */
        int before = tu_failed;
        registrar_client_info info;
        char buf[64];
        size_t len;
        CHECK_STATUS(registrar_client_start(c), REGISTRAR_ERR_FORKED);
        CHECK(tu_contains(tu_last_error(), "fork"), "message: %s", tu_last_error());
        CHECK_STATUS(registrar_client_set_status(c, REGISTRAR_INSTANCE_UP), REGISTRAR_ERR_FORKED);
        CHECK_STATUS(registrar_client_set_metadata(c, "k", "v"), REGISTRAR_ERR_FORKED);
        CHECK_STATUS(registrar_client_get_metadata(c, "k", buf, sizeof buf, &len),
                     REGISTRAR_ERR_FORKED);
        CHECK_STATUS(registrar_client_get_info(c, &info), REGISTRAR_ERR_FORKED);
        CHECK_STATUS(registrar_client_last_error(c, buf, sizeof buf, &len), REGISTRAR_ERR_FORKED);
        CHECK_STATUS(registrar_client_instance_id(c, buf, sizeof buf, &len), REGISTRAR_ERR_FORKED);
        CHECK_STATUS(registrar_client_app_name(c, buf, sizeof buf, &len), REGISTRAR_ERR_FORKED);
        CHECK_STATUS(registrar_client_wait_registered(c, 10), REGISTRAR_ERR_FORKED);
        CHECK_STATUS(registrar_client_set_logger(c, NULL, NULL, NULL, 0), REGISTRAR_ERR_FORKED);
        CHECK_STATUS(registrar_client_stop(c, 1000), REGISTRAR_ERR_FORKED);
        double t0 = tu_now_ms();
        registrar_client_free(c);
        CHECK(tu_now_ms() - t0 < 200, "child's free returns at once (%.1f ms)", tu_now_ms() - t0);
        /* A new client in the child works normally. */
        registrar_config *cfg = good_config("c-fork-child");
        registrar_client *child = NULL;
        CHECK_STATUS(registrar_client_new(cfg, &child), REGISTRAR_OK);
        CHECK_STATUS(registrar_client_get_info(child, &info), REGISTRAR_OK);
        registrar_client_free(child);
        registrar_config_free(cfg);
        fflush(stdout);
        /* _exit: the child must not run the parent's exit-time work. */
        _exit(tu_failed - before > 0 ? 1 : 0);
    }
    CHECK(pid > 0, "fork");
    if (pid > 0) {
        int status = 0;
        pid_t done = 0;
        for (int i = 0; i < 200 && done == 0; i++) { /* at most 10 s */
            done = waitpid(pid, &status, WNOHANG);
            if (done == 0) tu_sleep_ms(50);
        }
        if (done == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        CHECK(done == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child finished its checks (exit %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    /* The parent's client is unaffected. */
    registrar_client_info info;
    CHECK_STATUS(registrar_client_get_info(c, &info), REGISTRAR_OK);
    CHECK(info.state == REGISTRAR_STATE_REGISTERING, "parent still retrying");
    CHECK_STATUS(registrar_client_stop(c, 2000), REGISTRAR_OK);
    registrar_client_free(c);
}

int main(void) {
    tu_init();
    /* The library must print nothing by itself: run everything with stderr watched by the
     * script (it checks this program wrote nothing there). */
    printf("test_api: registrar %s (ABI %u)\n", registrar_version(), registrar_abi_version());
    test_version_and_status_names();
    test_null_arguments();
    test_invalid_utf8();
    test_settings();
    test_last_error_buffer();
    test_lifecycle_misuse();
    test_log_callbacks();
    test_health_check_misuse();
    test_health_check_reason_misuse();
    test_fork();
    return tu_finish("test_api");
}
