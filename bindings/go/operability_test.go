package registrar

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)`)
)

// parseMetrics reads the text exposition format strictly: a TYPE line before every family's
// samples, counters named *_total, only the three label escapes, no duplicate series.
func parseMetrics(t *testing.T, text string) []sample {
	t.Helper()
	if !strings.HasSuffix(text, "\n") {
		t.Fatalf("metrics text does not end with a line feed")
	}
	typed := map[string]string{}
	seen := map[string]bool{}
	var out []sample
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, kind, _ := strings.Cut(rest, " ")
			if typed[name] != "" || (kind != "counter" && kind != "gauge") {
				t.Fatalf("bad TYPE line %q", line)
			}
			typed[name] = kind
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a sample line: %q", line)
		}
		name, body := m[1], m[2]
		if typed[name] == "" || (typed[name] == "counter" && !strings.HasSuffix(name, "_total")) {
			t.Fatalf("sample without a fitting TYPE: %q", line)
		}
		labels := map[string]string{}
		consumed := 0
		for _, lm := range labelPair.FindAllStringSubmatchIndex(body, -1) {
			if lm[0] != consumed {
				t.Fatalf("bad labels in %q", line)
			}
			consumed = lm[1]
			raw := body[lm[4]:lm[5]]
			labels[body[lm[2]:lm[3]]] = strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\n`, "\n").Replace(raw)
		}
		if consumed != len(body) {
			t.Fatalf("bad labels in %q", line)
		}
		value, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		key := fmt.Sprint(name, labels)
		if seen[key] {
			t.Fatalf("duplicate series %q", line)
		}
		seen[key] = true
		out = append(out, sample{name, labels, value})
	}
	return out
}

// metricValue returns the one sample of name with these labels (pairs), -1 if there is none.
func metricValue(t *testing.T, samples []sample, name string, pairs ...string) float64 {
	t.Helper()
	found := -1.0
	n := 0
	for _, s := range samples {
		if s.name != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(pairs); i += 2 {
			if s.labels[pairs[i]] != pairs[i+1] {
				match = false
			}
		}
		if match {
			found = s.value
			n++
		}
	}
	if n > 1 {
		t.Fatalf("%s%v: %d samples", name, pairs, n)
	}
	return found
}

func currentMetrics(t *testing.T) []sample {
	t.Helper()
	text, err := Metrics()
	if err != nil {
		t.Fatal(err)
	}
	return parseMetrics(t, text)
}

// recorder is a slog.Handler that keeps every record (with its attributes).
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// find returns the first record whose message contains text, and how many records there are.
func (r *recorder) find(text string) (slog.Record, bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		if strings.Contains(rec.Message, text) {
			return rec, true, len(r.records)
		}
	}
	return slog.Record{}, false, len(r.records)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.records)
}

func attrsOf(rec slog.Record) map[string]string {
	out := map[string]string{}
	rec.Attrs(func(a slog.Attr) bool {
		out[a.Key] = a.Value.String()
		return true
	})
	return out
}

func TestMetricsCountHeartbeatsAndSnapshotShowsState(t *testing.T) {
	url := plainURL(t)
	cfg := fastConfig(t, url)
	cfg.Status = StatusUp
	client, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := client.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "two heartbeats", func() bool {
		info, err := client.Info()
		return err == nil && info.Heartbeats >= 2
	})
	text, err := Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "# HELP registrar_heartbeats_total ") {
		t.Errorf("no HELP line for registrar_heartbeats_total:\n%s", text)
	}
	samples := parseMetrics(t, text)
	who := []string{"app", client.AppName(), "instance", client.InstanceID()}
	if v := metricValue(t, samples, "registrar_heartbeats_total", append(who, "result", "success")...); v < 2 {
		t.Errorf("heartbeats success = %v, want >= 2", v)
	}
	if v := metricValue(t, samples, "registrar_heartbeats_total", append(who, "result", "error")...); v != 0 {
		t.Errorf("heartbeats error = %v, want 0", v)
	}
	if v := metricValue(t, samples, "registrar_registrations_total", append(who, "result", "success")...); v < 1 {
		t.Errorf("registrations success = %v", v)
	}
	if v := metricValue(t, samples, "registrar_clients"); v < 1 {
		t.Errorf("registrar_clients = %v", v)
	}

	raw, err := client.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var snap struct {
		Phase      string          `json:"phase"`
		Status     string          `json:"status"`
		InstanceID string          `json:"instance_id"`
		Server     string          `json:"server"`
		LastError  json.RawMessage `json:"last_error"`
		Counters   struct {
			Heartbeats struct{ Success uint64 } `json:"heartbeats"`
		} `json:"counters"`
	}
	if err := json.Unmarshal(raw, &snap); err != nil {
		t.Fatalf("snapshot is not JSON: %v: %s", err, raw)
	}
	if snap.Phase != "registered" || snap.Status != "UP" || snap.InstanceID != client.InstanceID() ||
		snap.Server != url || string(snap.LastError) != "null" || snap.Counters.Heartbeats.Success < 2 {
		t.Errorf("snapshot = %s", raw)
	}

	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if v := metricValue(t, currentMetrics(t), "registrar_heartbeats_total", append(who, "result", "success")...); v != -1 {
		t.Errorf("a closed client is still in the metrics")
	}
	if _, err := client.Snapshot(); err == nil {
		t.Error("Snapshot after Close succeeded")
	}
}

