// cpp_consumer: a C++17 program built the way a user of the release archive builds one, with
// CMake's find_package(registrar) (CMakeLists.txt beside it), through include/registrar.hpp.
// Against the registry in REGISTRY_URL: a bad setting throws registrar::Error with the code and
// the setting's name; a Client registers (UP, metadata), a Discovery sees it with its metadata,
// choose_url gives its URL; stop deregisters and the Discovery sees it gone; moved-from handles
// are safe to destroy. Prints "N passed, N failed" and exits non-zero on a failure.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include <registrar.hpp>

using namespace std::chrono_literals;

static int passed = 0, failed = 0;

static void expect(bool ok, const std::string &what) {
    if (ok) {
        passed++;
        std::printf("  ok    %s\n", what.c_str());
    } else {
        failed++;
        std::printf("  FAIL  %s\n", what.c_str());
    }
}

int main() {
    expect(registrar::library_version() == REGISTRAR_VERSION, "library version == header version");

    try {
        registrar::Config bad;
        bad.set("REGISTRY_URL", "http://127.0.0.1:1/eureka/").set("REGISTRY_APP_NAME", "x");
        bad.set("REGISTRY_PORT", "80x");  // refused here or by validate()
        bad.validate();
        expect(false, "a bad port throws");
    } catch (const registrar::Error &e) {
        expect(e.code() == REGISTRAR_ERR_INVALID_CONFIG && std::strstr(e.what(), "REGISTRY_PORT"),
               std::string("a bad port throws INVALID_CONFIG naming it: ") + e.code_name() + ": " +
                   e.what());
    }

    expect(registrar::library_abi_version() == REGISTRAR_ABI_VERSION, "library ABI == header ABI");
    bool has_url = false;
    for (const auto &setting : registrar::settings())
        if (setting.name == "REGISTRY_URL" && !setting.description.empty()) has_url = true;
    expect(has_url, "settings() lists REGISTRY_URL with a description");

    std::string id;
    std::mutex log_mutex;
    std::vector<std::string> log;
    std::atomic<std::uint64_t> last_change{0};
    try {
        auto config = registrar::Config::from_env();
        config.set("REGISTRY_METADATA", "lang=c++");
        registrar::Config shown;
        shown.set("REGISTRY_APP_NAME", "shown").set("REGISTRY_PASSWORD", "cpp-secret-pw");
        auto described = shown.describe();
        expect(described.find("REGISTRY_APP_NAME") != std::string::npos &&
                   described.find("cpp-secret-pw") == std::string::npos,
               "describe() lists the settings and hides the password");
        registrar::Client client(config);
        client.set_logger(
            [&](registrar::LogLevel, std::string_view message) {
                std::lock_guard<std::mutex> lock(log_mutex);
                log.emplace_back(message);
            },
            registrar::LogLevel::Debug);
        client.set_status(registrar::InstanceStatus::Up);
        client.start();
        client.wait_registered(20s);
        id = client.instance_id();
        expect(client.info().state == REGISTRAR_STATE_REGISTERED, "registered as " + id);
        expect(client.metadata("lang") == std::optional<std::string>("c++"), "metadata kept");
        expect(!client.metadata("absent").has_value(), "absent metadata is nullopt");

        // Logged on the client's thread, possibly just after wait_registered returned.
        std::size_t logged = 0;
        for (int i = 0; i < 100 && logged == 0; i++) {
            {
                std::lock_guard<std::mutex> lock(log_mutex);
                logged = log.size();
            }
            if (logged == 0) std::this_thread::sleep_for(50ms);
        }
        expect(logged > 0, "the logger got " + std::to_string(logged) + " message(s)");

        registrar::Discovery discovery(config);
        discovery.set_listener([&](std::uint64_t version) { last_change = version; });
        discovery.start();
        discovery.wait_ready(20s);
        // The listener runs on the discovery thread, possibly just after wait_ready returned.
        for (int i = 0; i < 100 && last_change.load() == 0; i++) std::this_thread::sleep_for(50ms);
        expect(last_change.load() > 0 && discovery.last_error().empty(),
               "the listener saw version " + std::to_string(last_change.load()));
        expect(client.snapshot_json().find('{') == 0 && discovery.snapshot_json().find('{') == 0,
               "snapshot_json of client and discovery");
        auto metrics = registrar::metrics_text();
        expect(metrics.find("# HELP") != std::string::npos, "metrics_text() is Prometheus text");
        auto me = discovery.instance(id);
        expect(me.has_value() && me->url.rfind("http://", 0) == 0, "instance(id): " +
                                                                       (me ? me->url : "(none)"));
        expect(!discovery.all().empty(), "all() is not empty");
        auto chosen = discovery.choose(client.app_name(), registrar::Discovery::Lookup::App, true);
        expect(chosen.has_value() && chosen->app == client.app_name(), "choose (random)");
        auto app = client.app_name();
        auto found = discovery.instances(app);
        bool seen = false;
        for (const auto &instance : found)
            if (instance.instance_id == id)
                seen = instance.status == registrar::InstanceStatus::Up &&
                       instance.metadata.count("lang") && instance.metadata.at("lang") == "c++";
        expect(seen, "discovery sees " + id + " UP with its metadata");
        auto url = discovery.choose_url(app);
        expect(url.has_value() && url->rfind("http://", 0) == 0,
               "choose_url: " + url.value_or("(none)"));
        expect(!discovery.choose_url("NO-SUCH-APP-CPP").has_value(), "choose_url of no app: nullopt");

        auto before = discovery.info().version;
        registrar::Client moved = std::move(client);  // moved-from handle: destroyed harmlessly
        moved.stop(10s);
        discovery.refresh(10s);
        expect(discovery.wait_change(before, 10s) > before, "wait_change saw the deregistration");
        bool gone = true;
        for (const auto &instance : discovery.instances(app))
            if (instance.instance_id == id) gone = false;
        expect(gone, "stop deregistered " + id);
        try {
            moved.set_status(registrar::InstanceStatus::Down);
            expect(false, "a stopped client throws");
        } catch (const registrar::Error &e) {
            expect(e.code() == REGISTRAR_ERR_SHUT_DOWN, std::string("a stopped client throws ") +
                                                            e.code_name());
        }
    } catch (const registrar::Error &e) {
        expect(false, std::string("unexpected ") + e.code_name() + ": " + e.what());
    }

    std::printf("cpp_consumer: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
