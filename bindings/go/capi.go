package registrar

// The only file that calls C. Every fallible registrar function is called through a small
// helper in the preamble below that, when the call fails, reads the thread-local error
// message in the SAME C call (registrar_last_error_message) and hands it back in malloc'd
// memory. Go may move a goroutine to another OS thread between two cgo calls, so reading the
// message with a second cgo call could read another thread's message (or none).
//
// Strings that the library copies out snprintf-style are also fetched entirely inside one C
// call (retrying with a bigger buffer if needed), so a concurrent change cannot truncate them.
//
// No Go pointer is kept by C after a call returns. C calls back into Go through the log
// callback (logger.go), the health check (health.go) and the event listener (events.go): the
// library's threads call rg_*_trampoline with a cgo.Handle (an integer, not a Go pointer) as
// user_data, and rg_*_free releases it.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#include <stdlib.h>
#include <string.h>
#include "registrar.h"

#if REGISTRAR_ABI_VERSION != 1
#error "bindings/go is written for REGISTRAR_ABI_VERSION 1; update it together with include/registrar.h"
#endif

typedef struct {
	int32_t status;
	char *msg; // malloc'd message when status != 0 (may be NULL if malloc failed)
} rg_result;

typedef struct {
	int32_t status;
	char *msg;   // as above
	char *value; // malloc'd value when status == 0
	size_t len;
} rg_string;

// ---- logging: C -> Go (the exported functions live in logger.go) ----

extern void registrarGoLog(uintptr_t handle, int32_t level, char *message);
extern void registrarGoFreeLog(uintptr_t handle);

static void rg_log_trampoline(void *user_data, int32_t level, const char *message) {
	registrarGoLog((uintptr_t)user_data, level, (char *)message);
}

static void rg_log_free(void *user_data) {
	registrarGoFreeLog((uintptr_t)user_data);
}

// ---- health checks: C -> Go (the exported functions live in health.go) ----

extern int32_t registrarGoHealth(uintptr_t handle, char **reason);
extern void registrarGoFreeHealth(uintptr_t handle);

// The Go check hands back why it failed as a malloc'd string; it is given to the library
// here, on the thread the library runs the check on and during the call (where
// registrar_health_check_set_reason looks), then freed.
static int32_t rg_health_trampoline(void *user_data) {
	char *reason = NULL;
	int32_t healthy = registrarGoHealth((uintptr_t)user_data, &reason);
	if (reason != NULL) {
		if (healthy == 0) (void)registrar_health_check_set_reason(reason);
		free(reason);
	}
	return healthy;
}

static void rg_health_free(void *user_data) {
	registrarGoFreeHealth((uintptr_t)user_data);
}

// ---- events: C -> Go (the exported functions live in events.go) ----

extern void registrarGoEvent(uintptr_t handle, registrar_event *event);
extern void registrarGoFreeEvent(uintptr_t handle);

static void rg_event_trampoline(void *user_data, const registrar_event *event) {
	registrarGoEvent((uintptr_t)user_data, (registrar_event *)event);
}

static void rg_event_free(void *user_data) {
	registrarGoFreeEvent((uintptr_t)user_data);
}

static char *rg_take_error(void) {
	size_t n = registrar_last_error_message(NULL, 0);
	char *buf = malloc(n + 1);
	if (buf == NULL) return NULL;
	registrar_last_error_message(buf, n + 1);
	return buf;
}

static rg_result rg_done(registrar_status st) {
	rg_result r = { (int32_t)st, NULL };
	if (st != REGISTRAR_OK) r.msg = rg_take_error();
	return r;
}

static rg_result rg_config_new(registrar_config **out) {
	return rg_done(registrar_config_new(out));
}

static rg_result rg_config_set(registrar_config *cfg, const char *key, const char *value) {
	return rg_done(registrar_config_set(cfg, key, value));
}

static rg_result rg_config_validate(const registrar_config *cfg) {
	return rg_done(registrar_config_validate(cfg));
}

