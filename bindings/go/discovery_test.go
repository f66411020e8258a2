package registrar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"
)

var _ io.Closer = (*Discovery)(nil)

// registerInstances registers one instance of app per status (ids APP-1, APP-2...; ports
// 18091, 18092...) with VIP "app.vip" and secure VIP "app.svip", and waits until the registry
// has them all. The clients are closed when the test ends.
func registerInstances(t *testing.T, url, app string, statuses ...Status) []*Client {
	t.Helper()
	var clients []*Client
	for i, st := range statuses {
		cfg := fastConfig(t, url)
		cfg.AppName = app
		cfg.InstanceID = fmt.Sprintf("%s-%d", strings.ToLower(app), i+1)
		cfg.Port = 18091 + i
		cfg.VIPAddress = strings.ToLower(app) + ".vip"
		cfg.SecureVIPAddress = strings.ToLower(app) + ".svip"
		cfg.Metadata = map[string]string{"index": fmt.Sprint(i + 1)}
		cfg.Status = st
		c, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
	}
	for _, c := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := c.WaitRegistered(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", c.InstanceID(), err)
		}
	}
	return clients
}

func ids(list []Instance) []string {
	out := make([]string, len(list))
	for i, inst := range list {
		out[i] = inst.ID
	}
	return out
}

