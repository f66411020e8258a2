// Command httpservice is a net/http service that registers itself with Eureka: it listens
// first, registers the port it really got (so -listen 127.0.0.1:0 works), serves the health
// check URL it registers, marks itself UP once serving, and on SIGINT/SIGTERM deregisters
// before it stops serving (so the registry stops sending traffic first).
//
//	REGISTRY_URL=http://127.0.0.1:8761/eureka/ REGISTRY_APP_NAME=orders ./httpservice -listen :8080
//
// Other REGISTRY_* variables apply as usual; the port, and the home, status and health
// URLs, come from the listener. Output: "listening on http://ADDR" then "registered APP/ID".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	registrar "github.com/registrar/registrar/bindings/go"
)

func main() { os.Exit(run()) }

func run() int {
	listen := flag.String("listen", ":8080", "address to listen on (port 0: any free port)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "httpservice: %v\n", err)
		return 1
	}
	addr := ln.Addr().(*net.TCPAddr)

	cfg := registrar.ConfigFromEnv()
	cfg.Port = addr.Port
	host := cfg.Settings["REGISTRY_HOSTNAME"]
	if !addr.IP.IsUnspecified() {
		// Bound to one address: that is where clients must come.
		cfg.IPAddress = addr.IP.String()
		if host == "" {
			host = addr.IP.String()
			cfg.Hostname = host
		}
	}
	if host == "" {
		host, _ = os.Hostname()
	}
	base := "http://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
	cfg.HomePageURL = base + "/"
	cfg.StatusPageURL = base + "/status"
	cfg.HealthCheckURL = base + "/healthcheck"

	client, err := registrar.Start(cfg) // registers STARTING until we serve
	if err != nil {
		fmt.Fprintf(os.Stderr, "httpservice: %v\n", err)
		ln.Close()
		if errors.Is(err, registrar.ErrInvalidConfig) {
			return 2
		}
		return 1
	}
	defer client.Close()

	var healthy atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/healthcheck", func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			http.Error(w, `{"status":"DOWN"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"UP"}`)
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		info, err := client.Info()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"state":%q,"status":%q,"registrations":%d,"heartbeats":%d}`+"\n",
			info.State, info.Status, info.Registrations, info.Heartbeats)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s/%s\n", client.AppName(), client.InstanceID())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("listening on http://%s\n", addr)

	healthy.Store(true)
	if err := client.Up(); err != nil {
		fmt.Fprintf(os.Stderr, "httpservice: %v\n", err)
		return 1
	}
	go func() {
		// Report when the registry shows us UP; keep retrying in the background otherwise.
		shown := ""
		for ctx.Err() == nil {
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			err := client.WaitRegistered(wctx)
			cancel()
			if err == nil {
				fmt.Printf("registered %s/%s\n", client.AppName(), client.InstanceID())
				return
			}
			if !errors.Is(err, registrar.ErrTimeout) {
				return // closed
			}
			if last := client.LastError(); last != nil && last.Error() != shown {
				shown = last.Error()
				fmt.Fprintf(os.Stderr, "httpservice: not registered yet: %v\n", last)
			}
		}
	}()

	exit := 0
	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "httpservice: signal received, deregistering")
	case err := <-served:
		fmt.Fprintf(os.Stderr, "httpservice: %v\n", err)
		exit = 1
	}
	// Deregister first, so the registry stops sending traffic, then drain.
	healthy.Store(false)
	if err := client.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "httpservice: %v\n", err)
		exit = 1
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(os.Stderr, "httpservice: %v\n", err)
		exit = 1
	}
	return exit
}
