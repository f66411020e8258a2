// fargo-client: the benchmark's fargo side, written the way fargo's README shows: a
// connection, RegisterInstance, then a loop of HeartBeatInstance and a sleep. -quiet sets
// fargo's logger to WARNING (by default it logs every response at INFO to stderr).
// Measures like registrar-client and prints one JSON line (probe.Result).
package main

import (
	"flag"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hudl/fargo"
	"github.com/op/go-logging"

	"github.com/registrar/registrar/bench/go/probe"
)

func main() {
	url := flag.String("url", "", "Eureka service URL")
	app := flag.String("app", "BENCH_FARGO", "app name")
	interval := flag.Duration("interval", 50*time.Millisecond, "heartbeat interval")
	beats := flag.Int("beats", 200, "heartbeats to measure")
	quiet := flag.Bool("quiet", false, "fargo logging at WARNING instead of its default")
	flag.Parse()

	res := probe.Result{Client: "fargo", Before: probe.Take()}
	if *quiet {
		res.Client = "fargo-quiet"
		logging.SetLevel(logging.WARNING, "fargo")
	}
	fail := func(err error) {
		res.Error = err.Error()
		res.Print()
		os.Exit(1)
	}

	// fargo appends "/apps/..." to the service URL itself: no trailing slash.
	e := fargo.NewConn(strings.TrimSuffix(*url, "/"))
	ins := fargo.Instance{
		InstanceId:       "127.0.0.1:" + strings.ToLower(*app) + ":18091",
		HostName:         "127.0.0.1",
		App:              strings.ToUpper(*app),
		IPAddr:           "127.0.0.1",
		VipAddress:       strings.ToLower(*app),
		SecureVipAddress: strings.ToLower(*app),
		DataCenterInfo:   fargo.DataCenterInfo{Name: fargo.MyOwn},
		Status:           fargo.UP,
		Port:             18091,
		PortEnabled:      true,
		LeaseInfo:        fargo.LeaseInfo{RenewalIntervalInSecs: 1, DurationInSecs: 30},
	}
	if err := e.RegisterInstance(&ins); err != nil {
		fail(err)
	}
	if !probe.Eventually(20*time.Second, func() bool {
		ok, _ := probe.Present(*url, ins.App, ins.Id())
		return ok
	}) {
		fail(os.ErrNotExist)
	}
	res.Registered = probe.Take()

	// The heartbeat loop, as in fargo's README: heartbeat, sleep, forever.
	var accepted atomic.Int64
	go func() {
		for {
			if err := e.HeartBeatInstance(&ins); err == nil {
				accepted.Add(1)
			}
			time.Sleep(*interval)
		}
	}()
	began := time.Now()
	time.Sleep(time.Duration(*beats) * *interval)
	res.After = probe.Take()
	res.WallNs = time.Since(began).Nanoseconds()
	res.Heartbeats = accepted.Load()

	if err := probe.Delete(*url, ins.App, ins.Id()); err != nil {
		fail(err)
	}
	// The loop keeps heartbeating; fargo reports the 404 as an error and does nothing else.
	res.ReRegistered = probe.Eventually(3*time.Second, func() bool {
		ok, _ := probe.Present(*url, ins.App, ins.Id())
		return ok
	})
	// fargo has no close: the user deregisters by hand (we do, to be fair).
	if err := e.DeregisterInstance(&ins); err != nil && res.ReRegistered {
		fail(err)
	}
	present, err := probe.Present(*url, ins.App, ins.Id())
	res.Deregistered = err == nil && !present
	res.Print()
}
