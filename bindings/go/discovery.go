package registrar

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DiscoveryState is where a discovery cache is in its life.
type DiscoveryState int32

const (
	DiscoveryNotStarted DiscoveryState = 0 // created, Start not called yet
	DiscoveryRunning    DiscoveryState = 1 // the background thread keeps the cache fresh
	DiscoveryStopped    DiscoveryState = 2 // closed: nothing more is fetched
)

func (s DiscoveryState) String() string {
	switch s {
	case DiscoveryNotStarted:
		return "NOT_STARTED"
	case DiscoveryRunning:
		return "RUNNING"
	case DiscoveryStopped:
		return "STOPPED"
	}
	return fmt.Sprintf("DiscoveryState(%d)", int32(s))
}

// DiscoveryInfo is a snapshot of a discovery cache.
type DiscoveryInfo struct {
	State DiscoveryState
	// Ready is true once the first fetch has succeeded.
	Ready bool
	// Version grows with every change of the cached registry (0 before the first fetch).
	Version   uint64
	Apps      uint64 // applications in the cache
	Instances uint64 // instances in the cache, every status
	// Age is the time since the last successful fetch.
	Age time.Duration
	// LastError is the code of the last refresh's failure, CodeOK if it succeeded
	// (Discovery.LastError returns it with its message).
	LastError       Code
	FullFetches     uint64
	DeltaFetches    uint64
	HashMismatches  uint64
	FailedRefreshes uint64
}

// Instance is one instance of the registry, copied out of the discovery cache.
type Instance struct {
	ID                string
	App               string // upper-case
	HostName          string
	IPAddr            string
	Port              int
	PortEnabled       bool
	SecurePort        int
	SecurePortEnabled bool
	// Status is the status the registry serves (with any operator override applied);
	// OverriddenStatus the override (StatusUnknown when there is none).
	Status           Status
	OverriddenStatus Status
	// VIPAddress and SecureVIPAddress as registered (possibly comma-separated lists).
	VIPAddress       string
	SecureVIPAddress string
	HomePageURL      string
	StatusPageURL    string
	HealthCheckURL   string
	// Metadata is nil when the instance has none.
	Metadata map[string]string
	// LastUpdated and LastDirty are zero when the registry did not say.
	LastUpdated time.Time
	LastDirty   time.Time
}

// URL is the base URL to call: "http://host:port", or "https://host:securePort" when secure
// is true and the secure port is enabled; the IP address when there is no host name. Same
// rule as the C library's (URLWith(URLSecure) is the same).
func (i Instance) URL(secure bool) string {
	if secure {
		return i.URLWith(URLSecure)
	}
	return i.URLWith(0)
}

