/*
 * register: the seed's scenario in C. Registers this process with Eureka (app name from
 * REGISTRY_APP_NAME, e.g. MY_AWSOME_GO_MS), marks it UP, prints one line
 *
 *     registered APP/ID
 *
 * on stdout once the registry has accepted it, keeps it alive with heartbeats (on the library's
 * background thread) until SIGINT or SIGTERM, then deregisters and exits 0.
 *
 * Configured only by the REGISTRY_* environment (see the README's configuration table):
 *
 *     REGISTRY_URL=http://127.0.0.1:8761/eureka/ REGISTRY_APP_NAME=MY_AWSOME_GO_MS ./register
 *
 * Bad configuration: the library's message on stderr, exit status 2. While the instance is not
 * (yet) registered, the reason (registry unreachable, 401 wrong credentials, 400 with the
 * server's reason...) goes to stderr each time it changes, not once per retry.
 * REGISTRY_LOG=1 also shows the library's own log messages on stderr; REGISTER_EVENTS=1 shows
 * the client's events (registered, registration lost, re-registered, status changed and why,
 * stopped) on stderr as they happen.
 *
 * Health and drain, from the environment alone (see the README):
 *   REGISTRY_HEALTH_URL=http://127.0.0.1:8080/health   the library polls it (2xx = healthy) every
 *       REGISTRY_HEALTH_INTERVAL s; after REGISTRY_HEALTH_THRESHOLD failures in a row the
 *       registry shows DOWN, after as many passes UP again.
 *   REGISTER_UNHEALTHY_FILE=/tmp/sick   this example's own health check (a C callback, the API a
 *       service uses to report its health): unhealthy while that file exists, with the reason
 *       "/tmp/sick exists". It replaces REGISTRY_HEALTH_URL.
 *   REGISTRY_DRAIN_SECONDS=10   on SIGINT/SIGTERM the instance is registered DOWN at once and
 *       stays listed, heartbeating, for 10 s (callers' caches drop it), then deleted.
 *
 * Signals: SIGINT and SIGTERM are blocked in every thread (the library's threads inherit the
 * mask of the thread that creates them) and taken synchronously with sigtimedwait, so no
 * signal handler runs at all: nothing here has to be async-signal-safe. They are looked at at
 * least every SIGNAL_MS in every phase, so a stop request is acted on within 100 ms.
 *
 * Exit status: 0 after a clean deregistration, 1 when deregistration failed (the registry may
 * still list the instance until its lease expires), 2 for a bad configuration.
 *
 * Build: cc -Wall -Wextra -Werror -Iinclude examples/c/register.c -Ltarget/release -lregistrar
 * (or `make -C examples/c`).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "registrar.h"

/* How long one wait for the registration lasts before we look at signals again. */
#define SIGNAL_MS 50
/* How long we sleep, once registered, between two looks at the client's last error (a signal
 * ends the sleep at once). */
#define POLL_MS 1000

/* The calling thread's last registrar error message, in a buffer of the right size. */
static void print_last_error(const char *what) {
    char small[512];
    size_t len = registrar_last_error_message(small, sizeof small);
    if (len < sizeof small) {
        fprintf(stderr, "register: %s: %s\n", what, small);
        return;
    }
    char *big = malloc(len + 1);
    if (big) registrar_last_error_message(big, len + 1);
    fprintf(stderr, "register: %s: %s\n", what, big ? big : small);
    free(big);
}

/* Calls one of the snprintf-style getters and returns a malloc'ed copy of the whole string
 * (retrying with a bigger buffer when the first one was too small). */
typedef registrar_status (*string_getter)(const registrar_client *, char *, size_t, size_t *);

static char *get_string(const registrar_client *client, string_getter get) {
    size_t cap = 128, len = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *buf = malloc(cap);
        if (!buf) return NULL;
        if (get(client, buf, cap, &len) != REGISTRAR_OK) {
            free(buf);
            return NULL;
        }
        if (len < cap) return buf;
        free(buf);
        cap = len + 1;
    }
    return NULL;
}

/* Reports the background thread's last error on stderr when it differs from the one reported
 * before ("" = the last request succeeded). `shown` holds the last reported message. */
static void report_change(const registrar_client *client, const char *prefix, char **shown) {
    char *now = get_string(client, registrar_client_last_error);
    if (!now) return;
    if (*shown == NULL || strcmp(now, *shown) != 0) {
        if (now[0] != 0)
            fprintf(stderr, "register: %s: %s\n", prefix, now);
        else if (*shown != NULL && (*shown)[0] != 0)
            fprintf(stderr, "register: the registry answers again\n");
        free(*shown);
        *shown = now;
    } else {
        free(now);
    }
}

/* REGISTRY_LOG=1: the library's log messages, on its background thread. */
static void log_to_stderr(void *user_data, int32_t level, const char *message) {
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    (void)user_data;
    fprintf(stderr, "registrar %s: %s\n", level >= 0 && level <= 3 ? names[level] : "?", message);
}

