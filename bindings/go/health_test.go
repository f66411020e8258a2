package registrar

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Health-driven status and drain (issue 12) against the real Eureka server: the registry
// (GET apps/APP/ID, never cached) shows DOWN after the threshold and UP after recovery.

func waitStatus(t *testing.T, url, app, id, status string) {
	t.Helper()
	eventually(t, 10*time.Second, app+" "+status, func() bool {
		inst, found := lookup(t, url, app, id, false)
		return found && inst.Status == status
	})
}

// nextStatusChange returns the next StatusChanged event to status (within 10 s).
func nextStatusChange(t *testing.T, ch <-chan Event, status Status) Event {
	t.Helper()
	for {
		ev, _ := next(t, ch, EventStatusChanged, 10*time.Second)
		if ev.Status == status {
			return ev
		}
	}
}

func TestHealthFuncFlapsTheRegistryStatus(t *testing.T) {
	url := plainURL(t)
	cfg := fastConfig(t, url)
	var failing, panicking atomic.Bool
	var calls atomic.Int64
	cfg.HealthCheck = func() error {
		calls.Add(1)
		if panicking.Load() {
			panic("the check blew up")
		}
		if failing.Load() {
			return errors.New("database unreachable")
		}
		return nil
	}
	cfg.HealthInterval = 200 * time.Millisecond
	cfg.HealthThreshold = 2
	cfg.Status = StatusUp
	c, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	app, id := c.AppName(), c.InstanceID()
	waitStatus(t, url, app, id, "UP")

	failing.Store(true)
	waitStatus(t, url, app, id, "DOWN")
	raw, err := c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var snap struct {
		HostStatus string `json:"host_status"`
		Health     struct {
			Healthy     bool   `json:"healthy"`
			LastFailure string `json:"last_failure"`
		} `json:"health"`
	}
	if err := json.Unmarshal(raw, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Health.Healthy || snap.HostStatus != "UP" {
		t.Fatalf("snapshot while failing: %s", raw)
	}
	// The error's text is the failure's reason: in the snapshot and the StatusChanged event.
	const reason = "the health check failed: database unreachable"
	if snap.Health.LastFailure != reason {
		t.Fatalf("last_failure %q, want %q", snap.Health.LastFailure, reason)
	}
	down := nextStatusChange(t, c.Events(), StatusDown)
	if down.Cause != CauseHealthCheck || down.Reason != "health check failing: "+reason {
		t.Fatalf("DOWN event: %+v", down)
	}
	failing.Store(false)
	waitStatus(t, url, app, id, "UP")

	// A panicking check is a failing one, and the process survives it; the panic is the reason.
	panicking.Store(true)
	waitStatus(t, url, app, id, "DOWN")
	down = nextStatusChange(t, c.Events(), StatusDown)
	if want := "health check failing: the health check failed: panic: the check blew up"; down.Reason != want {
		t.Fatalf("DOWN event after a panic: %+v, want reason %q", down, want)
	}
	panicking.Store(false)
	waitStatus(t, url, app, id, "UP")

	// SetHealthCheck replaces it; nil removes it.
	if err := c.SetHealthCheck(func() error { return errors.New("no") }); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, url, app, id, "DOWN")
	if err := c.SetHealthCheck(nil); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, url, app, id, "UP")

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, found := lookup(t, url, app, id, false); found {
		t.Fatal("still registered after Close")
	}
	if err := c.SetHealthCheck(func() error { return nil }); !errors.Is(err, ErrShutDown) {
		t.Fatalf("SetHealthCheck after Close: %v", err)
	}
}

func TestCloseDrainsAsDownThenDeletes(t *testing.T) {
	url := plainURL(t)
	cfg := fastConfig(t, url)
	cfg.Drain = 1500 * time.Millisecond
	cfg.Status = StatusUp
	c, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	app, id := c.AppName(), c.InstanceID()
	waitStatus(t, url, app, id, "UP")
	started := time.Now()
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	waitStatus(t, url, app, id, "DOWN")
	select {
	case err := <-done:
		t.Fatalf("Close returned during the drain: %v", err)
	default:
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(started); took < cfg.Drain {
		t.Fatalf("Close took %v, less than the drain", took)
	}
	if _, found := lookup(t, url, app, id, false); found {
		t.Fatal("still registered after the drain")
	}

	// A Shutdown deadline shorter than the drain: DOWN, then deleted before the deadline.
	cfg = fastConfig(t, url)
	cfg.Drain = 30 * time.Second
	cfg.Timeout = time.Second
	cfg.Status = StatusUp
	c, err = Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	if err := c.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if sctx.Err() != nil {
		t.Fatal("Shutdown outlived its deadline")
	}
	if _, found := lookup(t, url, c.AppName(), c.InstanceID(), false); found {
		t.Fatal("still registered after Shutdown")
	}

	// A Shutdown while a Close drains (a second signal): it cuts that drain short, and both
	// return nil once the instance is deleted. Before, it waited for the whole 30 s drain.
	c, err = Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	app, id = c.AppName(), c.InstanceID()
	waitStatus(t, url, app, id, "UP")
	go func() { done <- c.Close() }()
	waitStatus(t, url, app, id, "DOWN")
	sctx2, scancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel2()
	if err := c.Shutdown(sctx2); err != nil {
		t.Fatal(err)
	}
	if sctx2.Err() != nil {
		t.Fatal("the second Shutdown outlived its deadline")
	}
	if _, found := lookup(t, url, app, id, false); found {
		t.Fatal("still registered after the second Shutdown")
	}
	if err := <-done; err != nil {
		t.Fatalf("the draining Close: %v", err)
	}
}

// Error texts reach the library intact where they can: a NUL would end the C string early and
// invalid UTF-8 would be refused (the failure would then go without its reason).
func TestHealthReasonIsTextTheLibraryAccepts(t *testing.T) {
	for in, want := range map[string]string{
		"db unreachable":          "db unreachable",
		"nul\x00inside":           `nul\x00inside`,
		"raw \xff byte":           "raw \uFFFD byte",
		strings.Repeat("é", 2000): strings.Repeat("é", maxHealthReason/2),
	} {
		if got := healthReason(in); got != want {
			t.Errorf("healthReason(%.20q) = %.20q (%d bytes), want %.20q", in, got, len(got), want)
		}
	}
}