static rg_result rg_client_new(const registrar_config *cfg, registrar_client **out) {
	return rg_done(registrar_client_new(cfg, out));
}

// handle 0 removes the logger; otherwise the library owns the handle from now on and frees
// it through rg_log_free after its last call (on failure it is not taken: Go frees it).
// handle 0 removes the health check; otherwise the library owns the handle from now on and
// frees it through rg_health_free after its last call (on failure it is not taken).
static rg_result rg_client_set_health_check(const registrar_client *c, uintptr_t handle) {
	if (handle == 0) return rg_done(registrar_client_set_health_check(c, NULL, NULL, NULL));
	return rg_done(registrar_client_set_health_check(c, rg_health_trampoline, (void *)handle, rg_health_free));
}

static rg_result rg_client_set_logger(const registrar_client *c, uintptr_t handle, int32_t max_level) {
	if (handle == 0) return rg_done(registrar_client_set_logger(c, NULL, NULL, NULL, max_level));
	return rg_done(registrar_client_set_logger(c, rg_log_trampoline, (void *)handle, rg_log_free, max_level));
}

// The library owns the handle from now on and frees it through rg_event_free after its last
// call (on failure it is not taken: Go frees it).
static rg_result rg_client_set_event_listener(const registrar_client *c, uintptr_t handle) {
	return rg_done(registrar_client_set_event_listener(c, rg_event_trampoline, (void *)handle, rg_event_free));
}

static rg_result rg_start(const registrar_client *c) {
	return rg_done(registrar_client_start(c));
}

static rg_result rg_wait_registered(const registrar_client *c, uint32_t timeout_ms) {
	return rg_done(registrar_client_wait_registered(c, timeout_ms));
}

static rg_result rg_set_status(const registrar_client *c, int32_t status) {
	return rg_done(registrar_client_set_status(c, status));
}

static rg_result rg_set_metadata(const registrar_client *c, const char *key, const char *value) {
	return rg_done(registrar_client_set_metadata(c, key, value));
}

static rg_result rg_get_info(const registrar_client *c, registrar_client_info *out) {
	return rg_done(registrar_client_get_info(c, out));
}

static rg_result rg_stop(const registrar_client *c, uint32_t timeout_ms) {
	return rg_done(registrar_client_stop(c, timeout_ms));
}

enum { RG_INSTANCE_ID = 0, RG_APP_NAME = 1, RG_LAST_ERROR = 2, RG_METADATA = 3,
       RG_CONFIG_DESCRIBE = 4 };

// handle is a registrar_client, or the registrar_config for RG_CONFIG_DESCRIBE.
static registrar_status rg_string_call(const void *handle, int which, const char *key,
                                       char *buf, size_t len, size_t *out_len) {
	const registrar_client *c = handle;
	switch (which) {
	case RG_CONFIG_DESCRIBE: return registrar_config_describe(handle, buf, len, out_len);
	case RG_INSTANCE_ID: return registrar_client_instance_id(c, buf, len, out_len);
	case RG_APP_NAME: return registrar_client_app_name(c, buf, len, out_len);
	case RG_LAST_ERROR: return registrar_client_last_error(c, buf, len, out_len);
	default: return registrar_client_get_metadata(c, key, buf, len, out_len);
	}
}

// Copies one of the client's (or config's) strings out, growing the buffer until it fits.
static rg_string rg_get_string(const void *c, int which, const char *key) {
	rg_string r = { 0, NULL, NULL, 0 };
	size_t cap = 128;
	for (int attempt = 0; attempt < 16; attempt++) {
		char *buf = malloc(cap);
		if (buf == NULL) break;
		size_t need = 0;
		registrar_status st = rg_string_call(c, which, key, buf, cap, &need);
		if (st != REGISTRAR_OK) {
			free(buf);
			r.status = (int32_t)st;
			r.msg = rg_take_error();
			return r;
		}
		if (need < cap) {
			r.value = buf;
			r.len = need;
			return r;
		}
		free(buf); // changed (grew) under us, or the first guess was small: retry
		cap = need + 1;
	}
	r.status = REGISTRAR_ERR_PANIC;
	r.msg = NULL;
	return r;
}

