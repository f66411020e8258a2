/*
 * discover: prints the UP instances of the application named on the command line, one per
 * line, as
 *
 *     INSTANCE_ID host:port STATUS
 *
 * sorted by instance id, and exits 0 (also when the application has no UP instance). Uses the
 * library's discovery cache: one full fetch of the registry, then the answer from memory.
 *
 * Configured only by the REGISTRY_* environment, like register.c (REGISTRY_URL, optionally
 * REGISTRY_USER / REGISTRY_PASSWORD and REGISTRY_TIMEOUT; no REGISTRY_APP_NAME needed):
 *
 *     REGISTRY_URL=http://127.0.0.1:8761/eureka/ ./discover MY_AWSOME_GO_MS
 *
 * Exit status: 0 success, 1 the registry could not be read (the reason on stderr), 2 usage or
 * configuration error. REGISTRY_LOG=1 also shows the library's log messages on stderr.
 *
 * Build: cc -Wall -Wextra -Werror -Iinclude examples/c/discover.c -Ltarget/release -lregistrar
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registrar.h"

/* How long to wait for the first fetch of the registry. */
#define READY_TIMEOUT_MS 15000

/* REGISTRY_LOG=1: the library's log messages, on its background thread. */
static void log_to_stderr(void *user_data, int32_t level, const char *message) {
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    (void)user_data;
    fprintf(stderr, "registrar %s: %s\n", level >= 0 && level <= 3 ? names[level] : "?", message);
}

static void print_last_error(const char *what) {
    char message[1024];
    registrar_last_error_message(message, sizeof message);
    fprintf(stderr, "discover: %s: %s\n", what, message);
}

int main(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '\0') {
        fprintf(stderr, "usage: %s APP_NAME   (REGISTRY_URL etc. in the environment)\n", argv[0]);
        return 2;
    }
    const char *app = argv[1];

    registrar_config *config = NULL;
    if (registrar_config_from_env(&config) != REGISTRAR_OK) {
        print_last_error("reading the configuration");
        return 2;
    }
    registrar_discovery *discovery = NULL;
    registrar_status status = registrar_discovery_new(config, &discovery);
    registrar_config_free(config); /* the handle keeps what it needs */
    if (status != REGISTRAR_OK) {
        print_last_error("configuration");
        return 2;
    }

    const char *log = getenv("REGISTRY_LOG");
    if (log != NULL && strcmp(log, "1") == 0)
        registrar_discovery_set_logger(discovery, log_to_stderr, NULL, NULL, REGISTRAR_LOG_DEBUG);

    int exit_code = 0;
    registrar_instance_list *list = NULL;
    if (registrar_discovery_start(discovery) != REGISTRAR_OK) {
        print_last_error("starting discovery");
        exit_code = 1;
    } else if (registrar_discovery_wait_ready(discovery, READY_TIMEOUT_MS) != REGISTRAR_OK) {
        print_last_error("fetching the registry");
        exit_code = 1;
    } else if (registrar_discovery_instances(discovery, REGISTRAR_LOOKUP_APP, app, 0, &list) !=
               REGISTRAR_OK) {
        print_last_error("query");
        exit_code = 1;
    } else {
        size_t n = registrar_instance_list_len(list);
        for (size_t i = 0; i < n; i++) {
            const registrar_instance *instance = registrar_instance_list_get(list, i);
            printf("%s %s:%u %s\n", instance->instance_id, instance->host_name,
                   (unsigned)instance->port, registrar_instance_status_str(instance->status));
        }
    }
    registrar_instance_list_free(list);
    registrar_discovery_free(discovery); /* stops the background thread */
    if (fflush(stdout) != 0) {
        perror("discover: stdout");
        exit_code = 1;
    }
    return exit_code;
}