// URLWith is URL with the C library's flags: URLSecure as URL(true), URLUseIP for the IP
// address in place of the host name. The same rule as registrar_instance_list_url (the
// tests compare the two), applied to this Go copy of the instance.
func (i Instance) URLWith(flags URLFlags) string {
	host := i.HostName
	if flags&URLUseIP != 0 || host == "" {
		host = i.IPAddr
	}
	scheme, port := "http", i.Port
	if flags&URLSecure != 0 && i.SecurePortEnabled {
		scheme, port = "https", i.SecurePort
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// Discovery is a local cache of a Eureka registry, kept fresh by the C library's background
// thread (a full fetch, then the changes every FetchInterval). Queries read the cache and
// never touch the network.
//
// All methods are safe for concurrent use. Close stops and frees; calls after Close return
// ErrShutDown. A Discovery that becomes unreachable without Close is closed by a cleanup as
// a safety net, but do call Close.
type Discovery struct {
	h       *discoveryHandle
	cleanup runtime.Cleanup
	watch   *changeWatch // OnChange's goroutine; it never refers to the Discovery itself
}

// discoveryHandle guards the C discovery pointer exactly like the Client's handle.
type discoveryHandle = guarded[cDiscovery]

var errDiscoveryClosed = &Error{Code: CodeShutDown, Message: "the discovery is closed"}

// NewDiscovery creates a discovery cache from cfg: only URL (User, Password; CAFile,
// ClientCert, ClientKey for https), Timeout and FetchInterval (or the same Settings) are used,
// so AppName is not needed. It starts nothing:
// call Start, then WaitReady. Errors: ErrInvalidConfig (the message names the setting).
func NewDiscovery(cfg Config) (*Discovery, error) {
	if err := checkLibrary(); err != nil {
		return nil, err
	}
	cc, err := cfg.toC()
	if err != nil {
		return nil, err
	}
	raw, err := newCDiscovery(cc)
	cc.free()
	if err != nil {
		return nil, err
	}
	h := &discoveryHandle{c: raw, closed: errDiscoveryClosed, events: newEventStream()}
	if err := h.events.install(raw.setEventListener); err != nil {
		h.close(0)
		return nil, err
	}
	logger, level := cfg.Logger, cfg.LogLevel
	if logger == nil {
		logger, level = defaultLogger(level)
	}
	if err := setLogger(logger, func(lh uintptr) error { return raw.setLogger(lh, level) }); err != nil {
		h.close(0)
		return nil, err
	}
	d := &Discovery{h: h, watch: &changeWatch{h: h}}
	d.cleanup = runtime.AddCleanup(d, func(h *discoveryHandle) {
		// Stopping may wait for a request in flight: not on the runtime's cleanup goroutine.
		go h.close(0)
	}, h)
	return d, nil
}

// Events returns the cache's events, in order: EventDiscoveryReady (the first fetch),
// EventDiscoveryChanged (a new Version), EventDiscoveryFetchFailing (once per failure streak,
// with the Reason) and EventDiscoveryRecovered. The channel (capacity EventBufferSize; when it
// is full the oldest event is dropped, see EventsDropped) is the same on every call and is
// closed once Close has returned. Unlike OnChange no goroutine is involved: the library's
// thread queues each event without blocking. Reading it is optional.
func (d *Discovery) Events() <-chan Event { return d.h.events.ch }

// EventsDropped returns how many events were dropped because the Events channel was full.
func (d *Discovery) EventsDropped() uint64 { return d.h.events.dropped.Load() }

// StartDiscovery is NewDiscovery followed by Start.
func StartDiscovery(cfg Config) (*Discovery, error) {
	d, err := NewDiscovery(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.Start(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Start starts the background thread, which fetches the registry; it returns at once (see
// WaitReady). Starting again while running does nothing. Errors: ErrShutDown, ErrTransport.
func (d *Discovery) Start() error {
	defer runtime.KeepAlive(d)
	return d.h.use(func(c cDiscovery) error { return c.start() })
}

// WaitReady blocks until the first fetch has succeeded, or ctx ends. When ctx ends first it
// returns an *Error with code CodeTimeout that wraps ctx.Err() and the last refresh's error,
// so errors.Is(err, ErrTimeout) and errors.Is(err, context.DeadlineExceeded) both hold.
func (d *Discovery) WaitReady(ctx context.Context) error {
	defer runtime.KeepAlive(d)
	var last error // the C library's last timeout: its message says why
	for {
		if ctx.Err() != nil {
			return d.notReady(ctx, last)
		}
		slice := sliceFor(ctx)
		err := d.h.use(func(c cDiscovery) error { return c.waitReady(uint32(slice / time.Millisecond)) })
		if err == nil {
			return nil
		}
		if e, ok := err.(*Error); !ok || e.Code != CodeTimeout {
			return err
		}
		last = err
	}
}

func (d *Discovery) notReady(ctx context.Context, lastWait error) error {
	causes := []error{ctx.Err()}
	why := "no answer from the registry yet"
	if last := d.LastError(); last != nil {
		if e, ok := last.(*Error); ok && e.Code == CodeShutDown {
			return last
		}
		causes = append(causes, last)
		why = "last error: " + last.Error()
	} else if e, ok := lastWait.(*Error); ok && e.Message != "" {
		why = e.Message
	}
	return &Error{
		Code:    CodeTimeout,
		Message: fmt.Sprintf("the registry was not fetched before the context ended (%v); %s", ctx.Err(), why),
		causes:  causes,
	}
}

// sliceFor bounds one blocking C call so that a cancelled ctx is noticed within waitSlice.
func sliceFor(ctx context.Context) time.Duration {
	slice := waitSlice
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < slice {
			slice = max(left, time.Millisecond)
		}
	}
	return slice
}

// defaultRefreshTimeout bounds Refresh when ctx has no deadline.
const defaultRefreshTimeout = 30 * time.Second

// Refresh fetches the registry's changes now and waits for the outcome, bounded by ctx's
// deadline (30 s without one; a cancellation without a deadline is not noticed while the
// fetch runs). Use it to see a change you know about. Errors: the fetch's own (ErrTransport,
// ErrUnauthorized...; the last good registry is kept), ErrTimeout, ErrInvalidArgument (not
// started), ErrShutDown.
func (d *Discovery) Refresh(ctx context.Context) error {
	defer runtime.KeepAlive(d)
	if err := ctx.Err(); err != nil {
		return &Error{Code: CodeTimeout, Message: "refresh: " + err.Error(), causes: []error{err}}
	}
	timeout := defaultRefreshTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(max(time.Until(dl), time.Millisecond), time.Hour)
	}
	return d.h.use(func(c cDiscovery) error { return c.refresh(uint32(timeout / time.Millisecond)) })
}

// Instances returns the instances of an application (case-insensitive), sorted by id: the UP
// ones, or all of them with all. An unknown application gives an empty list.
func (d *Discovery) Instances(app string, all bool) ([]Instance, error) {
	return d.query(LookupApp, app, all)
}

// ByVIP returns the instances registered under a VIP address (exact), like Instances.
func (d *Discovery) ByVIP(vip string, all bool) ([]Instance, error) {
	return d.query(LookupVIP, vip, all)
}

// BySecureVIP returns the instances registered under a secure VIP address, like Instances.
func (d *Discovery) BySecureVIP(vip string, all bool) ([]Instance, error) {
	return d.query(LookupSecureVIP, vip, all)
}

func (d *Discovery) query(lookup Lookup, name string, all bool) ([]Instance, error) {
	defer runtime.KeepAlive(d)
	var out []Instance
	err := d.h.use(func(c cDiscovery) (err error) {
		out, err = c.instances(lookup, name, all)
		return err
	})
	return out, err
}

// All returns every cached instance (UP only unless all), sorted by id.
func (d *Discovery) All(all bool) ([]Instance, error) {
	defer runtime.KeepAlive(d)
	var out []Instance
	err := d.h.use(func(c cDiscovery) (err error) {
		out, err = c.all(all)
		return err
	})
	return out, err
}

// Instance returns the instance with this id, whatever its status; ErrNotFound if the cache
// has none.
func (d *Discovery) Instance(id string) (Instance, error) {
	defer runtime.KeepAlive(d)
	var out []Instance
	err := d.h.use(func(c cDiscovery) (err error) {
		out, err = c.instance(id)
		return err
	})
	if err != nil {
		return Instance{}, err
	}
	if len(out) == 0 {
		return Instance{}, newError(CodeNotFound, "no instance "+id)
	}
	return out[0], nil
}

// Choose returns the next UP instance of an application, round robin. ErrNotFound when it
// has no UP instance (or nothing was fetched yet: the message says which).
func (d *Discovery) Choose(app string) (Instance, error) {
	return d.ChooseBy(LookupApp, app, RoundRobin)
}

// ChooseBy returns one UP instance under an application name, a VIP or a secure VIP
// (lookup), each in turn (RoundRobin, evenly, across refreshes) or at Random. ErrNotFound
// when there is none (or nothing was fetched yet: the message says which).
func (d *Discovery) ChooseBy(lookup Lookup, name string, choice Choice) (Instance, error) {
	defer runtime.KeepAlive(d)
	var out []Instance
	err := d.h.use(func(c cDiscovery) (err error) {
		out, err = c.choose(lookup, name, choice)
		return err
	})
	if err != nil {
		return Instance{}, err
	}
	if len(out) == 0 {
		return Instance{}, newError(CodeNotFound, "no UP instance of "+name)
	}
	return out[0], nil
}

// ChooseURL chooses like Choose and returns the instance's base URL: "http://host:port", or
// with secure "https://host:securePort" when its secure port is enabled.
func (d *Discovery) ChooseURL(app string, secure bool) (string, error) {
	var flags URLFlags
	if secure {
		flags = URLSecure
	}
	return d.ChooseURLBy(LookupApp, app, RoundRobin, flags)
}

// ChooseURLBy chooses like ChooseBy and returns the instance's base URL, shaped by flags
// (URLSecure, URLUseIP) as Instance.URLWith would.
func (d *Discovery) ChooseURLBy(lookup Lookup, name string, choice Choice, flags URLFlags) (string, error) {
	defer runtime.KeepAlive(d)
	var url string
	err := d.h.use(func(c cDiscovery) (err error) {
		url, err = c.chooseURL(lookup, name, choice, flags)
		return err
	})
	return url, err
}

// SetLogger sends the cache's log messages of level max or more severe to f, on the
// discovery's background thread (see LogFunc); nil f removes the current logger. Messages:
// the first fetch (INFO), a failing refresh (WARN, once per distinct problem) and the
// recovery (INFO), a hash mismatch (WARN), every change applied (DEBUG). Config.Logger
// installs one before Start. Errors: ErrInvalidArgument (bad level), ErrShutDown.
func (d *Discovery) SetLogger(f LogFunc, max LogLevel) error {
	defer runtime.KeepAlive(d)
	return d.h.use(func(c cDiscovery) error {
		return setLogger(f, func(h uintptr) error { return c.setLogger(h, max) })
	})
}

// Snapshot returns the cache's state as JSON, for debugging: phase, version, size, counters,
// the last error (code and message, without credentials), the server in use and times in ms
// since the Unix epoch. Fields may be added. After Close it returns ErrShutDown.
func (d *Discovery) Snapshot() (json.RawMessage, error) {
	defer runtime.KeepAlive(d)
	var text string
	err := d.h.use(func(c cDiscovery) (err error) {
		text, err = c.snapshotJSON()
		return err
	})
	if err != nil {
		return nil, err
	}
	return json.RawMessage(text), nil
}

// Info returns a snapshot of the cache's state, version, size and counters. After Close it
// returns ErrShutDown.
func (d *Discovery) Info() (DiscoveryInfo, error) {
	defer runtime.KeepAlive(d)
	var info DiscoveryInfo
	err := d.h.use(func(c cDiscovery) (err error) {
		info, err = c.info()
		return err
	})
	return info, err
}

// Version returns the version of the cached registry: it grows with every change (0 before
// the first fetch, and after Close).
func (d *Discovery) Version() uint64 {
	info, err := d.Info()
	if err != nil {
		return 0
	}
	return info.Version
}

// LastError returns the last refresh's failure as an *Error (code and message), or nil if
// it succeeded.
func (d *Discovery) LastError() error {
	defer runtime.KeepAlive(d)
	var last error
	err := d.h.use(func(c cDiscovery) error {
		info, err := c.info()
		if err != nil {
			return err
		}
		if info.LastError == CodeOK {
			return nil
		}
		msg, err := c.lastErrorMessage()
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

// WaitChange blocks until the cached registry's version is greater than since, and returns
// it. Pass the version of the last change handled (0 at first). When ctx ends first it
// returns an *Error with code CodeTimeout wrapping ctx.Err(); after Close, ErrShutDown.
func (d *Discovery) WaitChange(ctx context.Context, since uint64) (uint64, error) {
	defer runtime.KeepAlive(d)
	for {
		if err := ctx.Err(); err != nil {
			return 0, &Error{Code: CodeTimeout,
				Message: fmt.Sprintf("no change after version %d before the context ended (%v)", since, err),
				causes:  []error{err}}
		}
		slice := sliceFor(ctx)
		var v uint64
		err := d.h.use(func(c cDiscovery) (err error) {
			v, err = c.waitChange(since, uint32(slice/time.Millisecond))
			return err
		})
		if err == nil {
			return v, nil
		}
		if e, ok := err.(*Error); !ok || e.Code != CodeTimeout {
			return 0, err
		}
	}
}

// OnChange calls f(version) after every change of the cached registry, on a goroutine of
// this Discovery's own (started on first use), in the order the functions were added. It
// waits in the C library (registrar_discovery_wait_change), so the library's thread never
// runs Go code for it. A panic in f is not recovered. After Close returns no call starts;
// Close waits up to 5 s for a call in progress (so f may call Close, which then returns
// after that wait).
func (d *Discovery) OnChange(f func(version uint64)) {
	d.watch.add(f)
	runtime.KeepAlive(d)
}

// changeWatch is OnChange's state, shared with its goroutine.
type changeWatch struct {
	h         *discoveryHandle
	mu        sync.Mutex
	callbacks []func(uint64)
	done      chan struct{} // closed when the goroutine ends; nil before it starts
	closing   atomic.Bool
}

// watchSlice bounds each wait of the OnChange goroutine, so that it notices Close.
const watchSlice = 250 * time.Millisecond

func (w *changeWatch) add(f func(uint64)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.callbacks = append(w.callbacks, f)
	if w.done == nil {
		w.done = make(chan struct{})
		go w.run()
	}
}

func (w *changeWatch) run() {
	defer close(w.done)
	var since uint64
	for !w.closing.Load() {
		var v uint64
		err := w.h.use(func(c cDiscovery) (err error) {
			v, err = c.waitChange(since, uint32(watchSlice/time.Millisecond))
			return err
		})
		if err != nil {
			if e, ok := err.(*Error); ok && e.Code == CodeTimeout {
				continue
			}
			return // closed or stopped: nothing will change any more
		}
		since = v
		w.mu.Lock()
		callbacks := append([]func(uint64){}, w.callbacks...)
		w.mu.Unlock()
		for _, f := range callbacks {
			if w.closing.Load() {
				return
			}
			f(v)
		}
	}
}

// stop makes the goroutine end and waits for it, at most 5 s.
func (w *changeWatch) stop() {
	w.closing.Store(true)
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
}

// Close stops the background thread (waiting at most the configured Timeout for a request
// in flight) and frees the cache. Idempotent: closing again returns nil. Instances already
// returned stay valid (they are Go copies).
func (d *Discovery) Close() error {
	d.cleanup.Stop()
	d.watch.closing.Store(true) // no OnChange call starts from now on
	err := d.h.close(0)
	d.watch.stop()
	runtime.KeepAlive(d)
	return err
}