// ---- discovery ----

static rg_result rg_discovery_new(const registrar_config *cfg, registrar_discovery **out) {
	return rg_done(registrar_discovery_new(cfg, out));
}

static rg_result rg_discovery_start(const registrar_discovery *d) {
	return rg_done(registrar_discovery_start(d));
}

static rg_result rg_discovery_wait_ready(const registrar_discovery *d, uint32_t timeout_ms) {
	return rg_done(registrar_discovery_wait_ready(d, timeout_ms));
}

static rg_result rg_discovery_refresh(const registrar_discovery *d, uint32_t timeout_ms) {
	return rg_done(registrar_discovery_refresh(d, timeout_ms));
}

static rg_result rg_discovery_wait_change(const registrar_discovery *d, uint64_t since,
                                          uint32_t timeout_ms, uint64_t *out) {
	return rg_done(registrar_discovery_wait_change(d, since, timeout_ms, out));
}

static rg_result rg_discovery_get_info(const registrar_discovery *d, registrar_discovery_info *out) {
	return rg_done(registrar_discovery_get_info(d, out));
}

static rg_result rg_discovery_instances(const registrar_discovery *d, int32_t lookup,
                                        const char *name, uint32_t flags,
                                        registrar_instance_list **out) {
	return rg_done(registrar_discovery_instances(d, lookup, name, flags, out));
}

static rg_result rg_discovery_all(const registrar_discovery *d, uint32_t flags,
                                  registrar_instance_list **out) {
	return rg_done(registrar_discovery_all(d, flags, out));
}

static rg_result rg_discovery_instance(const registrar_discovery *d, const char *id,
                                       registrar_instance_list **out) {
	return rg_done(registrar_discovery_instance(d, id, out));
}

static rg_result rg_discovery_choose(const registrar_discovery *d, int32_t lookup,
                                     const char *name, int32_t choice,
                                     registrar_instance_list **out) {
	return rg_done(registrar_discovery_choose(d, lookup, name, choice, out));
}

static rg_result rg_discovery_set_logger(const registrar_discovery *d, uintptr_t handle, int32_t max_level) {
	if (handle == 0) return rg_done(registrar_discovery_set_logger(d, NULL, NULL, NULL, max_level));
	return rg_done(registrar_discovery_set_logger(d, rg_log_trampoline, (void *)handle, rg_log_free, max_level));
}

static rg_result rg_discovery_set_event_listener(const registrar_discovery *d, uintptr_t handle) {
	return rg_done(registrar_discovery_set_event_listener(d, rg_event_trampoline, (void *)handle, rg_event_free));
}

static rg_result rg_discovery_stop(const registrar_discovery *d, uint32_t timeout_ms) {
	return rg_done(registrar_discovery_stop(d, timeout_ms));
}

// The last refresh's failure message, grown until it fits (like rg_get_string).
static rg_string rg_discovery_last_error(const registrar_discovery *d) {
	rg_string r = { 0, NULL, NULL, 0 };
	size_t cap = 128;
	for (int attempt = 0; attempt < 16; attempt++) {
		char *buf = malloc(cap);
		if (buf == NULL) break;
		size_t need = 0;
		registrar_status st = registrar_discovery_last_error(d, buf, cap, &need);
		if (st != REGISTRAR_OK) {
			free(buf);
			r.status = (int32_t)st;
			r.msg = rg_take_error();
			return r;
		}
		if (need < cap) {
			r.value = buf;
			r.len = need;
			return r;
		}
		free(buf);
		// The text may grow before the next call (the metrics do all the time): room to spare.
		cap = need + need / 4 + 256;
	}
	r.status = REGISTRAR_ERR_PANIC;
	return r;
}

