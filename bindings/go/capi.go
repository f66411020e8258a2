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
// No Go pointer is kept by C after a call returns and no C code ever calls back into Go.

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

enum { RG_INSTANCE_ID = 0, RG_APP_NAME = 1, RG_LAST_ERROR = 2, RG_METADATA = 3 };

static registrar_status rg_string_call(const registrar_client *c, int which, const char *key,
                                       char *buf, size_t len, size_t *out_len) {
	switch (which) {
	case RG_INSTANCE_ID: return registrar_client_instance_id(c, buf, len, out_len);
	case RG_APP_NAME: return registrar_client_app_name(c, buf, len, out_len);
	case RG_LAST_ERROR: return registrar_client_last_error(c, buf, len, out_len);
	default: return registrar_client_get_metadata(c, key, buf, len, out_len);
	}
}

// Copies one of the client's strings out, growing the buffer until the value fits.
static rg_string rg_get_string(const registrar_client *c, int which, const char *key) {
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
*/
import "C"

import "unsafe"

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

func cLibraryABI() uint32     { return uint32(C.registrar_abi_version()) }
func cLibraryVersion() string { return C.GoString(C.registrar_version()) }
func cStatusName(code Code) string {
	return C.GoString(C.registrar_status_str(C.int32_t(code)))
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
func (c cConfig) free()           { C.registrar_config_free(c.p) }

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
	return stringResult(C.rg_get_string(c.p, C.RG_METADATA, ck))
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
	return stringResult(C.rg_get_string(c.p, C.RG_LAST_ERROR, nil))
}

func (c cClient) instanceID() (string, error) {
	return stringResult(C.rg_get_string(c.p, C.RG_INSTANCE_ID, nil))
}

func (c cClient) appName() (string, error) {
	return stringResult(C.rg_get_string(c.p, C.RG_APP_NAME, nil))
}

func (c cClient) stop(timeoutMs uint32) error {
	return errResult(C.rg_stop(c.p, C.uint32_t(timeoutMs)))
}

func (c cClient) free() { C.registrar_client_free(c.p) }
