package registrar

// Events: the C library's event listener delivered to a channel per handle (Client.Events,
// Discovery.Events). This file holds the two functions C calls (exported with //export, so its
// preamble may only declare); the C side (rg_event_trampoline, rg_event_free,
// rg_*_set_event_listener) is in capi.go.
//
// The library calls the listener on its background thread, which every handle of the process
// shares: it must never block there. So each event is copied into a buffered channel with a
// non-blocking send, and when the channel is full the OLDEST event is dropped (and counted):
// a reader that falls behind then sees the latest state changes, which are the ones that
// describe the handle now (the newest status, the final Stopped), rather than stale ones.
// The channel is closed once Close (or Shutdown) has returned: the library delivers nothing
// after its stop returns, so a range loop over Events ends exactly then.

/*
#include "registrar.h"
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"sync"
	"sync/atomic"
)

// EventBufferSize is the capacity of the channel returned by Client.Events and
// Discovery.Events. When it is full the oldest event is dropped to make room (see
// Client.EventsDropped).
const EventBufferSize = 64

// EventKind says what happened (registrar_event_kind).
type EventKind int32

const (
	// EventRegistered: the registry accepted the client's first registration.
	EventRegistered EventKind = 1
	// EventRegistrationLost: the registry no longer holds the instance (a heartbeat got 404,
	// or nothing was accepted for the lease duration); Reason says why. The client keeps
	// re-registering.
	EventRegistrationLost EventKind = 2
	// EventReregistered: the registry holds the instance again after a loss.
	EventReregistered EventKind = 3
	// EventStatusChanged: the registry accepted a new status; Cause says who changed it.
	EventStatusChanged EventKind = 4
	// EventStopped: stop finished; the client's last event. Error is CodeOK when the registry
	// was told, otherwise why not.
	EventStopped EventKind = 5
	// EventDiscoveryReady: the first fetch succeeded.
	EventDiscoveryReady EventKind = 6
	// EventDiscoveryChanged: a refresh changed the cached registry (Version is the new one).
	EventDiscoveryChanged EventKind = 7
	// EventDiscoveryFetchFailing: refreshes fail (once per failure streak, not per retry);
	// the last good registry is kept.
	EventDiscoveryFetchFailing EventKind = 8
	// EventDiscoveryRecovered: a refresh succeeded after a failure streak.
	EventDiscoveryRecovered EventKind = 9
)

var eventKindNames = map[EventKind]string{
	EventRegistered:            "REGISTERED",
	EventRegistrationLost:      "REGISTRATION_LOST",
	EventReregistered:          "REREGISTERED",
	EventStatusChanged:         "STATUS_CHANGED",
	EventStopped:               "STOPPED",
	EventDiscoveryReady:        "DISCOVERY_READY",
	EventDiscoveryChanged:      "DISCOVERY_CHANGED",
	EventDiscoveryFetchFailing: "DISCOVERY_FETCH_FAILING",
	EventDiscoveryRecovered:    "DISCOVERY_RECOVERED",
}

func (k EventKind) String() string {
	if name, ok := eventKindNames[k]; ok {
		return name
	}
	return fmt.Sprintf("EventKind(%d)", int32(k))
}

// EventCause says why, where an event has several possible causes (registrar_event_cause).
type EventCause int32

const (
	CauseNone EventCause = 0
	// CauseHost: a status change made by SetStatus.
	CauseHost EventCause = 1
	// CauseHealthCheck: a status change made by the health check.
	CauseHealthCheck EventCause = 2
	// CauseNotFound: registration lost because a heartbeat got 404 (the registry restarted,
	// evicted or deleted the instance).
	CauseNotFound EventCause = 3
	// CauseLeaseExpired: registration lost because nothing was accepted for the lease duration.
	CauseLeaseExpired EventCause = 4
	// CauseStop: a status change made by Close: DOWN for the drain before removal.
	CauseStop EventCause = 5
)

var eventCauseNames = map[EventCause]string{
	CauseNone:         "NONE",
	CauseHost:         "HOST",
	CauseHealthCheck:  "HEALTH_CHECK",
	CauseNotFound:     "NOT_FOUND",
	CauseLeaseExpired: "LEASE_EXPIRED",
	CauseStop:         "STOP",
}

func (c EventCause) String() string {
	if name, ok := eventCauseNames[c]; ok {
		return name
	}
	return fmt.Sprintf("EventCause(%d)", int32(c))
}

// Event is one state change of a Client or a Discovery.
type Event struct {
	Kind EventKind
	// Status is the status the registry holds (client events; StatusUnknown for discovery).
	Status Status
	Cause  EventCause
	// Error is the code of the failure behind the event, CodeOK if none.
	Error Code
	// Reason is the failure's message or what happened; "" if the library gave none.
	Reason string
	// Version is the registry version after a discovery event (0 for client events).
	Version uint64
}

func (e Event) String() string {
	s := e.Kind.String()
	if e.Status != StatusUnknown {
		s += " " + e.Status.String()
	}
	if e.Cause != CauseNone {
		s += " cause=" + e.Cause.String()
	}
	if e.Version != 0 {
		s += fmt.Sprintf(" version=%d", e.Version)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// eventStream is a handle's channel of events and what guards it.
type eventStream struct {
	mu      sync.Mutex
	ch      chan Event
	closed  bool
	dropped atomic.Uint64
}

func newEventStream() *eventStream {
	return &eventStream{ch: make(chan Event, EventBufferSize)}
}

// deliver queues ev without ever blocking (it runs on the library's shared thread): when the
// channel is full, the oldest queued event makes room.
func (s *eventStream) deliver(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for {
		select {
		case s.ch <- ev:
			return
		default:
		}
		select {
		case <-s.ch:
			s.dropped.Add(1)
		default: // a reader emptied it meanwhile: try again
		}
	}
}

// close ends the channel; called once the library delivers nothing more for the handle.
func (s *eventStream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// install hands the stream to the library through install (see setLogger for the ownership
// of the cgo handle).
func (s *eventStream) install(install func(handle uintptr) error) error {
	h := cgo.NewHandle(s)
	if err := install(uintptr(h)); err != nil {
		h.Delete()
		return err
	}
	return nil
}

//export registrarGoEvent
func registrarGoEvent(handle C.uintptr_t, event *C.registrar_event) {
	defer func() { _ = recover() }() // never unwind into the library's thread
	s, ok := cgo.Handle(handle).Value().(*eventStream)
	if !ok || event == nil {
		return
	}
	ev := Event{
		Kind:    EventKind(event.kind),
		Status:  Status(event.status),
		Cause:   EventCause(event.cause),
		Error:   Code(event.error),
		Version: uint64(event.version),
	}
	if event.reason != nil {
		ev.Reason = C.GoString(event.reason)
	}
	s.deliver(ev)
}

//export registrarGoFreeEvent
func registrarGoFreeEvent(handle C.uintptr_t) {
	cgo.Handle(handle).Delete()
}
