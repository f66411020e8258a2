// Command register is the seed's scenario in Go: it registers this process with Eureka
// (app name from REGISTRY_APP_NAME, e.g. MY_AWSOME_GO_MS), UP at once, prints one line
//
//	registered APP/ID
//
// on stdout once the registry has accepted it, keeps it alive with heartbeats (on the
// library's background thread) until SIGINT or SIGTERM, then deregisters and exits 0 (1 when
// deregistration failed: the registry may still list the instance until its lease expires).
// A signal is acted on within 100 ms in every phase.
//
// Configured only by the REGISTRY_* environment:
//
//	REGISTRY_URL=http://127.0.0.1:8761/eureka/ REGISTRY_APP_NAME=MY_AWSOME_GO_MS ./register
//
// Bad configuration: the library's message on stderr, exit status 2. While the instance is
// not (yet) registered, the reason (registry unreachable, 401 wrong credentials, 400 with the
// server's reason...) goes to stderr each time it changes, not once per retry. It behaves and
// prints like examples/c/register.c.
//
// Health and drain, from the environment alone (see the README): REGISTRY_HEALTH_URL (a
// local http:// URL the library polls every REGISTRY_HEALTH_INTERVAL s; DOWN after
// REGISTRY_HEALTH_THRESHOLD failures in a row, UP after as many passes);
// REGISTER_UNHEALTHY_FILE=/tmp/sick (this example's own Go health check, the API a service
// uses: unhealthy while that file exists; it replaces REGISTRY_HEALTH_URL);
// REGISTRY_DRAIN_SECONDS=10 (on SIGINT/SIGTERM the instance is registered DOWN at once and
// stays listed, heartbeating, for 10 s so callers' caches drop it, then deleted).
// REGISTER_EVENTS=1 prints the client's events (registered, registration lost, re-registered,
// status changed and why, stopped) on stderr as they happen.
//
// Build: cargo build --release (repository root), then go build ./register (examples/go).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	registrar "github.com/registrar/registrar/bindings/go"
)

// poll is how long one wait for the registration lasts before we look at errors again.
const poll = time.Second

func main() { os.Exit(run()) }

func run() int {
	// Signals end ctx; the Go runtime takes them, the library's threads are not involved.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cfg := registrar.ConfigFromEnv()
	// This example is ready to serve at once: register UP directly (no STARTING phase).
	cfg.Status = registrar.StatusUp
	if file := os.Getenv("REGISTER_UNHEALTHY_FILE"); file != "" {
		// Called on the library's health check thread; nil = healthy.
		cfg.HealthCheck = func() error {
			if _, err := os.Stat(file); err == nil {
				return fmt.Errorf("%s exists", file)
			}
			return nil
		}
	}
	client, err := registrar.Start(cfg)
	if err != nil {
		if errors.Is(err, registrar.ErrInvalidConfig) || errors.Is(err, registrar.ErrInvalidArgument) {
			fmt.Fprintf(os.Stderr, "register: bad configuration: %s\n", message(err))
			return 2
		}
		fmt.Fprintf(os.Stderr, "register: cannot start: %s\n", message(err))
		return 1
	}

	printed := make(chan struct{}) // closed when every event has been printed
	if os.Getenv("REGISTER_EVENTS") == "1" {
		go func() {
			defer close(printed)
			for ev := range client.Events() { // closed once Close has returned
				fmt.Fprintf(os.Stderr, "register: event %s\n", ev)
			}
		}()
	} else {
		close(printed)
	}

	exitCode := 0
	registered := false
	shown := "" // the last problem reported, "" = none
	report := func(prefix string) {
		now := ""
		if last := client.LastError(); last != nil && !errors.Is(last, registrar.ErrShutDown) {
			now = message(last)
		}
		if now != shown {
			if now != "" {
				fmt.Fprintf(os.Stderr, "register: %s: %s\n", prefix, now)
			} else {
				fmt.Fprintln(os.Stderr, "register: the registry answers again")
			}
			shown = now
		}
	}
loop:
	for ctx.Err() == nil {
		if !registered {
			wctx, cancel := context.WithTimeout(ctx, poll)
			err := client.WaitRegistered(wctx)
			cancel()
			switch {
			case err == nil:
				registered = true
				fmt.Printf("registered %s/%s\n", client.AppName(), client.InstanceID())
				shown = "" // report later problems afresh
			case ctx.Err() != nil: // a signal
			case errors.Is(err, registrar.ErrTimeout):
				report("not registered yet")
			default:
				fmt.Fprintf(os.Stderr, "register: waiting for the registration failed: %s\n", message(err))
				exitCode = 1
				break loop
			}
		} else {
			// Heartbeats run on the library's thread; we only watch for trouble and signals.
			select {
			case <-ctx.Done():
			case <-time.After(poll):
				report("registry problem")
			}
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "register: signal received, deregistering")
	}

	// Marks the instance DOWN (kept so for REGISTRY_DRAIN_SECONDS), deletes it from the
	// registry, ends the background task; bounded by the drain + REGISTRY_TIMEOUT.
	if err := client.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "register: deregistration did not complete: %s\n", message(err))
		exitCode = 1
	}
	<-printed
	return exitCode
}

// message is the library's message without the "registrar: " prefix of Error().
func message(err error) string {
	var e *registrar.Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return err.Error()
}