/* REGISTER_EVENTS=1: the client's state changes, on the library's background thread. */
static void event_to_stderr(void *user_data, const registrar_event *event) {
    static const char *kinds[] = {"?", "REGISTERED", "REGISTRATION_LOST", "REREGISTERED",
                                  "STATUS_CHANGED", "STOPPED"};
    static const char *causes[] = {"", " (host)", " (health check)", " (not found)",
                                   " (lease expired)", " (stop)"};
    (void)user_data;
    int kind = (int)event->kind, cause = (int)event->cause;
    fprintf(stderr, "register: event %s %s%s%s%s\n", kind >= 1 && kind <= 5 ? kinds[kind] : "?",
            registrar_instance_status_str((int32_t)event->status),
            cause >= 0 && cause <= 5 ? causes[cause] : "", event->reason ? ": " : "",
            event->reason ? event->reason : "");
}

/* REGISTER_UNHEALTHY_FILE: healthy (nonzero) unless the file exists, and then it says so: the
 * reason is what the library logs and reports ("the health check failed: /tmp/sick exists").
 * Called on the library's health check thread every REGISTRY_HEALTH_INTERVAL; it must return
 * within REGISTRY_TIMEOUT. */
static int32_t file_health(void *user_data) {
    const char *file = user_data;
    if (access(file, F_OK) != 0) return 1;
    char reason[512];
    snprintf(reason, sizeof reason, "%s exists", file);
    (void)registrar_health_check_set_reason(reason); /* copied: reason may go once it returns */
    return 0;
}

/* Waits up to `ms` for SIGINT/SIGTERM; returns the signal number or 0. */
static int take_signal(const sigset_t *signals, long ms) {
    struct timespec timeout = {ms / 1000, (ms % 1000) * 1000000L};
    for (;;) {
        int sig = sigtimedwait(signals, NULL, &timeout);
        if (sig > 0) return sig;
        if (errno == EINTR) continue; /* another signal's handler ran (none here): wait again */
        return 0;                     /* EAGAIN: timed out */
    }
}

int main(void) {
    /* Block the stop signals before the library creates any thread, so every thread inherits
     * the mask and the signals stay pending for sigtimedwait below. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &signals, NULL) != 0) {
        perror("register: sigprocmask");
        return 1;
    }

    registrar_config *config = NULL;
    if (registrar_config_from_env(&config) != REGISTRAR_OK) {
        print_last_error("cannot read the configuration");
        return 2;
    }
    registrar_client *client = NULL;
    if (registrar_client_new(config, &client) != REGISTRAR_OK) {
        print_last_error("bad configuration");
        registrar_config_free(config);
        return 2;
    }
    registrar_config_free(config);

    const char *log = getenv("REGISTRY_LOG");
    if (log && strcmp(log, "1") == 0 &&
        registrar_client_set_logger(client, log_to_stderr, NULL, NULL, REGISTRAR_LOG_INFO) !=
            REGISTRAR_OK)
        print_last_error("cannot install the logger");

    const char *events = getenv("REGISTER_EVENTS");
    if (events && strcmp(events, "1") == 0 &&
        registrar_client_set_event_listener(client, event_to_stderr, NULL, NULL) != REGISTRAR_OK)
        print_last_error("cannot install the event listener");

    const char *unhealthy_file = getenv("REGISTER_UNHEALTHY_FILE");
    if (unhealthy_file && unhealthy_file[0] &&
        registrar_client_set_health_check(client, file_health, (void *)unhealthy_file, NULL) !=
            REGISTRAR_OK)
        print_last_error("cannot install the health check");

    char *app = get_string(client, registrar_client_app_name);
    char *id = get_string(client, registrar_client_instance_id);
    if (!app || !id) {
        fprintf(stderr, "register: cannot read the app name or instance id\n");
        registrar_client_free(client);
        return 1;
    }

    /* This example is ready to serve at once: register UP directly (no STARTING phase). */
    if (registrar_client_set_status(client, REGISTRAR_INSTANCE_UP) != REGISTRAR_OK ||
        registrar_client_start(client) != REGISTRAR_OK) {
        print_last_error("cannot start");
        registrar_client_free(client);
        free(app);
        free(id);
        return 1;
    }

    int sig = 0, registered = 0, exit_code = 0;
    char *shown = NULL;
    while (sig == 0) {
        if (!registered) {
            registrar_status st = registrar_client_wait_registered(client, SIGNAL_MS);
            if (st == REGISTRAR_OK) {
                registered = 1;
                printf("registered %s/%s\n", app, id);
                fflush(stdout);
                free(shown);
                shown = NULL; /* report later problems afresh */
            } else if (st == REGISTRAR_ERR_TIMEOUT) {
                report_change(client, "not registered yet", &shown);
            } else {
                print_last_error("waiting for the registration failed");
                exit_code = 1;
                break;
            }
            sig = take_signal(&signals, 0);
        } else {
            /* Heartbeats run on the library's thread; we only watch for trouble and signals. */
            sig = take_signal(&signals, POLL_MS);
            if (sig == 0) report_change(client, "registry problem", &shown);
        }
    }
    if (sig) fprintf(stderr, "register: %s, deregistering\n", strsignal(sig));

    /* Marks the instance DOWN (and keeps it listed so for REGISTRY_DRAIN_SECONDS), deletes it
     * from the registry, ends the background task; bounded by the drain + REGISTRY_TIMEOUT. */
    if (registrar_client_stop(client, 0) != REGISTRAR_OK) {
        print_last_error("deregistration did not complete");
        exit_code = 1;
    }
    registrar_client_free(client);
    free(shown);
    free(app);
    free(id);
    return exit_code;
}
