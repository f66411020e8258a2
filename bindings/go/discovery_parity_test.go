package registrar

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Against the real server: choice (round robin and random) by app, VIP and secure VIP, the
// URL flags (secure, IP in place of the host name) matching Instance.URLWith, and lookup by id.
func TestDiscoveryChoiceLookupsAndURLFlags(t *testing.T) {
	url := plainURL(t)
	app := uniqueApp(t)
	lower := strings.ToLower(app)
	var ids []string
	for i := 1; i <= 2; i++ {
		cfg := fastConfig(t, url)
		cfg.AppName = app
		cfg.InstanceID = fmt.Sprintf("%s-%d", lower, i)
		cfg.Hostname = fmt.Sprintf("parity-host-%d", i) // differs from the IP: URLUseIP shows
		cfg.IPAddress = "127.0.0.1"
		cfg.Port = 18100 + i
		cfg.SecurePort = 18200 + i
		cfg.VIPAddress = lower + ".vip"
		cfg.SecureVIPAddress = lower + ".svip"
		cfg.Status = StatusUp
		c, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = c.WaitRegistered(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.InstanceID())
	}
	d := startTestDiscovery(t, url)
	refreshUntil(t, d, app, ids)

	lookups := map[Lookup]string{LookupApp: lower, LookupVIP: lower + ".vip", LookupSecureVIP: lower + ".svip"}
	for lookup, name := range lookups {
		// Round robin: two picks in a row are the two instances.
		a, err1 := d.ChooseBy(lookup, name, RoundRobin)
		b, err2 := d.ChooseBy(lookup, name, RoundRobin)
		if err1 != nil || err2 != nil || a.ID == b.ID {
			t.Errorf("round robin by %d %q: %q %v, %q %v", lookup, name, a.ID, err1, b.ID, err2)
		}
		// Random: only known instances, both of them, and (unlike round robin, which never
		// repeats with two) the same one twice in a row sometimes: 200 picks make a miss
		// about 2^-199 likely.
		seen, repeated, previous := map[string]bool{}, false, ""
		for i := 0; i < 200 && (len(seen) < 2 || !repeated); i++ {
			inst, err := d.ChooseBy(lookup, name, Random)
			if err != nil || (inst.ID != ids[0] && inst.ID != ids[1]) {
				t.Fatalf("random by %d %q: %q %v", lookup, name, inst.ID, err)
			}
			seen[inst.ID], repeated, previous = true, repeated || inst.ID == previous, inst.ID
		}
		if len(seen) != 2 || !repeated {
			t.Errorf("random by %d %q: picked %v, a repeat: %v (200 tries)", lookup, name, seen, repeated)
		}
		if _, err := d.ChooseBy(lookup, "no-such-"+lower, Random); !isCode(err, CodeNotFound) {
			t.Errorf("unknown name by %d: %v", lookup, err)
		}
	}

	// URLs: the library's (ChooseURLBy) and the Go copy's (URLWith) agree for every flag.
	want := map[URLFlags][]string{
		0:                    {"http://parity-host-1:18101", "http://parity-host-2:18102"},
		URLSecure:            {"https://parity-host-1:18201", "https://parity-host-2:18202"},
		URLUseIP:             {"http://127.0.0.1:18101", "http://127.0.0.1:18102"},
		URLSecure | URLUseIP: {"https://127.0.0.1:18201", "https://127.0.0.1:18202"},
	}
	for flags, urls := range want {
		got := map[string]bool{}
		for i := 0; i < 2; i++ {
			u, err := d.ChooseURLBy(LookupVIP, lower+".vip", RoundRobin, flags)
			if err != nil {
				t.Fatal(err)
			}
			got[u] = true
		}
		for i, id := range ids {
			inst, err := d.Instance(id)
			if err != nil {
				t.Fatal(err)
			}
			if inst.URLWith(flags) != urls[i] || !got[urls[i]] {
				t.Errorf("flags %d: URLWith = %q, ChooseURLBy gave %v, want %q", flags, inst.URLWith(flags), got, urls[i])
			}
		}
	}
	if u, err := d.ChooseURL(app, true); err != nil || !strings.HasPrefix(u, "https://parity-host-") {
		t.Errorf("ChooseURL(secure) = %q, %v", u, err)
	}
	if _, err := d.ChooseURLBy(Lookup(7), lower, RoundRobin, 0); !isCode(err, CodeInvalidArgument) {
		t.Errorf("bad lookup: %v", err)
	}
	if _, err := d.ChooseBy(LookupApp, lower, Choice(9)); !isCode(err, CodeInvalidArgument) {
		t.Errorf("bad choice: %v", err)
	}
}