func TestDiscoveryFetchesAreCounted(t *testing.T) {
	url := plainURL(t)
	cfg := fastConfig(t, url)
	cfg.Status = StatusUp
	client, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := client.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := StartDiscovery(Config{URL: url, FetchInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := d.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var snap struct {
		Cache     uint64 `json:"cache"`
		Phase     string `json:"phase"`
		Instances uint64 `json:"instances"`
		Server    string `json:"server"`
	}
	if err := json.Unmarshal(raw, &snap); err != nil {
		t.Fatalf("snapshot is not JSON: %v: %s", err, raw)
	}
	if snap.Phase != "running" || snap.Instances < 1 || snap.Server != url {
		t.Errorf("snapshot = %s", raw)
	}
	cache := strconv.FormatUint(snap.Cache, 10)
	samples := currentMetrics(t)
	for _, c := range []struct {
		kind, result string
		atLeast      float64
	}{{"full", "success", 1}, {"delta", "success", 1}, {"full", "error", 0}, {"delta", "error", 0}} {
		v := metricValue(t, samples, "registrar_discovery_fetches_total", "cache", cache, "kind", c.kind, "result", c.result)
		if v < c.atLeast || (c.atLeast == 0 && v != 0) {
			t.Errorf("fetches{kind=%s,result=%s} = %v", c.kind, c.result, v)
		}
	}
	if v := metricValue(t, samples, "registrar_discovery_instances", "cache", cache); v != float64(snap.Instances) {
		t.Errorf("registrar_discovery_instances = %v, snapshot says %d", v, snap.Instances)
	}
}

// With no Config.Logger, messages go to slog.Default() (as it is when they are logged), with
// the client's app and instance as attributes; nothing arrives after Close returns.
func TestLogsGoToSlogDefault(t *testing.T) {
	rec := &recorder{}
	previous := slog.Default()
	slog.SetDefault(slog.New(rec))
	defer slog.SetDefault(previous)

	cfg := fastConfig(t, closedPortURL(t))
	cfg.Timeout = time.Second
	client, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the failure logged", func() bool {
		_, found, _ := rec.find("registration failed")
		return found
	})
	got, _, _ := rec.find("registration failed")
	attrs := attrsOf(got)
	if got.Level != slog.LevelWarn || attrs["app"] != client.AppName() || attrs["instance"] != client.InstanceID() {
		t.Errorf("record = %v %q %v", got.Level, got.Message, attrs)
	}
	samples := currentMetrics(t)
	if v := metricValue(t, samples, "registrar_registrations_total", "instance", client.InstanceID(), "result", "error"); v < 1 {
		t.Errorf("registrations error = %v", v)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	after := rec.count()
	time.Sleep(500 * time.Millisecond)
	if rec.count() != after {
		t.Errorf("%d messages after Close returned", rec.count()-after)
	}
}

// A discovery cache logs through Config.Logger (here a *slog.Logger through SlogLogger): a
// failing registry, then (after Close) nothing.
func TestDiscoveryLogsThroughConfigLogger(t *testing.T) {
	rec := &recorder{}
	d, err := StartDiscovery(Config{URL: closedPortURL(t), Timeout: time.Second,
		Logger: SlogLogger(slog.New(rec)), LogLevel: LogInfo})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the failure logged", func() bool {
		_, found, _ := rec.find("refresh failed")
		return found
	})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	after := rec.count()
	time.Sleep(300 * time.Millisecond)
	if rec.count() != after {
		t.Errorf("%d messages after Close returned", rec.count()-after)
	}
}
