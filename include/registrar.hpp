/*
 * registrar.hpp: a small header-only C++17 layer over registrar.h (hand-written, not generated).
 *
 *  - Handles are move-only RAII objects: registrar::Config, registrar::Client,
 *    registrar::Discovery. Destroying a Client or Discovery stops it (deregisters) and frees it.
 *  - Every failure throws registrar::Error, which carries the C status code (code()) and the
 *    library's message (what()), read on the thread that made the call.
 *  - Durations are std::chrono; strings go in as std::string_view and come out as std::string.
 *
 * Link with -lregistrar (pkg-config registrar, or CMake target registrar::registrar).
 */
#ifndef REGISTRAR_HPP
#define REGISTRAR_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "registrar.h"

namespace registrar {

/// A failed registrar call: code() is the C status (e.g. REGISTRAR_ERR_INVALID_CONFIG), what()
/// the library's message (it names the setting or the registry's answer; never credentials).
class Error : public std::runtime_error {
public:
    Error(registrar_status code, const std::string &message)
        : std::runtime_error(message), code_(code) {}
    registrar_status code() const noexcept { return code_; }
    /// The code's name, e.g. "REGISTRAR_ERR_TIMEOUT".
    const char *code_name() const noexcept { return registrar_status_str(code_); }

private:
    registrar_status code_;
};

/// The status of an instance in the registry (values of registrar_instance_status).
enum class InstanceStatus : int32_t {
    Unknown = REGISTRAR_INSTANCE_UNKNOWN,
    Up = REGISTRAR_INSTANCE_UP,
    Down = REGISTRAR_INSTANCE_DOWN,
    Starting = REGISTRAR_INSTANCE_STARTING,
    OutOfService = REGISTRAR_INSTANCE_OUT_OF_SERVICE,
};

inline const char *to_string(InstanceStatus status) noexcept {
    return registrar_instance_status_str(static_cast<int32_t>(status));
}

/// The library's version ("0.1.0"); REGISTRAR_VERSION is the header's.
inline std::string_view library_version() noexcept { return registrar_version(); }

/// The ABI number of the loaded library; REGISTRAR_ABI_VERSION is the header's.
inline std::uint32_t library_abi_version() noexcept { return registrar_abi_version(); }

/// One setting the library accepts (Config::set key and REGISTRY_* environment variable).
struct Setting {
    std::string name;
    std::string description;
};

/// Every setting, from the library's own list.
inline std::vector<Setting> settings() {
    std::vector<Setting> all;
    std::size_t n = registrar_setting_count();
    for (std::size_t i = 0; i < n; i++) {
        const char *name = registrar_setting_name(i);
        const char *description = registrar_setting_description(i);
        all.push_back({name ? name : "", description ? description : ""});
    }
    return all;
}

enum class LogLevel : int32_t {
    Error = REGISTRAR_LOG_ERROR,
    Warn = REGISTRAR_LOG_WARN,
    Info = REGISTRAR_LOG_INFO,
    Debug = REGISTRAR_LOG_DEBUG,
};

/// Receives the library's log messages on its background thread (see set_logger).
using Logger = std::function<void(LogLevel, std::string_view)>;

/// The service's health: true when healthy; throws (or returns false) when not, and what() is
/// then the reason (see Client::set_health_check).
using HealthCheck = std::function<bool()>;

/// What happened (values of registrar_event_kind; the header documents each).
enum class EventKind : int32_t {
    Registered = REGISTRAR_EVENT_REGISTERED,
    RegistrationLost = REGISTRAR_EVENT_REGISTRATION_LOST,
    Reregistered = REGISTRAR_EVENT_REREGISTERED,
    StatusChanged = REGISTRAR_EVENT_STATUS_CHANGED,
    Stopped = REGISTRAR_EVENT_STOPPED,
    DiscoveryReady = REGISTRAR_EVENT_DISCOVERY_READY,
    DiscoveryChanged = REGISTRAR_EVENT_DISCOVERY_CHANGED,
    DiscoveryFetchFailing = REGISTRAR_EVENT_DISCOVERY_FETCH_FAILING,
    DiscoveryRecovered = REGISTRAR_EVENT_DISCOVERY_RECOVERED,
};

/// Why (values of registrar_event_cause).
enum class EventCause : int32_t {
    None = REGISTRAR_CAUSE_NONE,
    Host = REGISTRAR_CAUSE_HOST,
    HealthCheck = REGISTRAR_CAUSE_HEALTH_CHECK,
    NotFound = REGISTRAR_CAUSE_NOT_FOUND,
    LeaseExpired = REGISTRAR_CAUSE_LEASE_EXPIRED,
    Stop = REGISTRAR_CAUSE_STOP,
};

/// One event of a Client or a Discovery (a copy of registrar_event).
struct Event {
    EventKind kind;
    InstanceStatus status;
    EventCause cause;
    /// REGISTRAR_OK, or the code of the failure behind it.
    registrar_status error;
    /// The failure's message or what happened; empty when the library gave none.
    std::string reason;
    /// Discovery events: the registry version after it.
    std::uint64_t version;
};

/// Receives a handle's events on its background thread, in order, never after stop returns
/// (see set_event_listener).
using EventListener = std::function<void(const Event &)>;

namespace detail {

/// The calling thread's last registrar error message (whole, however long).
inline std::string last_error_message() {
    std::string message(256, '\0');
    std::size_t len = registrar_last_error_message(message.data(), message.size());
    if (len >= message.size()) {
        message.resize(len + 1);
        len = registrar_last_error_message(message.data(), message.size());
    }
    message.resize(len < message.size() ? len : message.size() - 1);
    return message;
}

inline void check(registrar_status status) {
    if (status != REGISTRAR_OK) throw Error(status, last_error_message());
}

/// string_view is not NUL-terminated: the C API gets a copy. An embedded NUL would silently
/// cut the string, so it is refused here with the library's own code for bad arguments.
inline std::string c_string(std::string_view text, const char *what) {
    if (text.find('\0') != std::string_view::npos)
        throw Error(REGISTRAR_ERR_INVALID_ARGUMENT, std::string(what) + " contains a NUL byte");
    return std::string(text);
}

/// Milliseconds for the C API, saturated to uint32_t; negative durations become 0.
template <class Rep, class Period>
std::uint32_t millis(std::chrono::duration<Rep, Period> duration) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
    if (ms <= 0) return 0;
    if (static_cast<unsigned long long>(ms) > std::numeric_limits<std::uint32_t>::max())
        return std::numeric_limits<std::uint32_t>::max();
    return static_cast<std::uint32_t>(ms);
}

/// Calls a snprintf-style getter (buf, buf_len, out_len) until the whole string fits and
/// returns it. The text may grow between the call that sizes it and the one that copies it (the
/// metrics do all the time: an age changes, a counter gains a digit), so the buffer gets room
/// to spare; a cut text is never returned.
template <class Getter>
std::string read_string(Getter &&get) {
    std::string text(128, '\0');
    for (int attempt = 0; attempt < 32; ++attempt) {
        std::size_t len = 0;
        check(get(text.data(), text.size(), &len));
        if (len < text.size()) {
            text.resize(len);
            return text;
        }
        text.resize(len + len / 4 + 256);
    }
    throw std::runtime_error("registrar: a text kept growing while being read");
}

/// Unique ownership of a C handle: the base of every wrapper below. Free is a function
/// object calling the handle's registrar_*_free (which accepts NULL).
template <class T, class Free>
class Handle {
public:
    Handle() noexcept = default;
    explicit Handle(T *raw) noexcept : raw_(raw) {}
    Handle(const Handle &) = delete;
    Handle &operator=(const Handle &) = delete;
    Handle(Handle &&other) noexcept : raw_(std::exchange(other.raw_, nullptr)) {}
    Handle &operator=(Handle &&other) noexcept {
        if (this != &other) {
            Free()(raw_);
            raw_ = std::exchange(other.raw_, nullptr);
        }
        return *this;
    }
    ~Handle() { Free()(raw_); }
    T *get() const noexcept { return raw_; }

private:
    T *raw_ = nullptr;
};

struct FreeConfig {
    void operator()(registrar_config *p) const noexcept { registrar_config_free(p); }
};
// registrar_client_free / registrar_discovery_free stop first (never throw): a destroyed
// Client is deregistered.
struct FreeClient {
    void operator()(registrar_client *p) const noexcept { registrar_client_free(p); }
};
struct FreeDiscovery {
    void operator()(registrar_discovery *p) const noexcept { registrar_discovery_free(p); }
};
struct FreeList {
    void operator()(registrar_instance_list *p) const noexcept { registrar_instance_list_free(p); }
};

/// A callable kept on the heap for a C callback's user_data; the library frees it exactly once
/// (free_user_data) after the last call. Exceptions never cross into the library's thread.
template <class Fn>
struct Callback {
    static void free(void *user_data) { delete static_cast<Fn *>(user_data); }
};

inline void log_trampoline(void *user_data, int32_t level, const char *message) {
    try {
        (*static_cast<Logger *>(user_data))(static_cast<LogLevel>(level),
                                            message ? std::string_view(message) : std::string_view());
    } catch (...) {
        // A logger that throws loses that message; the library's thread goes on.
    }
}

/// A check that throws counts as failing, with what() as the reason registrar reports.
inline int32_t health_trampoline(void *user_data) {
    try {
        return (*static_cast<HealthCheck *>(user_data))() ? 1 : 0;
    } catch (const std::exception &e) {
        // Refused only if what() is not UTF-8: then the failure goes without a reason.
        (void)registrar_health_check_set_reason(e.what());
        return 0;
    } catch (...) {
        (void)registrar_health_check_set_reason("an exception that is not a std::exception");
        return 0;
    }
}

inline void event_trampoline(void *user_data, const registrar_event *event) {
    try {
        Event copy{static_cast<EventKind>(event->kind), static_cast<InstanceStatus>(event->status),
                   static_cast<EventCause>(event->cause), event->error,
                   event->reason ? std::string(event->reason) : std::string(), event->version};
        (*static_cast<EventListener *>(user_data))(copy);
    } catch (...) {
        // A listener that throws misses nothing else; the library's thread goes on.
    }
}

/// Installs `listener` through a set_event_listener function of the C API (empty: removes).
template <class H, class Set>
void set_event_listener(H *handle, Set set, EventListener listener) {
    if (!listener) {
        check(set(handle, nullptr, nullptr, nullptr));
        return;
    }
    auto *held = new EventListener(std::move(listener));
    registrar_status status = set(handle, event_trampoline, held, Callback<EventListener>::free);
    if (status != REGISTRAR_OK) delete held; // not installed: the library did not take it
    check(status);
}

} // namespace detail

