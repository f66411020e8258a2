package registrar

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"sync/atomic"
	"time"
)

// Status is the status of an instance in the registry.
type Status int32

const (
	StatusUnknown      Status = 0 // never registered on purpose
	StatusUp           Status = 1 // ready to receive traffic
	StatusDown         Status = 2 // not able to serve
	StatusStarting     Status = 3 // the default until told otherwise
	StatusOutOfService Status = 4 // taken out of traffic on purpose
)

func (s Status) String() string {
	switch s {
	case StatusUnknown:
		return "UNKNOWN"
	case StatusUp:
		return "UP"
	case StatusDown:
		return "DOWN"
	case StatusStarting:
		return "STARTING"
	case StatusOutOfService:
		return "OUT_OF_SERVICE"
	}
	return fmt.Sprintf("Status(%d)", int32(s))
}

// State is where a client is in its lifecycle.
type State int32

const (
	StateNotStarted  State = 0 // created, not started
	StateRegistering State = 1 // started; the registry has not (or no longer) accepted it: retrying
	StateRegistered  State = 2 // the registry holds the instance; heartbeats are running
	StateStopped     State = 3 // deregistered (or gave up within the stop timeout), or closed
)

func (s State) String() string {
	switch s {
	case StateNotStarted:
		return "NOT_STARTED"
	case StateRegistering:
		return "REGISTERING"
	case StateRegistered:
		return "REGISTERED"
	case StateStopped:
		return "STOPPED"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Info is a snapshot of a client.
type Info struct {
	State State
	// Status is the status this process wants the registry to show.
	Status Status
	// LastError is the code of the background thread's most recent failure, CodeOK if the
	// last request succeeded. Client.LastError returns it with its message.
	LastError      Code
	Registrations  uint64 // registrations (POST) the registry accepted
	Heartbeats     uint64 // heartbeats (PUT) the registry accepted
	FailedRequests uint64 // requests that failed (unreachable, timeout, rejected)
}

// Version returns the version of the linked C library, e.g. "0.1.0".
func Version() string { return cLibraryVersion() }

// ABIVersion returns the ABI number of the linked C library.
func ABIVersion() uint32 { return cLibraryABI() }

// initErr is set at init when the linked library does not have the ABI this package
// expects; every constructor then returns it.
var initErr error

func init() {
	if got := cLibraryABI(); got != abiVersion {
		initErr = fmt.Errorf("registrar: the linked C library has ABI version %d (library %s), "+
			"but this Go package is written for ABI version %d: rebuild the library "+
			"(cargo build --release) from the same checkout as the Go module", got, cLibraryVersion(), abiVersion)
	}
}

func checkLibrary() error { return initErr }

// waitSlice bounds each blocking C call of WaitRegistered, so that a cancelled context is
// noticed within this time.
const waitSlice = 50 * time.Millisecond

// Client is a registration with a Eureka registry, kept alive (heartbeats, re-registration
// when the registry forgets it) by the C library's background thread.
//
// All methods are safe for concurrent use by many goroutines. Close deregisters and frees;
// calls after Close return ErrShutDown. A Client that becomes unreachable without Close is
// closed by a cleanup as a safety net, but do call Close: a cleanup may run late or never.
type Client struct {
	h          *handle
	cleanup    runtime.Cleanup
	instanceID string
	appName    string
}

// handle guards the C client pointer (see guarded).
type handle = guarded[cClient]

// cleanupsRun counts clients closed by the cleanup (tests use it).
var cleanupsRun atomic.Int64

var errClosed = &Error{Code: CodeShutDown, Message: "the client is closed"}

// Start validates cfg, creates a client and starts its background thread, which registers
// the instance (retrying with backoff while the registry is unreachable) and then sends
// heartbeats. It returns at once: use WaitRegistered to know when the registry accepted the
// registration. Errors: ErrInvalidConfig (the message names the setting), ErrInvalidArgument
// (a bad metadata key), ErrTransport.
func Start(cfg Config) (*Client, error) {
	if err := checkLibrary(); err != nil {
		return nil, err
	}
	cc, err := cfg.toC()
	if err != nil {
		return nil, err
	}
	raw, err := newCClient(cc)
	cc.free()
	if err != nil {
		return nil, err
	}
	h := &handle{c: raw, closed: errClosed, events: newEventStream()}
	// Before the start: the first registration already carries these.
	if err := applyInitial(raw, cfg); err != nil {
		h.close(0)
		return nil, err
	}
	id, err1 := raw.instanceID()
	app, err2 := raw.appName()
	if err := firstErr(err1, err2); err != nil {
		h.close(0)
		return nil, err
	}
	// Installed before the start, so the first request's failure is logged too.
	logger, level := cfg.Logger, cfg.LogLevel
	if logger == nil {
		logger, level = defaultLogger(level, "app", app, "instance", id)
	}
	if err := setLogger(logger, func(lh uintptr) error { return raw.setLogger(lh, level) }); err != nil {
		h.close(0)
		return nil, err
	}
	if cfg.HealthCheck != nil {
		if err := setHealthCheck(cfg.HealthCheck, raw.setHealthCheck); err != nil {
			h.close(0)
			return nil, err
		}
	}
	// Before the start too, so the channel sees every event from Registered on.
	if err := h.events.install(raw.setEventListener); err != nil {
		h.close(0)
		return nil, err
	}
	if err := raw.start(); err != nil {
		h.close(0)
		return nil, err
	}
	c := &Client{h: h, instanceID: id, appName: app}
	c.cleanup = runtime.AddCleanup(c, func(h *handle) {
		cleanupsRun.Add(1)
		// Closing waits for the deregistration: not on the runtime's cleanup goroutine.
		go h.close(0)
	}, h)
	return c, nil
}

func applyInitial(raw cClient, cfg Config) error {
	keys := make([]string, 0, len(cfg.Metadata))
	for k := range cfg.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := cfg.Metadata[k]
		if err := raw.setMetadata(k, &v); err != nil {
			return err
		}
	}
	if cfg.Status != StatusUnknown {
		return raw.setStatus(cfg.Status)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// InstanceID returns the instance id, e.g. "host:APP:8080".
func (c *Client) InstanceID() string { return c.instanceID }

// AppName returns the application name as registered (upper-case).
func (c *Client) AppName() string { return c.appName }

// SetStatus sets the status the registry should show (not StatusUnknown). It returns
// without waiting; the background thread re-registers at once. Call WaitRegistered to know
// when the registry shows it.
func (c *Client) SetStatus(s Status) error {
	defer runtime.KeepAlive(c)
	return c.h.use(func(cc cClient) error { return cc.setStatus(s) })
}

// SetLogger sends the library's log messages of level max or more severe to f, on the
// client's background thread (see LogFunc); nil f removes the current logger. The library
// logs nothing unless asked, and a failure once per distinct problem, not once per retry.
// Errors: ErrInvalidArgument (bad level), ErrShutDown.
func (c *Client) SetLogger(f LogFunc, max LogLevel) error {
	defer runtime.KeepAlive(c)
	return c.h.use(func(cc cClient) error {
		return setLogger(f, func(h uintptr) error { return cc.setLogger(h, max) })
	})
}

// SetHealthCheck sets the service's health check (see HealthFunc); nil removes it (the
// REGISTRY_HEALTH_URL check, if configured, applies again). The verdict starts over as
// healthy. Errors: ErrShutDown.
func (c *Client) SetHealthCheck(f HealthFunc) error {
	defer runtime.KeepAlive(c)
	return c.h.use(func(cc cClient) error { return setHealthCheck(f, cc.setHealthCheck) })
}

// Events returns the client's events, in order: EventRegistered, EventRegistrationLost (with
// the Reason), EventReregistered, EventStatusChanged (with the Cause: host, health check,
// Close's drain) and, last, EventStopped. The channel (capacity EventBufferSize; when it is
// full the oldest event is dropped, see EventsDropped) is the same on every call, receives
// from Start on, and is closed once Close or Shutdown has returned. Reading it is optional.
func (c *Client) Events() <-chan Event { return c.h.events.ch }

// EventsDropped returns how many events were dropped because the Events channel was full.
func (c *Client) EventsDropped() uint64 { return c.h.events.dropped.Load() }

// Up marks the instance ready for traffic (SetStatus(StatusUp)).
func (c *Client) Up() error { return c.SetStatus(StatusUp) }

// Down marks the instance unable to serve (SetStatus(StatusDown)).
func (c *Client) Down() error { return c.SetStatus(StatusDown) }

// OutOfService takes the instance out of traffic (SetStatus(StatusOutOfService)).
func (c *Client) OutOfService() error { return c.SetStatus(StatusOutOfService) }

// SetMetadata sets a metadata entry; it reaches the registry by re-registration, without
// waiting. Keys: letters, digits, '_', '-', '.', starting with a letter or '_'
// (ErrInvalidArgument otherwise).
func (c *Client) SetMetadata(key, value string) error {
	defer runtime.KeepAlive(c)
	return c.h.use(func(cc cClient) error { return cc.setMetadata(key, &value) })
}

// DeleteMetadata removes a metadata entry (no error if it is not there).
func (c *Client) DeleteMetadata(key string) error {
	defer runtime.KeepAlive(c)
	return c.h.use(func(cc cClient) error { return cc.setMetadata(key, nil) })
}

// Metadata returns the value of a metadata entry as this process holds it; ErrNotFound if
// there is no such key.
func (c *Client) Metadata(key string) (string, error) {
	defer runtime.KeepAlive(c)
	var v string
	err := c.h.use(func(cc cClient) (err error) {
		v, err = cc.metadata(key)
		return err
	})
	return v, err
}

// Info returns a snapshot of the client's state, status and counters. After Close it
// returns ErrShutDown.
func (c *Client) Info() (Info, error) {
	defer runtime.KeepAlive(c)
	var info Info
	err := c.h.use(func(cc cClient) (err error) {
		info, err = cc.info()
		return err
	})
	return info, err
}

// Snapshot returns the client's state as JSON, for debugging: phase, status, counters, the
// last error (code and message, without credentials), the server in use and times in ms
// since the Unix epoch. Fields may be added. After Close it returns ErrShutDown.
func (c *Client) Snapshot() (json.RawMessage, error) {
	defer runtime.KeepAlive(c)
	var text string
	err := c.h.use(func(cc cClient) (err error) {
		text, err = cc.snapshotJSON()
		return err
	})
	if err != nil {
		return nil, err
	}
	return json.RawMessage(text), nil
}

// Metrics returns the metrics of every live Client and Discovery of the process, and of the
// process, in the Prometheus text exposition format (version 0.0.4): serve it with
// Content-Type "text/plain; version=0.0.4" from a /metrics endpoint. The names and their
// meaning are listed in the README (Operability).
func Metrics() (string, error) {
	if err := checkLibrary(); err != nil {
		return "", err
	}
	return cMetricsText()
}

// State returns where the client is in its lifecycle (StateStopped after Close).
func (c *Client) State() State {
	info, err := c.Info()
	if err != nil {
		return StateStopped
	}
	return info.State
}

// LastError returns the background thread's most recent failure as an *Error (code and
// message, e.g. ErrUnauthorized for a wrong password), or nil if the last request succeeded.
func (c *Client) LastError() error {
	defer runtime.KeepAlive(c)
	var last error
	err := c.h.use(func(cc cClient) error {
		info, err := cc.info()
		if err != nil {
			return err
		}
		if info.LastError == CodeOK {
			return nil
		}
		msg, err := cc.lastErrorMessage()
		if err != nil {
			return err
		}
		last = newError(info.LastError, msg)
		return nil
	})
	if err != nil {
		return err
	}
	return last
}

// WaitRegistered blocks until the registry has accepted a registration carrying the
// client's latest status and metadata, or ctx ends. Use it after Start, and after a status
// change when the caller must know that the registry shows it.
//
// When ctx ends first it returns an *Error with code CodeTimeout that also wraps ctx.Err()
// and the background thread's last error, so errors.Is(err, context.DeadlineExceeded),
// errors.Is(err, ErrTimeout) and, say, errors.Is(err, ErrUnauthorized) all work.
// After Close it returns ErrShutDown.
func (c *Client) WaitRegistered(ctx context.Context) error {
	defer runtime.KeepAlive(c)
	for {
		if ctx.Err() != nil {
			return c.notRegistered(ctx)
		}
		slice := waitSlice
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < slice {
				slice = max(left, time.Millisecond)
			}
		}
		err := c.h.use(func(cc cClient) error { return cc.waitRegistered(uint32(slice / time.Millisecond)) })
		if err == nil {
			return nil
		}
		if e, ok := err.(*Error); !ok || e.Code != CodeTimeout {
			return err
		}
	}
}

func (c *Client) notRegistered(ctx context.Context) error {
	causes := []error{ctx.Err()}
	why := "no answer from the registry yet"
	if last := c.LastError(); last != nil {
		if e, ok := last.(*Error); ok && e.Code == CodeShutDown {
			return last
		}
		causes = append(causes, last)
		why = "last error: " + last.Error()
	}
	return &Error{
		Code:    CodeTimeout,
		Message: fmt.Sprintf("not registered before the context ended (%v); %s", ctx.Err(), why),
		causes:  causes,
	}
}

// Close marks the instance DOWN, deregisters it and ends its background task, within the
// configured Drain + Timeout (with a Drain the instance stays registered as DOWN, heartbeating,
// for the drain before the DELETE), then frees the client. It waits for calls in flight on other
// goroutines. Idempotent: closing again returns nil. It returns an error when the registry
// was not told (the instance then stays listed until its lease expires), naming what failed:
// ErrTimeout if it did not answer in time, ErrRejected with the server's answer to the
// DELETE, ErrTransport if it was unreachable.
func (c *Client) Close() error {
	return c.close(0)
}

// Shutdown is Close bounded by ctx's deadline instead of Drain + Timeout: a deadline shorter
// than that cuts the drain short, keeping Timeout (at most half the time left) for the DELETE.
// (The deregistration itself cannot be interrupted; without a deadline it is Close.) Called
// while a Close or Shutdown is draining (a second signal), a deadline that ends sooner cuts
// that drain short the same way, and both return once the instance is deleted.
func (c *Client) Shutdown(ctx context.Context) error {
	var ms uint32
	if dl, ok := ctx.Deadline(); ok {
		ms = uint32(min(max(time.Until(dl), time.Millisecond), time.Hour) / time.Millisecond)
	}
	return c.close(ms)
}

func (c *Client) close(timeoutMs uint32) error {
	c.cleanup.Stop()
	err := c.h.close(timeoutMs)
	runtime.KeepAlive(c)
	return err
}
