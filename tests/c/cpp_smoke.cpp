// The header from C++: compiles warning-free, and the extern "C" block links and runs
// (a C++ host calls the library exactly as a C host does).
#include "registrar.h"

#include <cstdio>
#include <cstring>
#include <string>

int main() {
    int failed = 0;
    if (std::strcmp(registrar_version(), REGISTRAR_VERSION) != 0) failed++;
    if (std::string(registrar_status_str(REGISTRAR_ERR_TIMEOUT)) != "REGISTRAR_ERR_TIMEOUT") failed++;
    registrar_config *config = nullptr;
    if (registrar_config_new(&config) != REGISTRAR_OK) failed++;
    if (registrar_config_validate(config) != REGISTRAR_ERR_INVALID_CONFIG) failed++;
    char message[256];
    if (registrar_last_error_message(message, sizeof message) == 0) failed++;
    registrar_config_free(config);
    registrar_client *client = nullptr;
    registrar_client_free(client);
    std::printf("cpp_smoke: %s, %d failed\n", failed ? "FAILED" : "ok", failed);
    return failed ? 1 : 0;
}