/// Every live handle's counters in the Prometheus text format (serve it from /metrics).
inline std::string metrics_text() {
    return detail::read_string([](char *buf, std::size_t len, std::size_t *out) {
        return registrar_metrics_text(buf, len, out);
    });
}

/// Settings by their REGISTRY_* names (the README's table), e.g.
/// `Config::from_env().set("REGISTRY_APP_NAME", "orders")`.
class Config {
public:
    /// Empty settings (defaults only).
    Config() {
        registrar_config *raw = nullptr;
        detail::check(registrar_config_new(&raw));
        handle_ = Handle(raw);
    }
    /// The REGISTRY_* variables of the environment.
    static Config from_env() {
        registrar_config *raw = nullptr;
        detail::check(registrar_config_from_env(&raw));
        return Config(raw);
    }
    /// Sets one setting (the message of a bad value names it).
    Config &set(std::string_view key, std::string_view value) & {
        detail::check(registrar_config_set(handle_.get(), detail::c_string(key, "key").c_str(),
                                           detail::c_string(value, "value").c_str()));
        return *this;
    }
    Config &&set(std::string_view key, std::string_view value) && {
        set(key, value);
        return std::move(*this);
    }
    /// Throws REGISTRAR_ERR_INVALID_CONFIG naming the first bad or missing setting.
    void validate() const { detail::check(registrar_config_validate(handle_.get())); }
    /// The settings as text for logs, credentials hidden by the library.
    std::string describe() const {
        return detail::read_string([&](char *buf, std::size_t len, std::size_t *out) {
            return registrar_config_describe(handle_.get(), buf, len, out);
        });
    }
    const registrar_config *get() const noexcept { return handle_.get(); }

private:
    using Handle = detail::Handle<registrar_config, detail::FreeConfig>;
    explicit Config(registrar_config *raw) noexcept : handle_(raw) {}
    Handle handle_;
};