// Chooses an UP instance and copies its base URL. 512 bytes fits real host names; if the URL
// was truncated the call is repeated with a big enough buffer (that chooses again, as the
// header says).
static rg_string rg_discovery_choose_url(const registrar_discovery *d, int32_t lookup,
                                         const char *name, int32_t choice, uint32_t flags) {
	rg_string r = { 0, NULL, NULL, 0 };
	size_t cap = 512;
	for (int attempt = 0; attempt < 16; attempt++) {
		char *buf = malloc(cap);
		if (buf == NULL) break;
		size_t need = 0;
		registrar_status st = registrar_discovery_choose_url(d, lookup, name, choice, flags,
		                                                     buf, cap, &need);
		if (st != REGISTRAR_OK) {
			free(buf);
			r.status = (int32_t)st;
			r.msg = rg_take_error();
			return r;
		}
		if (need < cap) {
			r.value = buf;
			r.len = need;
			return r;
		}
		free(buf);
		// The text may grow before the next call (the metrics do all the time): room to spare.
		cap = need + need / 4 + 256;
	}
	r.status = REGISTRAR_ERR_PANIC;
	return r;
}

// ---- texts: JSON snapshots and metrics ----

enum { RG_CLIENT_SNAPSHOT = 0, RG_DISCOVERY_SNAPSHOT = 1, RG_METRICS = 2 };

static registrar_status rg_text_call(const void *h, int which, char *buf, size_t len,
                                     size_t *out_len) {
	switch (which) {
	case RG_CLIENT_SNAPSHOT:
		return registrar_client_snapshot_json((const registrar_client *)h, buf, len, out_len);
	case RG_DISCOVERY_SNAPSHOT:
		return registrar_discovery_snapshot_json((const registrar_discovery *)h, buf, len, out_len);
	default:
		return registrar_metrics_text(buf, len, out_len);
	}
}

// Copies one text out, growing the buffer until it fits (like rg_get_string).
static rg_string rg_get_text(const void *h, int which) {
	rg_string r = { 0, NULL, NULL, 0 };
	size_t cap = 4096;
	for (int attempt = 0; attempt < 16; attempt++) {
		char *buf = malloc(cap);
		if (buf == NULL) break;
		size_t need = 0;
		registrar_status st = rg_text_call(h, which, buf, cap, &need);
		if (st != REGISTRAR_OK) {
			free(buf);
			r.status = (int32_t)st;
			r.msg = rg_take_error();
			return r;
		}
		if (need < cap) {
			r.value = buf;
			r.len = need;
			return r;
		}
		free(buf);
		// The text may grow before the next call (the metrics do all the time): room to spare.
		cap = need + need / 4 + 256;
	}
	r.status = REGISTRAR_ERR_PANIC;
	return r;
}
*/
import "C"

import (
	"time"
	"unsafe"
)

// abiVersion is the REGISTRAR_ABI_VERSION this package is written for.
const abiVersion = 1

// errResult turns a helper's result into a Go error, freeing the C message.
func errResult(r C.rg_result) error {
	if r.status == 0 {
		return nil
	}
	msg := ""
	if r.msg != nil {
		msg = C.GoString(r.msg)
		C.free(unsafe.Pointer(r.msg))
	}
	return newError(Code(r.status), msg)
}

func stringResult(r C.rg_string) (string, error) {
	if r.status != 0 {
		return "", errResult(C.rg_result{status: r.status, msg: r.msg})
	}
	s := C.GoStringN(r.value, C.int(r.len))
	C.free(unsafe.Pointer(r.value))
	return s, nil
}

// cMetricsText is registrar_metrics_text: the process's metrics, Prometheus text format.
func cMetricsText() (string, error) {
	return stringResult(C.rg_get_text(nil, C.RG_METRICS))
}

func cLibraryABI() uint32     { return uint32(C.registrar_abi_version()) }
func cLibraryVersion() string { return C.GoString(C.registrar_version()) }
func cStatusName(code Code) string {
	return C.GoString(C.registrar_status_str(C.int32_t(code)))
}

// cSettings reads the library's list of settings (static strings, never freed).
func cSettings() []Setting {
	n := int(C.registrar_setting_count())
	out := make([]Setting, 0, n)
	for i := 0; i < n; i++ {
		name := C.registrar_setting_name(C.size_t(i))
		if name == nil {
			break
		}
		out = append(out, Setting{
			Name:        C.GoString(name),
			Description: C.GoString(C.registrar_setting_description(C.size_t(i))),
		})
	}
	return out
}

