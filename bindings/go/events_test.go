package registrar

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// next receives events until one of kind arrives (failing after timeout), returning it and
// every event received before it.
func next(t *testing.T, ch <-chan Event, kind EventKind, timeout time.Duration) (Event, []Event) {
	t.Helper()
	var before []Event
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed before %v; saw %v", kind, before)
			}
			if ev.Kind == kind {
				return ev, before
			}
			before = append(before, ev)
		case <-deadline:
			t.Fatalf("no %v within %v; saw %v", kind, timeout, before)
		}
	}
}

// rest receives what is left in a channel that must already be closed (Close has returned),
// failing instead of hanging if it is not.
func rest(t *testing.T, ch <-chan Event) []Event {
	t.Helper()
	var got []Event
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-time.After(2 * time.Second):
			t.Fatalf("the channel is not closed after Close returned; got %v", got)
		}
	}
}

func TestClientEventsInOrderAndClosedAfterClose(t *testing.T) {
	client, err := Start(fastConfig(t, plainURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := client.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client.Up(); err != nil {
		t.Fatal(err)
	}
	if err := client.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed once Close has returned, with every event in order.
	got := rest(t, client.Events())
	want := []EventKind{EventRegistered, EventStatusChanged, EventStopped}
	if len(got) != len(want) {
		t.Fatalf("events %v, want kinds %v", got, want)
	}
	for i := range want {
		if got[i].Kind != want[i] {
			t.Fatalf("events %v, want kinds %v", got, want)
		}
	}
	if got[0].Status != StatusStarting || got[1].Status != StatusUp || got[1].Cause != CauseHost {
		t.Fatalf("statuses/causes: %v", got)
	}
	if got[2].Error != CodeOK || got[2].Reason != "" {
		t.Fatalf("stopped: %+v", got[2])
	}
	if client.EventsDropped() != 0 {
		t.Fatalf("%d dropped", client.EventsDropped())
	}
}

func TestClientEventsLostAndReregisteredWhenDeletedBehindItsBack(t *testing.T) {
	base := plainURL(t)
	cfg := fastConfig(t, base)
	cfg.Status = StatusUp
	client, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	next(t, client.Events(), EventRegistered, 15*time.Second)
	req, _ := http.NewRequest("DELETE", base+"apps/"+client.AppName()+"/"+client.InstanceID(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("DELETE: HTTP %d", resp.StatusCode)
	}
	lost, skipped := next(t, client.Events(), EventRegistrationLost, 10*time.Second)
	if len(skipped) != 0 {
		t.Fatalf("unexpected events before the loss: %v", skipped)
	}
	if lost.Cause != CauseNotFound || lost.Error != CodeNotFound || lost.Reason == "" || lost.Status != StatusUp {
		t.Fatalf("lost: %+v", lost)
	}
	back, skipped := next(t, client.Events(), EventReregistered, 10*time.Second)
	if len(skipped) != 0 || back.Status != StatusUp {
		t.Fatalf("re-registered: %+v after %v", back, skipped)
	}
	eventually(t, 5*time.Second, "registered again", func() bool {
		_, found := lookup(t, base, client.AppName(), client.InstanceID(), false)
		return found
	})
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if after := rest(t, client.Events()); len(after) != 1 || after[0].Kind != EventStopped {
		t.Fatalf("after re-registration: %v", after)
	}
}

// A discovery cache behind a reverse proxy to the real server that can answer 503 instead:
// ready, changed (another instance registers), fetch failing once per streak, recovered.
func TestDiscoveryEventsReadyChangedFailingRecovered(t *testing.T) {
	base := plainURL(t)
	upstream, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: upstream.Scheme, Host: upstream.Host})
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "unavailable (test)", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer server.Close()

	d, err := NewDiscovery(Config{URL: server.URL + upstream.Path, FetchInterval: 200 * time.Millisecond, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	ready, _ := next(t, d.Events(), EventDiscoveryReady, 15*time.Second)
	if ready.Version != 1 || ready.Status != StatusUnknown {
		t.Fatalf("ready: %+v", ready)
	}

	cfg := fastConfig(t, base)
	cfg.Status = StatusUp
	other, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	changed, _ := next(t, d.Events(), EventDiscoveryChanged, 15*time.Second)
	if changed.Version < 2 {
		t.Fatalf("changed: %+v", changed)
	}

	failing.Store(true)
	fail, _ := next(t, d.Events(), EventDiscoveryFetchFailing, 10*time.Second)
	if fail.Error == CodeOK || fail.Reason == "" {
		t.Fatalf("fetch failing: %+v", fail)
	}
	time.Sleep(1500 * time.Millisecond) // retries fail meanwhile: no second event
	info, err := d.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.FailedRefreshes < 2 {
		t.Fatalf("only %d failed refreshes", info.FailedRefreshes)
	}
	failing.Store(false)
	_, between := next(t, d.Events(), EventDiscoveryRecovered, 10*time.Second)
	for _, ev := range between {
		if ev.Kind == EventDiscoveryFetchFailing {
			t.Fatalf("fetch failing twice in one streak: %v", between)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ev := range rest(t, d.Events()) { // closed after Close
		if ev.Kind == EventDiscoveryFetchFailing {
			t.Fatalf("unexpected %v", ev)
		}
	}
}

func TestEventsDropTheOldestWhenTheChannelIsFull(t *testing.T) {
	s := newEventStream()
	for i := 1; i <= EventBufferSize+6; i++ {
		s.deliver(Event{Kind: EventDiscoveryChanged, Version: uint64(i)})
	}
	if got := s.dropped.Load(); got != 6 {
		t.Fatalf("dropped %d, want 6", got)
	}
	s.close()
	s.deliver(Event{Kind: EventDiscoveryChanged}) // after close: ignored, no panic
	first := true
	n := 0
	for ev := range s.ch {
		if first && ev.Version != 7 {
			t.Fatalf("oldest kept is version %d, want 7", ev.Version)
		}
		first = false
		n++
	}
	if n != EventBufferSize {
		t.Fatalf("%d queued, want %d", n, EventBufferSize)
	}
}

func TestEventNames(t *testing.T) {
	if EventRegistrationLost.String() != "REGISTRATION_LOST" || CauseHealthCheck.String() != "HEALTH_CHECK" {
		t.Fatal("names")
	}
	ev := Event{Kind: EventStatusChanged, Status: StatusDown, Cause: CauseHealthCheck, Reason: "health check failing: x"}
	if ev.String() != "STATUS_CHANGED DOWN cause=HEALTH_CHECK: health check failing: x" {
		t.Fatal(ev.String())
	}
}
