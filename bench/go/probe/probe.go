// Package probe measures a benchmark client from inside its own process: goroutines, OS
// threads and RSS (from /proc/self/status), CPU time of all threads (getrusage), and checks
// the registry directly over HTTP.
package probe

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sample is a point-in-time measurement of this process.
type Sample struct {
	Goroutines int   `json:"goroutines"`
	Threads    int   `json:"threads"`
	RSSKiB     int64 `json:"rss_kib"`
	CPU        int64 `json:"cpu_ns"` // user + system time of all threads so far
}

// Take measures now.
func Take() Sample {
	s := Sample{Goroutines: runtime.NumGoroutine(), CPU: CPU()}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return s
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "Threads":
			s.Threads = int(n)
		case "VmRSS":
			s.RSSKiB = n
		}
	}
	return s
}

// CPU returns the process's user + system CPU time in nanoseconds.
func CPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// Result is what a client program prints (one JSON line) for the driver.
type Result struct {
	Client     string `json:"client"`
	Before     Sample `json:"before"`     // runtime up, no client yet
	Registered Sample `json:"registered"` // the registry accepted the instance
	After      Sample `json:"after"`      // after the measured heartbeats
	Heartbeats int64  `json:"heartbeats"` // accepted heartbeats between Registered and After
	WallNs     int64  `json:"wall_ns"`
	// Lifecycle checks, against the real registry:
	ReRegistered bool   `json:"reregistered_after_delete"` // came back after a DELETE (as after a server restart or eviction)
	Deregistered bool   `json:"deregistered_on_close"`     // gone from the registry right after close
	Error        string `json:"error,omitempty"`
}

// Print writes the result as one JSON line on stdout.
func (r Result) Print() {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

// Present reports whether GET {url}apps/{app}/{id} finds the instance.
func Present(url, app, id string) (bool, error) {
	return do("GET", url+"apps/"+app+"/"+id)
}

// Delete removes the instance from the registry behind the client's back (what a server
// restart or an eviction does to it).
func Delete(url, app, id string) error {
	_, err := do("DELETE", url+"apps/"+app+"/"+id)
	return err
}

var plain = &http.Client{Timeout: 5 * time.Second}

func do(method, u string) (bool, error) {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := plain.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("%s %s: HTTP %d", method, u, resp.StatusCode)
}

// Eventually polls cond every 50 ms for up to timeout.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