// cConfig is a registrar_config owned by Go code; free it with free().
type cConfig struct{ p *C.registrar_config }

func newCConfig() (cConfig, error) {
	var p *C.registrar_config
	if err := errResult(C.rg_config_new(&p)); err != nil {
		return cConfig{}, err
	}
	return cConfig{p}, nil
}

func (c cConfig) set(key, value string) error {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	cv := C.CString(value)
	defer C.free(unsafe.Pointer(cv))
	return errResult(C.rg_config_set(c.p, ck, cv))
}

func (c cConfig) validate() error { return errResult(C.rg_config_validate(c.p)) }

// describe is the library's description of the settings, credentials hidden.
func (c cConfig) describe() (string, error) {
	return stringResult(C.rg_get_string(unsafe.Pointer(c.p), C.RG_CONFIG_DESCRIBE, nil))
}
func (c cConfig) free() { C.registrar_config_free(c.p) }

// cClient is the raw handle. Its methods do no locking: Client's handle does that.
type cClient struct{ p *C.registrar_client }

func newCClient(cfg cConfig) (cClient, error) {
	var p *C.registrar_client
	if err := errResult(C.rg_client_new(cfg.p, &p)); err != nil {
		return cClient{}, err
	}
	return cClient{p}, nil
}

func (c cClient) start() error { return errResult(C.rg_start(c.p)) }

func (c cClient) setLogger(handle uintptr, max LogLevel) error {
	return errResult(C.rg_client_set_logger(c.p, C.uintptr_t(handle), C.int32_t(max)))
}

func (c cClient) setHealthCheck(handle uintptr) error {
	return errResult(C.rg_client_set_health_check(c.p, C.uintptr_t(handle)))
}

func (c cClient) setEventListener(handle uintptr) error {
	return errResult(C.rg_client_set_event_listener(c.p, C.uintptr_t(handle)))
}

func (c cClient) waitRegistered(timeoutMs uint32) error {
	return errResult(C.rg_wait_registered(c.p, C.uint32_t(timeoutMs)))
}

func (c cClient) setStatus(s Status) error {
	return errResult(C.rg_set_status(c.p, C.int32_t(s)))
}

func (c cClient) setMetadata(key string, value *string) error {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var cv *C.char
	if value != nil {
		cv = C.CString(*value)
		defer C.free(unsafe.Pointer(cv))
	}
	return errResult(C.rg_set_metadata(c.p, ck, cv))
}

func (c cClient) metadata(key string) (string, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	return stringResult(C.rg_get_string(unsafe.Pointer(c.p), C.RG_METADATA, ck))
}

func (c cClient) info() (Info, error) {
	var raw C.registrar_client_info
	if err := errResult(C.rg_get_info(c.p, &raw)); err != nil {
		return Info{}, err
	}
	return Info{
		State:          State(raw.state),
		Status:         Status(raw.status),
		LastError:      Code(raw.last_error),
		Registrations:  uint64(raw.registrations),
		Heartbeats:     uint64(raw.heartbeats),
		FailedRequests: uint64(raw.failed_requests),
	}, nil
}

func (c cClient) lastErrorMessage() (string, error) {
	return stringResult(C.rg_get_string(unsafe.Pointer(c.p), C.RG_LAST_ERROR, nil))
}

func (c cClient) instanceID() (string, error) {
	return stringResult(C.rg_get_string(unsafe.Pointer(c.p), C.RG_INSTANCE_ID, nil))
}

func (c cClient) appName() (string, error) {
	return stringResult(C.rg_get_string(unsafe.Pointer(c.p), C.RG_APP_NAME, nil))
}

func (c cClient) snapshotJSON() (string, error) {
	return stringResult(C.rg_get_text(unsafe.Pointer(c.p), C.RG_CLIENT_SNAPSHOT))
}