func startTestDiscovery(t *testing.T, url string) *Discovery {
	t.Helper()
	d, err := StartDiscovery(Config{URL: url, Timeout: 2 * time.Second, FetchInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := d.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return d
}

// refreshUntil refreshes the cache until the UP instances of app are want (ids).
func refreshUntil(t *testing.T, d *Discovery, app string, want []string) {
	t.Helper()
	var got []Instance
	eventually(t, 10*time.Second, fmt.Sprintf("UP instances of %s are %v", app, want), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Refresh(ctx); err != nil {
			t.Logf("Refresh: %v", err)
			return false
		}
		var err error
		if got, err = d.Instances(app, false); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(ids(got)) == fmt.Sprint(want)
	})
}

func TestDiscoveryFindsRegisteredInstances(t *testing.T) {
	url := plainURL(t)
	app := uniqueApp(t)
	lower := strings.ToLower(app)
	clients := registerInstances(t, url, app, StatusUp, StatusUp, StatusDown)
	id1, id2, id3 := clients[0].InstanceID(), clients[1].InstanceID(), clients[2].InstanceID()

	d := startTestDiscovery(t, url)
	refreshUntil(t, d, lower, []string{id1, id2}) // app names are case-insensitive

	info, err := d.Info()
	if err != nil || !info.Ready || info.State != DiscoveryRunning || info.Version == 0 ||
		info.Instances < 3 || info.FullFetches == 0 || info.LastError != CodeOK {
		t.Errorf("Info() = %+v, %v", info, err)
	}
	if v := d.Version(); v < info.Version {
		t.Errorf("Version() = %d < %d", v, info.Version)
	}
	if d.LastError() != nil {
		t.Errorf("LastError() = %v", d.LastError())
	}

	// By VIP and secure VIP: the same UP instances; with all, the DOWN one too.
	for name, query := range map[string]func(string, bool) ([]Instance, error){
		"app": d.Instances, "vip": d.ByVIP, "svip": d.BySecureVIP,
	} {
		key := map[string]string{"app": app, "vip": lower + ".vip", "svip": lower + ".svip"}[name]
		up, err := query(key, false)
		if err != nil || fmt.Sprint(ids(up)) != fmt.Sprint([]string{id1, id2}) {
			t.Errorf("%s %q: %v, %v", name, key, ids(up), err)
		}
		every, err := query(key, true)
		if err != nil || fmt.Sprint(ids(every)) != fmt.Sprint([]string{id1, id2, id3}) {
			t.Errorf("%s %q, all: %v, %v", name, key, ids(every), err)
		}
	}
	if none, err := d.ByVIP("no-such-vip-"+lower, true); err != nil || len(none) != 0 {
		t.Errorf("unknown VIP: %v, %v", none, err)
	}

	// Instance(id) copies every field, whatever the status.
	down, err := d.Instance(id3)
	if err != nil {
		t.Fatal(err)
	}
	if down.ID != id3 || down.App != app || down.HostName != "127.0.0.1" || down.IPAddr != "127.0.0.1" ||
		down.Port != 18093 || !down.PortEnabled || down.SecurePortEnabled || down.Status != StatusDown ||
		down.VIPAddress != lower+".vip" || down.SecureVIPAddress != lower+".svip" ||
		down.Metadata["index"] != "3" || down.LastUpdated.IsZero() {
		t.Errorf("Instance(%q) = %+v", id3, down)
	}
	if !strings.HasPrefix(down.HealthCheckURL, "http://127.0.0.1:18093/") {
		t.Errorf("HealthCheckURL %q", down.HealthCheckURL)
	}
	if got := down.URL(true); got != "http://127.0.0.1:18093" {
		t.Errorf("URL(true) = %q (no secure port)", got)
	}
	if _, err := d.Instance("no-such-instance-" + lower); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}

	// Choose: round robin over the UP instances only.
	counts := map[string]int{}
	for range 6 {
		inst, err := d.Choose(app)
		if err != nil {
			t.Fatal(err)
		}
		counts[inst.ID]++
	}
	if counts[id1] != 3 || counts[id2] != 3 {
		t.Errorf("Choose x6: %v", counts)
	}
	urls := map[string]bool{}
	for range 2 {
		u, err := d.ChooseURL(app, false)
		if err != nil {
			t.Fatal(err)
		}
		urls[u] = true
	}
	if !urls["http://127.0.0.1:18091"] || !urls["http://127.0.0.1:18092"] {
		t.Errorf("ChooseURL x2: %v", urls)
	}
	if _, err := d.Choose("NO_SUCH_APP_" + app); !errors.Is(err, ErrNotFound) {
		t.Errorf("Choose(unknown app): %v", err)
	}

	// A change: WaitChange sees a newer version, and the instance is gone from the UP list.
	before := d.Version()
	if err := clients[1].Down(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clients[1].WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	refreshUntil(t, d, app, []string{id1})
	if v, err := d.WaitChange(ctx, before); err != nil || v <= before {
		t.Errorf("WaitChange(%d) = %d, %v", before, v, err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancelShort()
	if _, err := d.WaitChange(short, d.Version()); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitChange without a change: %v", err)
	}

	// Close is idempotent; queries then fail with ErrShutDown.
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := d.Instances(app, false); !errors.Is(err, ErrShutDown) {
		t.Errorf("Instances after Close: %v", err)
	}
	if _, err := d.Choose(app); !errors.Is(err, ErrShutDown) {
		t.Errorf("Choose after Close: %v", err)
	}
	if d.Version() != 0 {
		t.Errorf("Version after Close: %d", d.Version())
	}
}

func TestDiscoveryUnreachableRegistry(t *testing.T) {
	d, err := StartDiscovery(Config{URL: closedPortURL(t), Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err = d.WaitReady(ctx)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady: %v", err)
	}
	if !errors.Is(err, ErrTransport) {
		t.Errorf("WaitReady does not wrap the transport error: %v", err)
	}
	if list, err := d.Instances("ANY", true); err != nil || len(list) != 0 {
		t.Errorf("Instances before the first fetch: %v, %v", list, err)
	}
	if _, err := d.Choose("ANY"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Choose before the first fetch: %v", err)
	}
	if info, err := d.Info(); err != nil || info.Ready || info.FailedRefreshes == 0 {
		t.Errorf("Info() = %+v, %v", info, err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := d.WaitReady(context.Background()); !errors.Is(err, ErrShutDown) {
		t.Errorf("WaitReady after Close: %v", err)
	}
}

func TestDiscoveryConfigAndLifecycleErrors(t *testing.T) {
	_, err := NewDiscovery(Config{URL: "http://127.0.0.1:1/eureka/", Settings: map[string]string{"REGISTRY_FETCH_INTERVAL": "often"}})
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "REGISTRY_FETCH_INTERVAL") {
		t.Errorf("bad fetch interval: %v", err)
	}
	d, err := NewDiscovery(Config{URL: "http://127.0.0.1:1/eureka/"})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := d.Info(); err != nil || info.State != DiscoveryNotStarted {
		t.Errorf("Info() before Start = %+v, %v", info, err)
	}
	if err := d.Refresh(context.Background()); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Refresh before Start: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close of a cache never started: %v", err)
	}
}

func TestInstanceURL(t *testing.T) {
	inst := Instance{HostName: "a.example", IPAddr: "::1", Port: 80, SecurePort: 443, SecurePortEnabled: true}
	got := []string{inst.URL(false), inst.URL(true)}
	inst.HostName = ""
	inst.SecurePortEnabled = false
	got = append(got, inst.URL(false), inst.URL(true))
	want := []string{"http://a.example:80", "https://a.example:443", "http://[::1]:80", "http://[::1]:80"}
	sort.Strings(got)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("URLs %v, want %v", got, want)
	}
}
