package registrar

// Health checks: the host's HealthFunc called by the library's health check thread. This file
// holds the two functions C calls (exported with //export, so its preamble may only declare);
// the C side (rg_health_trampoline, rg_health_free, rg_client_set_health_check) is in capi.go.

/*
#include <stdint.h>
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"strings"
)

// HealthFunc reports the service's health: nil when healthy, an error saying why not.
//
// Once the client has started it is called every REGISTRY_HEALTH_INTERVAL (Config
// HealthInterval, default 10 s) on a thread of the library's, never on the goroutine that
// set it and never twice at once. After REGISTRY_HEALTH_THRESHOLD (HealthThreshold, default
// 3) failures in a row the instance is registered DOWN; after as many passes, with the status
// set by SetStatus again. A call is bounded by the configured Timeout: one that takes longer
// counts as a failure, and no other call starts until it returns. A panic is recovered and
// counts as a failure. Heartbeats never wait for it. No call starts after Close returns.
//
// The error's text (for a panic, "panic: " and the value) is the failure's reason: the
// library logs it and reports it as "the health check failed: <reason>" in the StatusChanged
// event and the snapshot's health.last_failure (at most 512 characters are kept).
type HealthFunc func() error

// setHealthCheck installs f (nil removes the current check) through install, which hands the
// handle to the library. The library frees the handle after its last call; if install fails
// the library did not take it, so it is freed here.
func setHealthCheck(f HealthFunc, install func(handle uintptr) error) error {
	if f == nil {
		return install(0)
	}
	h := cgo.NewHandle(f)
	if err := install(uintptr(h)); err != nil {
		h.Delete()
		return err
	}
	return nil
}

// registrarGoHealth runs the check; when it fails, *reason receives why, in C memory (the
// caller, rg_health_trampoline, hands it to the library and frees it).
//
//export registrarGoHealth
func registrarGoHealth(handle C.uintptr_t, reason **C.char) (healthy C.int32_t) {
	defer func() {
		if r := recover(); r != nil { // a panicking check is a failing one; never unwind into C
			*reason = C.CString(healthReason(fmt.Sprintf("panic: %v", r)))
			healthy = 0
		}
	}()
	f, ok := cgo.Handle(handle).Value().(HealthFunc)
	if !ok {
		return 0
	}
	if err := f(); err != nil {
		*reason = C.CString(healthReason(err.Error()))
		return 0
	}
	return 1
}

// maxHealthReason bounds the text copied into C memory per failing check; the library keeps
// at most 512 characters (up to 4 bytes each) of it anyway.
const maxHealthReason = 2048

// healthReason is text as the library accepts it: no NUL (C.CString would cut there, the rest
// would be lost silently), valid UTF-8 (an error may wrap raw bytes), bounded.
func healthReason(text string) string {
	if len(text) > maxHealthReason {
		text = text[:maxHealthReason]
	}
	text = strings.ToValidUTF8(text, "\uFFFD")
	return strings.ReplaceAll(text, "\x00", "\\x00")
}

//export registrarGoFreeHealth
func registrarGoFreeHealth(handle C.uintptr_t) {
	cgo.Handle(handle).Delete()
}