/// One registration: registers in the background after start(), heartbeats, re-registers after
/// a registry restart; stop() (or the destructor) marks it DOWN and deregisters.
/// Safe to use from several threads at once (moving or destroying it is not).
class Client {
public:
    explicit Client(const Config &config) {
        registrar_client *raw = nullptr;
        detail::check(registrar_client_new(config.get(), &raw));
        handle_ = Handle(raw);
    }
    void start() { detail::check(registrar_client_start(handle_.get())); }
    /// The library's log messages up to `max_level`, called on the client's background thread
    /// (never after stop returns). Replaces an earlier logger; an empty one removes it.
    void set_logger(Logger logger, LogLevel max_level = LogLevel::Info) {
        if (!logger) {
            detail::check(registrar_client_set_logger(handle_.get(), nullptr, nullptr, nullptr,
                                                      static_cast<int32_t>(max_level)));
            return;
        }
        auto *held = new Logger(std::move(logger));
        registrar_status status = registrar_client_set_logger(
            handle_.get(), detail::log_trampoline, held, detail::Callback<Logger>::free,
            static_cast<int32_t>(max_level));
        if (status != REGISTRAR_OK) delete held; // not installed: the library did not take it
        detail::check(status);
    }
    /// The service's health check, run every REGISTRY_HEALTH_INTERVAL on a thread of the
    /// library's (bounded by REGISTRY_TIMEOUT, never twice at once): the instance is registered
    /// DOWN after REGISTRY_HEALTH_THRESHOLD failures (false, or an exception) in a row, with
    /// the status set by set_status again after as many passes. An empty one removes it.
    /// To say why it fails, throw: the exception's what() is the reason registrar logs and
    /// reports ("the health check failed: <what()>" in the STATUS_CHANGED event and the
    /// snapshot's health.last_failure); or call registrar_health_check_set_reason and return
    /// false.
    void set_health_check(HealthCheck check) {
        if (!check) {
            detail::check(registrar_client_set_health_check(handle_.get(), nullptr, nullptr, nullptr));
            return;
        }
        auto *held = new HealthCheck(std::move(check));
        registrar_status status = registrar_client_set_health_check(
            handle_.get(), detail::health_trampoline, held, detail::Callback<HealthCheck>::free);
        if (status != REGISTRAR_OK) delete held; // not installed: the library did not take it
        detail::check(status);
    }
    /// Registered, registration lost, re-registered, status changed, stopped (the last): on
    /// the client's background thread, in order, never after stop returns. Install it before
    /// start to see every event. Replaces an earlier listener; an empty one removes it.
    void set_event_listener(EventListener listener) {
        detail::set_event_listener(handle_.get(), registrar_client_set_event_listener,
                                   std::move(listener));
    }
    /// Until the registry holds the latest status and metadata; throws REGISTRAR_ERR_TIMEOUT
    /// (with the reason, e.g. unreachable or 401) when that takes longer than `timeout`.
    template <class Rep, class Period>
    void wait_registered(std::chrono::duration<Rep, Period> timeout) {
        detail::check(registrar_client_wait_registered(handle_.get(), detail::millis(timeout)));
    }
    void set_status(InstanceStatus status) {
        detail::check(registrar_client_set_status(handle_.get(), static_cast<int32_t>(status)));
    }
    void set_metadata(std::string_view key, std::string_view value) {
        detail::check(registrar_client_set_metadata(handle_.get(),
                                                    detail::c_string(key, "key").c_str(),
                                                    detail::c_string(value, "value").c_str()));
    }
    /// The value this process holds for `key`, or nothing when there is no such key.
    std::optional<std::string> metadata(std::string_view key) const {
        std::string k = detail::c_string(key, "key");
        try {
            return detail::read_string([&](char *buf, std::size_t len, std::size_t *out) {
                return registrar_client_get_metadata(handle_.get(), k.c_str(), buf, len, out);
            });
        } catch (const Error &e) {
            if (e.code() == REGISTRAR_ERR_NOT_FOUND) return std::nullopt;
            throw;
        }
    }
    registrar_client_info info() const {
        registrar_client_info out{};
        detail::check(registrar_client_get_info(handle_.get(), &out));
        return out;
    }
    /// The background thread's most recent failure ("" when the last request succeeded).
    std::string last_error() const {
        return detail::read_string([&](char *buf, std::size_t len, std::size_t *out) {
            return registrar_client_last_error(handle_.get(), buf, len, out);
        });
    }
    /// The client's state as JSON (state, counters, last error without credentials, times).
    std::string snapshot_json() const {
        return detail::read_string([&](char *buf, std::size_t len, std::size_t *out) {
            return registrar_client_snapshot_json(handle_.get(), buf, len, out);
        });
    }
    std::string instance_id() const {
        return detail::read_string([&](char *buf, std::size_t len, std::size_t *out) {
            return registrar_client_instance_id(handle_.get(), buf, len, out);
        });
    }
    std::string app_name() const {
        return detail::read_string([&](char *buf, std::size_t len, std::size_t *out) {
            return registrar_client_app_name(handle_.get(), buf, len, out);
        });
    }
    /// DOWN + deregister within `timeout` (zero: REGISTRY_TIMEOUT). Idempotent.
    template <class Rep = long long, class Period = std::milli>
    void stop(std::chrono::duration<Rep, Period> timeout = std::chrono::milliseconds(0)) {
        detail::check(registrar_client_stop(handle_.get(), detail::millis(timeout)));
    }
    registrar_client *get() const noexcept { return handle_.get(); }

private:
    using Handle = detail::Handle<registrar_client, detail::FreeClient>;
    Handle handle_;
};

