// cpp_consumer: a C++17 program built the way a user of the release archive builds one, with
// CMake's find_package(registrar) (CMakeLists.txt beside it), through include/registrar.hpp.
// Against the registry in REGISTRY_URL: a bad setting throws registrar::Error with the code and
// the setting's name; a Client registers (UP, metadata), a Discovery sees it with its metadata,
// choose_url gives its URL; stop deregisters and the Discovery sees it gone; moved-from handles
// are safe to destroy. Then events and the health check through the C++ layer: a failing check
// (false, or an exception) turns the instance DOWN in the registry and a passing one UP again,
// each with a StatusChanged event caused by the health check (the exception's what() is its
// reason); Stopped is the last event.
// Prints "N passed, N failed" and exits non-zero on a failure.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>
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

// The events a listener received, in order (the listener runs on the library's thread).
struct EventLog {
    std::mutex mutex;
    std::vector<registrar::Event> events;

    void add(const registrar::Event &event) {
        std::lock_guard<std::mutex> lock(mutex);
        events.push_back(event);
    }
    std::vector<registrar::Event> copy() {
        std::lock_guard<std::mutex> lock(mutex);
        return events;
    }
    // Waits (at most ~20 s) for an event of `kind` with `status` after the first `skip` ones;
    // returns its index, or -1.
    int wait_for(registrar::EventKind kind, registrar::InstanceStatus status, std::size_t skip = 0) {
        for (int i = 0; i < 400; i++) {
            auto seen = copy();
            for (std::size_t at = skip; at < seen.size(); at++)
                if (seen[at].kind == kind && seen[at].status == status) return static_cast<int>(at);
            std::this_thread::sleep_for(50ms);
        }
        return -1;
    }
};

// Events and the health check through registrar.hpp: a check that fails (false, then an
// exception) turns the instance DOWN in the registry with a StatusChanged event caused by the
// health check; passing again turns it UP; stop's Stopped event is the last one, exactly once.
// A Discovery's listener sees it ready.
static void events_and_health(const std::string &id) {
    auto config = registrar::Config::from_env();
    config.set("REGISTRY_INSTANCE_ID", id)
        .set("REGISTRY_HEALTH_INTERVAL", "0.1")
        .set("REGISTRY_HEALTH_THRESHOLD", "2");
    registrar::Client client(config);
    EventLog client_events, discovery_events;
    std::atomic<int> health{1};  // 1 healthy, 0 unhealthy (false), -1 unhealthy (throws)
    std::atomic<int> checks{0};
    client.set_event_listener([&](const registrar::Event &event) { client_events.add(event); });
    client.set_health_check([&]() -> bool {
        checks++;
        int now = health.load();
        if (now < 0) throw std::runtime_error("the check's own failure");
        return now == 1;
    });
    client.set_status(registrar::InstanceStatus::Up);
    client.start();
    client.wait_registered(20s);
    expect(client_events.wait_for(registrar::EventKind::Registered, registrar::InstanceStatus::Up) >= 0,
           "events: Registered UP");

    registrar::Discovery discovery(config);
    discovery.set_event_listener([&](const registrar::Event &event) { discovery_events.add(event); });
    discovery.start();
    discovery.wait_ready(20s);
    // The listener runs on the discovery's thread, possibly just after wait_ready returned.
    bool ready = false;
    for (int i = 0; i < 100 && !ready; i++) {
        for (const auto &event : discovery_events.copy())
            if (event.kind == registrar::EventKind::DiscoveryReady && event.version > 0) ready = true;
        if (!ready) std::this_thread::sleep_for(50ms);
    }
    expect(ready, "discovery events: DiscoveryReady with a version");

    auto status_in_registry = [&]() {
        discovery.refresh(10s);
        try {
            auto me = discovery.instance(id);
            return me ? me->status : registrar::InstanceStatus::Unknown;
        } catch (const registrar::Error &e) {
            if (e.code() != REGISTRAR_ERR_NOT_FOUND) throw;
            return registrar::InstanceStatus::Unknown;  // not in the registry
        }
    };
    auto wait_status = [&](registrar::InstanceStatus want) {
        for (int i = 0; i < 100; i++) {
            if (status_in_registry() == want) return true;
            std::this_thread::sleep_for(100ms);
        }
        return false;
    };

    health = 0;
    int down = client_events.wait_for(registrar::EventKind::StatusChanged, registrar::InstanceStatus::Down);
    expect(down >= 0 && client_events.copy()[down].cause == registrar::EventCause::HealthCheck,
           "a failing check (false): StatusChanged DOWN caused by the health check");
    expect(wait_status(registrar::InstanceStatus::Down), "the registry holds it DOWN");

    health = 1;
    int up = client_events.wait_for(registrar::EventKind::StatusChanged, registrar::InstanceStatus::Up,
                                    down < 0 ? 0 : down + 1);
    expect(up >= 0 && client_events.copy()[up].cause == registrar::EventCause::HealthCheck,
           "a passing check: StatusChanged UP caused by the health check");
    expect(wait_status(registrar::InstanceStatus::Up), "the registry holds it UP again");

    health = -1;
    int thrown = client_events.wait_for(registrar::EventKind::StatusChanged,
                                        registrar::InstanceStatus::Down, up < 0 ? 0 : up + 1);
    expect(thrown >= 0, "a check that throws counts as failing: DOWN again");
    std::string thrown_reason = thrown >= 0 ? client_events.copy()[thrown].reason : "";
    expect(thrown_reason.find("the health check failed: the check's own failure") !=
               std::string::npos,
           "with what() as the reason: '" + thrown_reason + "'");
    expect(checks.load() >= 6, "the check ran " + std::to_string(checks.load()) + " times");

    client.stop(10s);
    auto seen = client_events.copy();
    int stopped = 0;
    for (const auto &event : seen)
        if (event.kind == registrar::EventKind::Stopped) stopped++;
    expect(stopped == 1 && seen.back().kind == registrar::EventKind::Stopped &&
               seen.back().error == REGISTRAR_OK,
           "Stopped is the last event, once, with stop's outcome OK (" +
               std::to_string(seen.size()) + " events)");
    int checks_at_stop = checks.load();
    std::this_thread::sleep_for(300ms);
    expect(checks.load() == checks_at_stop, "no health check after stop");
    expect(wait_status(registrar::InstanceStatus::Unknown), "stop deregistered " + id);
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

    try {
        events_and_health(id.empty() ? std::string("cpp-events") : id + "-events");
    } catch (const registrar::Error &e) {
        expect(false, std::string("events and health: unexpected ") + e.code_name() + ": " + e.what());
    }

    std::printf("cpp_consumer: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
