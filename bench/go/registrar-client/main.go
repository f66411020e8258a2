// registrar-client: the benchmark's registrar side. Registers UP, lets the library's
// background thread send -beats heartbeats every -interval, measures, checks the lifecycle
// (re-registration after the registry dropped the instance; deregistration on Close) and
// prints one JSON line (probe.Result).
package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/registrar/registrar/bench/go/probe"
	registrar "github.com/registrar/registrar/bindings/go"
)

func main() {
	url := flag.String("url", "", "Eureka service URL")
	app := flag.String("app", "BENCH_REGISTRAR", "app name")
	interval := flag.Duration("interval", 50*time.Millisecond, "heartbeat interval")
	beats := flag.Int("beats", 200, "heartbeats to measure")
	flag.Parse()

	res := probe.Result{Client: "registrar", Before: probe.Take()}
	fail := func(err error) {
		res.Error = err.Error()
		res.Print()
		os.Exit(1)
	}
	client, err := registrar.Start(registrar.Config{
		URL:               *url,
		AppName:           *app,
		Hostname:          "127.0.0.1",
		IPAddress:         "127.0.0.1",
		Port:              18090,
		HeartbeatInterval: *interval,
		LeaseDuration:     30 * time.Second,
		Status:            registrar.StatusUp,
	})
	if err != nil {
		fail(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := client.WaitRegistered(ctx); err != nil {
		fail(err)
	}
	info0, _ := client.Info()
	res.Registered = probe.Take()
	began := time.Now()

	// The library heartbeats on its own thread; this goroutine only sleeps.
	time.Sleep(time.Duration(*beats) * *interval)

	info1, _ := client.Info()
	res.After = probe.Take()
	res.WallNs = time.Since(began).Nanoseconds()
	res.Heartbeats = int64(info1.Heartbeats - info0.Heartbeats)

	appName, id := client.AppName(), client.InstanceID()
	if err := probe.Delete(*url, appName, id); err != nil {
		fail(err)
	}
	res.ReRegistered = probe.Eventually(3*time.Second, func() bool {
		ok, _ := probe.Present(*url, appName, id)
		return ok
	})
	if err := client.Close(); err != nil {
		fail(err)
	}
	present, err := probe.Present(*url, appName, id)
	res.Deregistered = err == nil && !present
	res.Print()
}