func (c cClient) stop(timeoutMs uint32) error {
	return errResult(C.rg_stop(c.p, C.uint32_t(timeoutMs)))
}

func (c cClient) free() { C.registrar_client_free(c.p) }

// ---- discovery ----

// cDiscovery is the raw discovery handle. Its methods do no locking: Discovery's
// discoveryHandle does that.
type cDiscovery struct{ p *C.registrar_discovery }

func newCDiscovery(cfg cConfig) (cDiscovery, error) {
	var p *C.registrar_discovery
	if err := errResult(C.rg_discovery_new(cfg.p, &p)); err != nil {
		return cDiscovery{}, err
	}
	return cDiscovery{p}, nil
}

func (d cDiscovery) start() error { return errResult(C.rg_discovery_start(d.p)) }

func (d cDiscovery) setLogger(handle uintptr, max LogLevel) error {
	return errResult(C.rg_discovery_set_logger(d.p, C.uintptr_t(handle), C.int32_t(max)))
}

func (d cDiscovery) setEventListener(handle uintptr) error {
	return errResult(C.rg_discovery_set_event_listener(d.p, C.uintptr_t(handle)))
}

func (d cDiscovery) waitReady(timeoutMs uint32) error {
	return errResult(C.rg_discovery_wait_ready(d.p, C.uint32_t(timeoutMs)))
}

func (d cDiscovery) refresh(timeoutMs uint32) error {
	return errResult(C.rg_discovery_refresh(d.p, C.uint32_t(timeoutMs)))
}

func (d cDiscovery) waitChange(since uint64, timeoutMs uint32) (uint64, error) {
	var v C.uint64_t
	err := errResult(C.rg_discovery_wait_change(d.p, C.uint64_t(since), C.uint32_t(timeoutMs), &v))
	return uint64(v), err
}

func (d cDiscovery) info() (DiscoveryInfo, error) {
	var raw C.registrar_discovery_info
	if err := errResult(C.rg_discovery_get_info(d.p, &raw)); err != nil {
		return DiscoveryInfo{}, err
	}
	return DiscoveryInfo{
		State:           DiscoveryState(raw.state),
		Ready:           raw.ready != 0,
		Version:         uint64(raw.version),
		Apps:            uint64(raw.apps),
		Instances:       uint64(raw.instances),
		Age:             time.Duration(int64(raw.age_ms)) * time.Millisecond,
		LastError:       Code(raw.last_error),
		FullFetches:     uint64(raw.full_fetches),
		DeltaFetches:    uint64(raw.delta_fetches),
		HashMismatches:  uint64(raw.hash_mismatches),
		FailedRefreshes: uint64(raw.failed_refreshes),
	}, nil
}

func (d cDiscovery) lastErrorMessage() (string, error) {
	return stringResult(C.rg_discovery_last_error(d.p))
}

// Lookup says what the name of a discovery query is.
type Lookup int32

const (
	LookupApp       Lookup = C.REGISTRAR_LOOKUP_APP        // an application name (case-insensitive)
	LookupVIP       Lookup = C.REGISTRAR_LOOKUP_VIP        // a VIP address (exact)
	LookupSecureVIP Lookup = C.REGISTRAR_LOOKUP_SECURE_VIP // a secure VIP address (exact)
)

// Choice is how Discovery.ChooseBy picks one of the UP instances.
type Choice int32

const (
	RoundRobin Choice = C.REGISTRAR_CHOICE_ROUND_ROBIN // each UP instance in turn, evenly, across refreshes
	Random     Choice = C.REGISTRAR_CHOICE_RANDOM      // one at random
)

// URLFlags shape a base URL (Discovery.ChooseURLBy, Instance.URLWith); combine with |.
type URLFlags uint32

const (
	// URLSecure gives "https://host:securePort" when the instance's secure port is enabled.
	URLSecure URLFlags = C.REGISTRAR_URL_SECURE
	// URLUseIP puts the instance's IP address in place of its host name.
	URLUseIP URLFlags = C.REGISTRAR_URL_USE_IP
)

