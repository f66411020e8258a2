// Command bench compares registrar's Go binding with github.com/hudl/fargo, side by side in
// one run, on loopback, against the same real Eureka server: binary size, goroutines, OS
// threads and RSS added by the client, CPU per heartbeat, and two lifecycle checks
// (re-registration after the registry dropped the instance; deregistration on close).
//
// Run by hand from bench/go after `cargo build --release` at the repository root:
//
//	go run ./cmd/bench                      # starts (and stops) its own Eureka server
//	go run ./cmd/bench -url http://127.0.0.1:8761/eureka/ -rounds 5 -beats 400
//
// Each client is a separate program (registrar-client, fargo-client) that measures itself;
// rounds alternate between the clients so drift on a noisy machine hits all of them alike;
// the table shows medians.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/registrar/registrar/bench/go/probe"
)

func main() { os.Exit(run()) }

type variant struct {
	name string
	bin  string
	args []string
}

func run() int {
	url := flag.String("url", "", "Eureka service URL (default: start a server with scripts/test-eureka.sh)")
	interval := flag.Duration("interval", 50*time.Millisecond, "heartbeat interval")
	beats := flag.Int("beats", 200, "heartbeats measured per run")
	rounds := flag.Int("rounds", 3, "runs per client (alternating)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	root, err := filepath.Abs("../..")
	if err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp("", "registrar-bench-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)

	// Build the programs compared (default flags, as a user would).
	fmt.Fprintln(os.Stderr, "bench: building")
	bins := map[string]string{}
	stripped := map[string]string{}
	for _, b := range []struct{ name, dir, pkg string }{
		{"baseline-client", "bench/go", "./baseline-client"},
		{"registrar-client", "bench/go", "./registrar-client"},
		{"fargo-client", "bench/go", "./fargo-client"},
		{"register", "examples/go", "./register"},
	} {
		for _, strip := range []bool{false, true} {
			out := filepath.Join(tmp, b.name)
			args := []string{"build", "-o", out}
			if strip {
				out += "-stripped"
				args = []string{"build", "-ldflags=-s -w", "-o", out}
			}
			cmd := exec.Command("go", append(args, b.pkg)...)
			cmd.Dir = filepath.Join(root, b.dir)
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				return fail(fmt.Errorf("go build %s: %v", b.pkg, err))
			}
			if strip {
				stripped[b.name] = out
			} else {
				bins[b.name] = out
			}
		}
	}

	if *url == "" {
		dir := filepath.Join(tmp, "eureka")
		fmt.Fprintln(os.Stderr, "bench: starting a Eureka server")
		cmd := exec.Command(filepath.Join(root, "scripts/test-eureka.sh"), "start", dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		defer func() {
			stopCmd := exec.Command(filepath.Join(root, "scripts/test-eureka.sh"), "stop", dir)
			stopCmd.Stderr = os.Stderr
			stopCmd.Run()
		}()
		if err != nil {
			return fail(fmt.Errorf("starting Eureka: %v", err))
		}
		*url = strings.TrimSpace(string(out))
	}

	common := []string{"-url", *url, "-interval", interval.String(), "-beats", fmt.Sprint(*beats)}
	variants := []variant{
		{"none (baseline)", bins["baseline-client"], common},
		{"registrar", bins["registrar-client"], common},
		{"fargo (default logging)", bins["fargo-client"], common},
		{"fargo (logging WARNING)", bins["fargo-client"], append([]string{"-quiet"}, common...)},
	}
	results := map[string][]probe.Result{}
	for r := range *rounds {
		for _, v := range variants {
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			app := fmt.Sprintf("BENCH_%s_%d_%d", strings.ToUpper(strings.Fields(v.name)[0]), os.Getpid(), r)
			res, err := runClient(ctx, v, app, *interval, *beats)
			if err != nil {
				return fail(fmt.Errorf("%s: %v", v.name, err))
			}
			fmt.Fprintf(os.Stderr, "bench: round %d %-24s %4d heartbeats, %6.1f µs CPU/heartbeat\n",
				r+1, v.name, res.Heartbeats, cpuPerBeat(res))
			results[v.name] = append(results[v.name], res)
		}
	}

	fmt.Printf("registrar vs fargo: %d rounds x %d heartbeats every %v, loopback, one Eureka server (medians)\n\n",
		*rounds, *beats, *interval)
	fmt.Printf("%-24s %8s %9s %9s %9s %8s %14s %12s %11s\n", "client", "binary", "stripped", "+gorout.", "+threads",
		"+RSS", "CPU/heartbeat", "re-register", "deregister")
	sizes := map[string]string{"none (baseline)": "baseline-client", "registrar": "registrar-client",
		"fargo (default logging)": "fargo-client", "fargo (logging WARNING)": "fargo-client"}
	for _, v := range variants {
		rs := results[v.name]
		fmt.Printf("%-24s %6.1fMB %7.1fMB %9s %9s %6.1fMB %12.1fµs %12s %11s\n", v.name,
			mb(fileSize(bins[sizes[v.name]])), mb(fileSize(stripped[sizes[v.name]])),
			fmt.Sprintf("%+d", medianInt(rs, func(r probe.Result) int64 { return int64(r.After.Goroutines - r.Before.Goroutines) })),
			fmt.Sprintf("%+d", medianInt(rs, func(r probe.Result) int64 { return int64(r.After.Threads - r.Before.Threads) })),
			float64(medianInt(rs, func(r probe.Result) int64 { return r.After.RSSKiB - r.Before.RSSKiB }))/1024,
			median(rs, cpuPerBeat),
			lifecycle(v, rs, func(r probe.Result) bool { return r.ReRegistered }),
			lifecycle(v, rs, func(r probe.Result) bool { return r.Deregistered }))
	}
	fmt.Printf("\nexamples/go/register binary: %.1f MB (stripped %.1f MB)\n",
		mb(fileSize(bins["register"])), mb(fileSize(stripped["register"])))
	fmt.Println("CPU: user+system time of the whole client process (all threads) over the measured window,")
	fmt.Println("divided by the heartbeats the registry accepted in it. +X: after the heartbeats minus before")
	fmt.Println("the client was created (same process). re-register: the instance came back within 3 s after")
	fmt.Println("a DELETE behind the client's back; deregister: gone right after close (fargo: by hand).")
	fmt.Println("Baseline: the probe alone, idle for the same window; its CPU is divided by -beats.")
	return 0
}

func runClient(ctx context.Context, v variant, app string, interval time.Duration, beats int) (probe.Result, error) {
	limit := 30*time.Second + time.Duration(beats)*interval*2
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(cctx, v.bin, append([]string{"-app", app}, v.args...)...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	// fargo logs to stderr by default; its cost is measured, its text is not wanted here.
	err := cmd.Run()
	var res probe.Result
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &res); jerr != nil {
		return res, fmt.Errorf("%v; output %q", err, stdout.String())
	}
	if res.Error != "" {
		return res, fmt.Errorf("%s", res.Error)
	}
	if err != nil {
		return res, err
	}
	if res.Heartbeats == 0 {
		return res, fmt.Errorf("no heartbeat accepted")
	}
	return res, nil
}

func cpuPerBeat(r probe.Result) float64 {
	return float64(r.After.CPU-r.Registered.CPU) / float64(r.Heartbeats) / 1e3
}

func median(rs []probe.Result, f func(probe.Result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func medianInt(rs []probe.Result, f func(probe.Result) int64) int64 {
	return int64(median(rs, func(r probe.Result) float64 { return float64(f(r)) }))
}

func lifecycle(v variant, rs []probe.Result, f func(probe.Result) bool) string {
	if strings.HasPrefix(v.name, "none") {
		return "-"
	}
	return allOf(rs, f)
}

func allOf(rs []probe.Result, f func(probe.Result) bool) string {
	n := 0
	for _, r := range rs {
		if f(r) {
			n++
		}
	}
	switch n {
	case len(rs):
		return "yes"
	case 0:
		return "no"
	}
	return fmt.Sprintf("%d/%d", n, len(rs))
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

func fail(err error) int {
	fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	return 1
}
