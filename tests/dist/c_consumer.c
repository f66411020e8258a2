/*
 * c_consumer: a C program built the way a user of the release archive builds one,
 *     cc c_consumer.c $(pkg-config --cflags --libs registrar)
 * against the unpacked archive (scripts/test-dist.sh). Registers APP/ID with the registry in
 * REGISTRY_URL, waits until the registry holds it, sees it through discovery, deregisters,
 * and prints "c_consumer: ok <version>". Any failure: the library's message, exit 1.
 */
#include <stdio.h>
#include <string.h>

#include <registrar.h>

static int fail(const char *what) {
    char message[1024];
    registrar_last_error_message(message, sizeof message);
    fprintf(stderr, "c_consumer: %s: %s\n", what, message);
    return 1;
}

int main(void) {
    /* The header and the library must come from the same release. */
    if (strcmp(registrar_version(), REGISTRAR_VERSION) != 0) {
        fprintf(stderr, "c_consumer: header %s, library %s\n", REGISTRAR_VERSION,
                registrar_version());
        return 1;
    }
    registrar_config *config = NULL;
    if (registrar_config_from_env(&config) != REGISTRAR_OK) return fail("config");
    registrar_client *client = NULL;
    if (registrar_client_new(config, &client) != REGISTRAR_OK) return fail("client_new");
    if (registrar_client_set_status(client, REGISTRAR_INSTANCE_UP) != REGISTRAR_OK ||
        registrar_client_start(client) != REGISTRAR_OK ||
        registrar_client_wait_registered(client, 20000) != REGISTRAR_OK)
        return fail("register");
    char id[256];
    size_t len = 0;
    if (registrar_client_instance_id(client, id, sizeof id, &len) != REGISTRAR_OK) return fail("id");

    registrar_discovery *discovery = NULL;
    if (registrar_discovery_new(config, &discovery) != REGISTRAR_OK ||
        registrar_discovery_start(discovery) != REGISTRAR_OK ||
        registrar_discovery_wait_ready(discovery, 20000) != REGISTRAR_OK)
        return fail("discovery");
    registrar_instance_list *list = NULL;
    if (registrar_discovery_instance(discovery, id, &list) != REGISTRAR_OK) return fail("lookup");
    size_t found = registrar_instance_list_len(list);
    registrar_instance_list_free(list);
    registrar_discovery_free(discovery);
    if (found != 1) {
        fprintf(stderr, "c_consumer: %s not in the registry\n", id);
        return 1;
    }
    if (registrar_client_stop(client, 10000) != REGISTRAR_OK) return fail("stop");
    registrar_client_free(client);
    registrar_config_free(config);
    printf("c_consumer: ok %s %s\n", registrar_version(), id);
    return 0;
}
