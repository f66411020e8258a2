package registrar

// Logging: the C library's log callback delivered to a Go function. This file holds the two
// functions C calls (exported with //export, so its preamble may only declare); the C side
// (rg_log_trampoline, rg_log_free, rg_*_set_logger) is in capi.go. Client and Discovery share
// all of it through setLogger.

/*
#include <stdint.h>
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/cgo"
)

// LogLevel is the severity of a message of the library (registrar_log_level); a logger gets
// the messages of its level and the more severe ones.
type LogLevel int32

const (
	LogError LogLevel = 0
	LogWarn  LogLevel = 1
	LogInfo  LogLevel = 2
	LogDebug LogLevel = 3
)

func (l LogLevel) String() string {
	switch l {
	case LogError:
		return "ERROR"
	case LogWarn:
		return "WARN"
	case LogInfo:
		return "INFO"
	case LogDebug:
		return "DEBUG"
	}
	return fmt.Sprintf("LogLevel(%d)", int32(l))
}

// LogFunc receives the library's log messages. It is called on the library's background
// thread (never after Close returns): it must return quickly, must not call Close on the
// handle that logs, and a panic in it is recovered and dropped (it must not kill that thread).
type LogFunc func(level LogLevel, message string)

// slogLevels maps a LogLevel (registrar_log_level) to slog's level.
var slogLevels = [...]slog.Level{slog.LevelError, slog.LevelWarn, slog.LevelInfo, slog.LevelDebug}

func slogLevel(level LogLevel) slog.Level {
	if level >= 0 && int(level) < len(slogLevels) {
		return slogLevels[level]
	}
	return slog.LevelError
}

// SlogLogger adapts a *slog.Logger: ERROR, WARN, INFO and DEBUG become slog's levels, with
// the attribute component=registrar.
func SlogLogger(l *slog.Logger) LogFunc {
	return func(level LogLevel, message string) {
		l.Log(context.Background(), slogLevel(level), message, "component", "registrar")
	}
}

// defaultLogger is what a handle logs to when Config.Logger is nil: slog.Default() as it is
// when each message is logged (so a later slog.SetDefault is honoured), with the attribute
// component=registrar and the given ones (a client's app and instance). Unless chosen is
// more verbose than LogError, the library sends what slog.Default() has enabled now (INFO for
// the standard default handler, DEBUG if enabled): slog decides, as Go programs expect.
func defaultLogger(chosen LogLevel, attrs ...any) (LogFunc, LogLevel) {
	attrs = append([]any{"component", "registrar"}, attrs...)
	f := func(level LogLevel, message string) {
		slog.Default().Log(context.Background(), slogLevel(level), message, attrs...)
	}
	if chosen != LogError {
		return f, chosen
	}
	level := LogError
	for l := LogDebug; l > LogError; l-- {
		if slog.Default().Enabled(context.Background(), slogLevel(l)) {
			level = l
			break
		}
	}
	return f, level
}

// setLogger installs f (nil removes the current logger) through install, which hands the
// handle to the library. The library frees the handle after its last call; if install fails
// the library did not take it, so it is freed here.
func setLogger(f LogFunc, install func(handle uintptr) error) error {
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

//export registrarGoLog
func registrarGoLog(handle C.uintptr_t, level C.int32_t, message *C.char) {
	defer func() { _ = recover() }() // a panicking LogFunc must not unwind into the C thread
	if f, ok := cgo.Handle(handle).Value().(LogFunc); ok {
		f(LogLevel(level), C.GoString(message))
	}
}

//export registrarGoFreeLog
func registrarGoFreeLog(handle C.uintptr_t) {
	cgo.Handle(handle).Delete()
}