func queryFlags(all bool) C.uint32_t {
	if all {
		return C.REGISTRAR_QUERY_ALL_STATUSES
	}
	return 0
}

func (d cDiscovery) instances(lookup Lookup, name string, all bool) ([]Instance, error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var list *C.registrar_instance_list
	if err := errResult(C.rg_discovery_instances(d.p, C.int32_t(lookup), cn, queryFlags(all), &list)); err != nil {
		return nil, err
	}
	return takeList(list), nil
}

func (d cDiscovery) all(all bool) ([]Instance, error) {
	var list *C.registrar_instance_list
	if err := errResult(C.rg_discovery_all(d.p, queryFlags(all), &list)); err != nil {
		return nil, err
	}
	return takeList(list), nil
}

func (d cDiscovery) instance(id string) ([]Instance, error) {
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	var list *C.registrar_instance_list
	if err := errResult(C.rg_discovery_instance(d.p, cid, &list)); err != nil {
		return nil, err
	}
	return takeList(list), nil
}

func (d cDiscovery) choose(lookup Lookup, name string, choice Choice) ([]Instance, error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var list *C.registrar_instance_list
	err := errResult(C.rg_discovery_choose(d.p, C.int32_t(lookup), cn, C.int32_t(choice), &list))
	if err != nil {
		return nil, err
	}
	return takeList(list), nil
}

func (d cDiscovery) chooseURL(lookup Lookup, name string, choice Choice, flags URLFlags) (string, error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return stringResult(C.rg_discovery_choose_url(d.p, C.int32_t(lookup), cn, C.int32_t(choice), C.uint32_t(flags)))
}

func (d cDiscovery) snapshotJSON() (string, error) {
	return stringResult(C.rg_get_text(unsafe.Pointer(d.p), C.RG_DISCOVERY_SNAPSHOT))
}

func (d cDiscovery) stop(timeoutMs uint32) error {
	return errResult(C.rg_discovery_stop(d.p, C.uint32_t(timeoutMs)))
}

func (d cDiscovery) free() { C.registrar_discovery_free(d.p) }

// takeList copies every instance of a C list into Go values and frees the list.
func takeList(list *C.registrar_instance_list) []Instance {
	defer C.registrar_instance_list_free(list)
	n := int(C.registrar_instance_list_len(list))
	out := make([]Instance, 0, n)
	for i := 0; i < n; i++ {
		raw := C.registrar_instance_list_get(list, C.size_t(i))
		if raw == nil {
			break
		}
		out = append(out, copyInstance(raw))
	}
	return out
}

func copyInstance(raw *C.registrar_instance) Instance {
	inst := Instance{
		ID:                C.GoString(raw.instance_id),
		App:               C.GoString(raw.app),
		HostName:          C.GoString(raw.host_name),
		IPAddr:            C.GoString(raw.ip_addr),
		Port:              int(raw.port),
		PortEnabled:       raw.port_enabled != 0,
		SecurePort:        int(raw.secure_port),
		SecurePortEnabled: raw.secure_port_enabled != 0,
		Status:            Status(raw.status),
		OverriddenStatus:  Status(raw.overridden_status),
		VIPAddress:        C.GoString(raw.vip_address),
		SecureVIPAddress:  C.GoString(raw.secure_vip_address),
		HomePageURL:       C.GoString(raw.home_page_url),
		StatusPageURL:     C.GoString(raw.status_page_url),
		HealthCheckURL:    C.GoString(raw.health_check_url),
		LastUpdated:       epochMillis(uint64(raw.last_updated_timestamp)),
		LastDirty:         epochMillis(uint64(raw.last_dirty_timestamp)),
	}
	if n := int(raw.metadata_len); n > 0 && raw.metadata != nil {
		entries := unsafe.Slice(raw.metadata, n)
		inst.Metadata = make(map[string]string, n)
		for _, e := range entries {
			inst.Metadata[C.GoString(e.key)] = C.GoString(e.value)
		}
	}
	return inst
}

func epochMillis(ms uint64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}