func isCode(err error, code Code) bool {
	e, ok := err.(*Error)
	return ok && e.Code == code
}

// logRecorder collects log messages from the library's thread.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) log(level LogLevel, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, level.String()+" "+message)
}

func (r *logRecorder) has(substr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

// OnChange delivers each change of the real registry; none after Close.
func TestDiscoveryOnChangeAndLogger(t *testing.T) {
	url := plainURL(t)
	var rec logRecorder
	d, err := NewDiscovery(Config{URL: url, Timeout: 2 * time.Second, FetchInterval: 200 * time.Millisecond,
		Logger: rec.log, LogLevel: LogDebug})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	changes := make(chan uint64, 100)
	d.OnChange(func(v uint64) { changes <- v })
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	var first uint64
	select {
	case first = <-changes:
	case <-time.After(15 * time.Second):
		t.Fatal("no change notified after the first fetch")
	}
	if first == 0 {
		t.Errorf("first version notified: 0")
	}
	eventually(t, 5*time.Second, "an INFO message about the first fetch", func() bool { return rec.has("INFO ") })

	// A registration is a change: a greater version arrives.
	cfg := fastConfig(t, url)
	cfg.Status = StatusUp
	c, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.After(20 * time.Second)
	for found := false; !found; {
		select {
		case v := <-changes:
			if v <= first {
				t.Fatalf("version went from %d to %d", first, v)
			}
			if _, err := d.Instance(c.InstanceID()); err == nil {
				found = true
			}
		case <-deadline:
			t.Fatal("the registration was not notified")
		}
	}

	// Removing the logger, then closing: no notification starts after Close returns.
	if err := d.SetLogger(nil, LogDebug); err != nil {
		t.Fatal(err)
	}
	if err := d.SetLogger(rec.log, LogLevel(42)); !isCode(err, CodeInvalidArgument) {
		t.Errorf("bad level: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for len(changes) > 0 {
		<-changes
	}
	time.Sleep(600 * time.Millisecond)
	if len(changes) != 0 {
		t.Errorf("notified after Close")
	}
	if err := d.SetLogger(rec.log, LogWarn); !isCode(err, CodeShutDown) {
		t.Errorf("SetLogger after Close: %v", err)
	}
}

// The client's logger: an unreachable registry is reported (WARN), through Config.Logger,
// and SlogLogger adapts a *slog.Logger; a panicking LogFunc does not kill the thread.
func TestClientLogger(t *testing.T) {
	var rec logRecorder
	cfg := fastConfig(t, closedPortURL(t))
	panicked := make(chan struct{}, 1)
	cfg.Logger = func(level LogLevel, message string) {
		rec.log(level, message)
		select {
		case panicked <- struct{}{}:
			panic("a LogFunc that panics once")
		default:
		}
	}
	cfg.LogLevel = LogWarn
	c, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a WARN about the unreachable registry", func() bool { return rec.has("WARN ") })
	c.Close()

	// Set later, on a running client, and replaced: the old one stops receiving.
	var later logRecorder
	c2, err := Start(fastConfig(t, plainURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.SetLogger(later.log, LogDebug); err != nil {
		t.Fatal(err)
	}
	if err := c2.Up(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a message from the running client", func() bool {
		later.mu.Lock()
		defer later.mu.Unlock()
		return len(later.msgs) > 0
	})
	if err := c2.SetLogger(nil, LogDebug); err != nil {
		t.Fatal(err)
	}
}