/// One instance as the registry serves it (a copy: it outlives the Discovery).
struct Instance {
    std::string instance_id;
    std::string app;
    std::string host_name;
    std::string ip_addr;
    std::uint16_t port = 0;
    std::uint16_t secure_port = 0;
    bool port_enabled = false;
    bool secure_port_enabled = false;
    InstanceStatus status = InstanceStatus::Unknown;
    std::string vip_address;
    std::string home_page_url;
    std::map<std::string, std::string> metadata;
    /// http://host:port (the library's own URL rule).
    std::string url;
};

/// A local copy of the registry, refreshed in the background after start().
class Discovery {
public:
    enum class Lookup : int32_t {
        App = REGISTRAR_LOOKUP_APP,
        Vip = REGISTRAR_LOOKUP_VIP,
        SecureVip = REGISTRAR_LOOKUP_SECURE_VIP,
    };

    explicit Discovery(const Config &config) {
        registrar_discovery *raw = nullptr;
        detail::check(registrar_discovery_new(config.get(), &raw));
        handle_ = Handle(raw);
    }
    void start() { detail::check(registrar_discovery_start(handle_.get())); }
    /// Until the first fetch succeeded; throws REGISTRAR_ERR_TIMEOUT with the reason.
    template <class Rep, class Period>
    void wait_ready(std::chrono::duration<Rep, Period> timeout) {
        detail::check(registrar_discovery_wait_ready(handle_.get(), detail::millis(timeout)));
    }
    /// Fetches now (instead of at the next interval).
    template <class Rep, class Period>
    void refresh(std::chrono::duration<Rep, Period> timeout) {
        detail::check(registrar_discovery_refresh(handle_.get(), detail::millis(timeout)));
    }
    registrar_discovery_info info() const {
        registrar_discovery_info out{};
        detail::check(registrar_discovery_get_info(handle_.get(), &out));
        return out;
    }
    /// The cache's state as JSON (state, counters, last error without credentials, times).
    std::string snapshot_json() const {
        return detail::read_string([&](char *buf, std::size_t len, std::size_t *out) {
            return registrar_discovery_snapshot_json(handle_.get(), buf, len, out);
        });
    }
    /// Why the last refresh failed ("" when it succeeded).
    std::string last_error() const {
        return detail::read_string([&](char *buf, std::size_t len, std::size_t *out) {
            return registrar_discovery_last_error(handle_.get(), buf, len, out);
        });
    }
    /// Until the cached registry's version is above `since`; returns the new version.
    /// Throws REGISTRAR_ERR_TIMEOUT when it does not change within `timeout`.
    template <class Rep, class Period>
    std::uint64_t wait_change(std::uint64_t since, std::chrono::duration<Rep, Period> timeout) {
        std::uint64_t version = 0;
        detail::check(registrar_discovery_wait_change(handle_.get(), since,
                                                      detail::millis(timeout), &version));
        return version;
    }
    /// Called with the new version after each change of the cache, on the discovery thread
    /// (never after stop returns). An empty function removes it.
    void set_listener(std::function<void(std::uint64_t)> listener) {
        using Listener = std::function<void(std::uint64_t)>;
        if (!listener) {
            detail::check(registrar_discovery_set_listener(handle_.get(), nullptr, nullptr, nullptr));
            return;
        }
        auto *held = new Listener(std::move(listener));
        registrar_status status = registrar_discovery_set_listener(
            handle_.get(),
            [](void *user_data, std::uint64_t version) {
                try {
                    (*static_cast<Listener *>(user_data))(version);
                } catch (...) {
                    // A listener that throws misses nothing else; the refresh goes on.
                }
            },
            held, detail::Callback<Listener>::free);
        if (status != REGISTRAR_OK) delete held;
        detail::check(status);
    }
    /// Ready, changed, fetch failing (once per failure streak), recovered: on the discovery
    /// thread, in order, never after stop returns. An empty function removes it.
    void set_event_listener(EventListener listener) {
        detail::set_event_listener(handle_.get(), registrar_discovery_set_event_listener,
                                   std::move(listener));
    }
    /// The library's log messages up to `max_level`, on the discovery thread.
    void set_logger(Logger logger, LogLevel max_level = LogLevel::Info) {
        if (!logger) {
            detail::check(registrar_discovery_set_logger(handle_.get(), nullptr, nullptr, nullptr,
                                                         static_cast<int32_t>(max_level)));
            return;
        }
        auto *held = new Logger(std::move(logger));
        registrar_status status = registrar_discovery_set_logger(
            handle_.get(), detail::log_trampoline, held, detail::Callback<Logger>::free,
            static_cast<int32_t>(max_level));
        if (status != REGISTRAR_OK) delete held;
        detail::check(status);
    }
    /// Every instance of every app (UP only unless `all_statuses`).
    std::vector<Instance> all(bool all_statuses = false) const {
        registrar_instance_list *list = nullptr;
        detail::check(registrar_discovery_all(
            handle_.get(), all_statuses ? REGISTRAR_QUERY_ALL_STATUSES : 0, &list));
        return copy(List(list));
    }
    /// The instance with this id (any status), or nothing.
    std::optional<Instance> instance(std::string_view instance_id) const {
        std::string id = detail::c_string(instance_id, "instance_id");
        registrar_instance_list *list = nullptr;
        detail::check(registrar_discovery_instance(handle_.get(), id.c_str(), &list));
        auto found = copy(List(list));
        if (found.empty()) return std::nullopt;
        return std::move(found.front());
    }
    /// One UP instance, in turn (round robin) or at random; nothing when there is none.
    std::optional<Instance> choose(std::string_view name, Lookup lookup = Lookup::App,
                                   bool random = false) {
        std::string n = detail::c_string(name, "name");
        registrar_instance_list *list = nullptr;
        registrar_status status = registrar_discovery_choose(
            handle_.get(), static_cast<int32_t>(lookup), n.c_str(),
            random ? REGISTRAR_CHOICE_RANDOM : REGISTRAR_CHOICE_ROUND_ROBIN, &list);
        if (status == REGISTRAR_ERR_NOT_FOUND) return std::nullopt;
        detail::check(status);
        auto found = copy(List(list));
        if (found.empty()) return std::nullopt;
        return std::move(found.front());
    }
    /// The UP instances of an app (or VIP), sorted by instance id; empty when none.
    std::vector<Instance> instances(std::string_view name, Lookup lookup = Lookup::App) const {
        std::string n = detail::c_string(name, "name");
        registrar_instance_list *list = nullptr;
        detail::check(registrar_discovery_instances(handle_.get(), static_cast<int32_t>(lookup),
                                                    n.c_str(), 0, &list));
        return copy(List(list));
    }
    /// The base URL of one UP instance, in turn (round robin); nothing when there is none.
    std::optional<std::string> choose_url(std::string_view name, Lookup lookup = Lookup::App) {
        std::string n = detail::c_string(name, "name");
        try {
            return detail::read_string([&](char *buf, std::size_t len, std::size_t *out) {
                return registrar_discovery_choose_url(handle_.get(), static_cast<int32_t>(lookup),
                                                      n.c_str(), REGISTRAR_CHOICE_ROUND_ROBIN, 0,
                                                      buf, len, out);
            });
        } catch (const Error &e) {
            if (e.code() == REGISTRAR_ERR_NOT_FOUND) return std::nullopt;
            throw;
        }
    }
    template <class Rep = long long, class Period = std::milli>
    void stop(std::chrono::duration<Rep, Period> timeout = std::chrono::milliseconds(0)) {
        detail::check(registrar_discovery_stop(handle_.get(), detail::millis(timeout)));
    }
    registrar_discovery *get() const noexcept { return handle_.get(); }

private:
    using Handle = detail::Handle<registrar_discovery, detail::FreeDiscovery>;
    using List = detail::Handle<registrar_instance_list, detail::FreeList>;

