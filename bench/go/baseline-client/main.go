// baseline-client: no Eureka client at all, only the probe and an idle Go runtime, measured
// over the same window as the real clients. Its binary size and idle CPU are the floor the
// other programs are compared against.
package main

import (
	"flag"
	"time"

	"github.com/registrar/registrar/bench/go/probe"
)

func main() {
	flag.String("url", "", "unused")
	flag.String("app", "", "unused")
	interval := flag.Duration("interval", 50*time.Millisecond, "heartbeat interval")
	beats := flag.Int("beats", 200, "heartbeats the others measure")
	flag.Parse()

	res := probe.Result{Client: "baseline", Before: probe.Take()}
	res.Registered = probe.Take()
	began := time.Now()
	time.Sleep(time.Duration(*beats) * *interval)
	res.After = probe.Take()
	res.WallNs = time.Since(began).Nanoseconds()
	res.Heartbeats = int64(*beats) // per "heartbeat" of the window, for comparison
	res.Print()
}