    static std::string text(const char *s) { return s ? std::string(s) : std::string(); }

    static std::vector<Instance> copy(const List &list) {
        std::vector<Instance> result;
        std::size_t n = registrar_instance_list_len(list.get());
        result.reserve(n);
        for (std::size_t i = 0; i < n; i++) {
            const registrar_instance *in = registrar_instance_list_get(list.get(), i);
            Instance out;
            out.instance_id = text(in->instance_id);
            out.app = text(in->app);
            out.host_name = text(in->host_name);
            out.ip_addr = text(in->ip_addr);
            out.port = in->port;
            out.secure_port = in->secure_port;
            out.port_enabled = in->port_enabled != 0;
            out.secure_port_enabled = in->secure_port_enabled != 0;
            out.status = static_cast<InstanceStatus>(in->status);
            out.vip_address = text(in->vip_address);
            out.home_page_url = text(in->home_page_url);
            for (std::size_t m = 0; m < in->metadata_len; m++)
                out.metadata.emplace(text(in->metadata[m].key), text(in->metadata[m].value));
            out.url = detail::read_string([&](char *buf, std::size_t len, std::size_t *o) {
                return registrar_instance_list_url(list.get(), i, 0, buf, len, o);
            });
            result.push_back(std::move(out));
        }
        return result;
    }

    Handle handle_;
};

} // namespace registrar

#endif // REGISTRAR_HPP
