package registrar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var _ io.Closer = (*Client)(nil)

func TestLibraryVersionAndABI(t *testing.T) {
	if got := ABIVersion(); got != abiVersion {
		t.Fatalf("ABIVersion() = %d, want %d", got, abiVersion)
	}
	if initErr != nil {
		t.Fatalf("init: %v", initErr)
	}
	if Version() == "" {
		t.Fatal("empty Version()")
	}
}

func TestCodesMatchTheCLibrary(t *testing.T) {
	for code := CodeOK; code <= CodePanic; code++ {
		if got, want := code.String(), cStatusName(code); got != want {
			t.Errorf("Code(%d).String() = %q, C says %q", code, got, want)
		}
	}
	if got, want := Code(99).String(), cStatusName(99); got != want {
		t.Errorf("Code(99).String() = %q, C says %q", got, want)
	}
}

func TestSentinelsMatchByCode(t *testing.T) {
	if CodeOK.Sentinel() != nil {
		t.Error("CodeOK has a sentinel")
	}
	seen := map[error]bool{}
	for code := CodeNullArgument; code <= CodePanic; code++ {
		sentinel := code.Sentinel()
		if sentinel == nil || seen[sentinel] {
			t.Fatalf("code %v: missing or duplicate sentinel", code)
		}
		seen[sentinel] = true
		err := fmt.Errorf("wrapped: %w", newError(code, "something happened"))
		if !errors.Is(err, sentinel) {
			t.Errorf("errors.Is(%v, sentinel of %v) = false", err, code)
		}
		for other := CodeNullArgument; other <= CodePanic; other++ {
			if other != code && errors.Is(err, other.Sentinel()) {
				t.Errorf("error with code %v matches the sentinel of %v", code, other)
			}
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != code || e.Message != "something happened" {
			t.Errorf("errors.As: %+v", e)
		}
		if got := newError(code, "something happened").Error(); got != "registrar: something happened" {
			t.Errorf("Error() = %q", got)
		}
		if !strings.HasPrefix(sentinel.Error(), "registrar: ") {
			t.Errorf("sentinel text %q", sentinel.Error())
		}
	}
}

func TestConfigNeverPrintsThePassword(t *testing.T) {
	const secret = "pw-Very-Secret-42"
	cfg := Config{
		URL:      "http://alice:" + secret + "@127.0.0.1:1/eureka/,http://bob:" + secret + "@127.0.0.2:2/eureka/",
		User:     "alice",
		Password: secret,
		AppName:  "shop",
		Port:     8080,
		Metadata: map[string]string{"zone": "a"},
		Settings: map[string]string{"password": secret, "REGISTRY_URL": "https://x:" + secret + "@h/eureka/"},
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{cfg, &cfg, []Config{cfg}, map[string]Config{"c": cfg}} {
			out := fmt.Sprintf(format, v)
			if strings.Contains(out, secret) {
				t.Errorf("%s of %T shows the password: %s", format, v, out)
			}
		}
	}
	s := cfg.String()
	for _, want := range []string{"REGISTRY_APP_NAME='shop'", "REGISTRY_PORT='8080'", "REGISTRY_USER='alice'",
		"REGISTRY_PASSWORD='***'", "http://***@127.0.0.1:1/eureka/", "\"zone\": \"a\""} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %s, missing %s", s, want)
		}
	}
}

// REGISTRY_URL values that leaked the password before the library's one redaction (issue 9):
// the password is "Xy7q<sep>Zw9k" and neither half may show in String or in Start's error.
func TestMalformedURLsNeverShowThePassword(t *testing.T) {
	urls := []string{
		"http://user:Xy7q/Zw9k@127.0.0.1:8761/eureka/",
		"http://user:Xy7q#Zw9k@127.0.0.1:8761/eureka/",
		"http://user:Xy7q?Zw9k@127.0.0.1:8761/eureka/",
		"http://user:Xy7q@Zw9k@127.0.0.1:8761/eureka/",
		"http://user:Xy7q,Zw9k@127.0.0.1:8761/eureka/",
		"user:Xy7qZw9k@127.0.0.1:8761/eureka/",
		"http://ok:1/eureka/,http://user:Xy7q/Zw9k@127.0.0.1:8761/eureka/",
		"http://user:Xy7qZw9k@a:1/eureka/, user:Xy7qZw9k@b:2/eureka/",
	}
	for _, url := range urls {
		// A bad port too, so that even the URLs that parse fail.
		cfg := Config{URL: url, AppName: "shop", Settings: map[string]string{"port": "x"}}
		client, err := Start(cfg)
		if err == nil {
			client.Close()
			t.Fatalf("%s: Start succeeded", url)
		}
		for _, text := range []string{cfg.String(), fmt.Sprintf("%#v", cfg), err.Error()} {
			if strings.Contains(text, "Xy7q") || strings.Contains(text, "Zw9k") {
				t.Errorf("%s leaked: %s", url, text)
			}
		}
		if !strings.Contains(cfg.String(), "REGISTRY_URL='") || !strings.Contains(err.Error(), "REGISTRY_PORT 'x'") {
			t.Errorf("%s: String %s, error %v", url, cfg.String(), err)
		}
	}
	// An unknown setting name is listed, never its value.
	s := Config{AppName: "shop", Settings: map[string]string{"passwd": "Xy7q"}}.String()
	if !strings.Contains(s, `unknown settings: "passwd"`) || strings.Contains(s, "Xy7q") {
		t.Errorf("String() = %s", s)
	}
}

func TestEveryMistakeInOneError(t *testing.T) {
	err := Config{URL: "http://127.0.0.1:1/eureka/", AppName: "shop",
		Settings: map[string]string{"type": "consul", "port": "eighty"}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "REGISTRY_TYPE 'consul'") ||
		!strings.Contains(err.Error(), "REGISTRY_PORT 'eighty'") {
		t.Errorf("Validate() = %v", err)
	}
	for _, name := range []string{".", "..", "%2e%2e"} {
		err := Config{URL: "http://127.0.0.1:1/eureka/", AppName: name}.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "REGISTRY_APP_NAME") {
			t.Errorf("app name %q: %v", name, err)
		}
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	const secret = "pw-Very-Secret-43"
	base := Config{URL: "http://127.0.0.1:1/eureka/", AppName: "shop", Password: secret, User: "u"}
	cases := []struct {
		name    string
		edit    func(*Config)
		want    error
		mention string
	}{
		{"no app name", func(c *Config) { c.AppName = "" }, ErrInvalidConfig, "REGISTRY_APP_NAME"},
		{"no url", func(c *Config) { c.URL = "" }, ErrInvalidConfig, "REGISTRY_URL"},
		{"bad url", func(c *Config) { c.URL = "ftp://u:" + secret + "@x/" }, ErrInvalidConfig, "REGISTRY_URL"},
		{"bad port", func(c *Config) { c.Settings = map[string]string{"port": "eighty"} }, ErrInvalidConfig, "REGISTRY_PORT"},
		{"port too big", func(c *Config) { c.Port = 70000 }, ErrInvalidConfig, "REGISTRY_PORT"},
		{"bad heartbeat", func(c *Config) { c.HeartbeatInterval = -time.Second }, ErrInvalidConfig, "REGISTRY_HEARTBEAT_INTERVAL"},
		{"unknown setting", func(c *Config) { c.Settings = map[string]string{"colour": "blue"} }, ErrInvalidConfig, "colour"},
		{"bad metadata key", func(c *Config) { c.Metadata = map[string]string{"bad key!": "v"} }, ErrInvalidArgument, "bad key!"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			client, err := Start(cfg)
			if err == nil {
				client.Close()
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Start: %v; want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("message %q does not mention %s", err, tc.mention)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("message shows the password: %q", err)
			}
			if tc.want == ErrInvalidConfig {
				if verr := cfg.Validate(); !errors.Is(verr, ErrInvalidConfig) {
					t.Errorf("Validate: %v", verr)
				}
			}
		})
	}
	if err := base.Validate(); err != nil {
		t.Errorf("Validate of a good config: %v", err)
	}
}

func TestConfigFromEnvAndOverrides(t *testing.T) {
	t.Setenv("REGISTRY_URL", closedPortURL(t))
	t.Setenv("REGISTRY_APP_NAME", "env_app")
	t.Setenv("REGISTRY_HOSTNAME", "env-host")
	t.Setenv("REGISTRY_PORT", "1234")
	t.Setenv("REGISTRY_METADATA", "a=1,b=2")
	t.Setenv("REGISTRY_INSTANCE_ID", "   ") // blank counts as unset
	t.Setenv("REGISTRY_TIMEOUT", "0.5")
	cfg := ConfigFromEnv()
	if cfg.Settings["REGISTRY_APP_NAME"] != "env_app" || cfg.Settings["REGISTRY_PORT"] != "1234" {
		t.Fatalf("Settings = %v", cfg.Settings)
	}
	if _, ok := cfg.Settings["REGISTRY_INSTANCE_ID"]; ok {
		t.Error("a blank variable was taken")
	}
	cfg.Port = 4321                            // code wins over the environment
	cfg.Metadata = map[string]string{"b": "3"} // merges over REGISTRY_METADATA
	client, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if got, want := client.InstanceID(), "env-host:env_app:4321"; !strings.EqualFold(got, want) {
		t.Errorf("InstanceID() = %q, want %q", got, want)
	}
	if got := client.AppName(); got != "ENV_APP" {
		t.Errorf("AppName() = %q", got)
	}
	for k, want := range map[string]string{"a": "1", "b": "3"} {
		if got, err := client.Metadata(k); err != nil || got != want {
			t.Errorf("Metadata(%q) = %q, %v; want %q", k, got, err, want)
		}
	}
	if _, err := client.Metadata("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Metadata(missing): %v", err)
	}
}

func TestRegisterHeartbeatStatusMetadataClose(t *testing.T) {
	url := plainURL(t)
	client, err := Start(fastConfig(t, url))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	app, id := client.AppName(), client.InstanceID()
	if err := client.Up(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := client.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	inst, found := lookup(t, url, app, id, false)
	if !found || inst.Status != "UP" {
		t.Fatalf("registry: found=%v status=%q", found, inst.Status)
	}
	if s := client.State(); s != StateRegistered {
		t.Errorf("State() = %v", s)
	}

	// Heartbeats advance the lease.
	first := renewal(t, inst)
	eventually(t, 10*time.Second, "lastRenewalTimestamp advances", func() bool {
		inst, _ := lookup(t, url, app, id, false)
		return renewal(t, inst).Cmp(first) > 0
	})
	// The server records the renewal before the client has read the answer and counted the
	// heartbeat: wait for the count too (it once read 0 here under -race).
	eventually(t, 5*time.Second, "the client counts a heartbeat", func() bool {
		info, err := client.Info()
		return err == nil && info.Heartbeats > 0
	})
	info, err := client.Info()
	if err != nil || info.Heartbeats == 0 || info.Registrations == 0 || info.Status != StatusUp || info.LastError != CodeOK {
		t.Errorf("Info() = %+v, %v", info, err)
	}
	if err := client.LastError(); err != nil {
		t.Errorf("LastError() = %v", err)
	}

	// Metadata and status changes reach the registry.
	if err := client.SetMetadata("zone", "eu-1"); err != nil {
		t.Fatal(err)
	}
	if err := client.OutOfService(); err != nil {
		t.Fatal(err)
	}
	if err := client.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	inst, _ = lookup(t, url, app, id, false)
	if inst.Status != "OUT_OF_SERVICE" || inst.Metadata["zone"] != "eu-1" {
		t.Errorf("registry: status %q metadata %v", inst.Status, inst.Metadata)
	}
	if err := client.DeleteMetadata("zone"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Metadata("zone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Metadata after delete: %v", err)
	}
	if err := client.SetMetadata("not a key", "x"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("SetMetadata(bad key): %v", err)
	}
	if err := client.SetStatus(StatusUnknown); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("SetStatus(UNKNOWN): %v", err)
	}
	if err := client.Up(); err != nil {
		t.Fatal(err)
	}
	if err := client.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}

	// Close deregisters at once, and is idempotent.
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, found := lookup(t, url, app, id, false); found {
		t.Error("still registered after Close")
	}
	if err := client.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if s := client.State(); s != StateStopped {
		t.Errorf("State() after Close = %v", s)
	}
	for name, err := range map[string]error{
		"Up":             client.Up(),
		"SetMetadata":    client.SetMetadata("a", "b"),
		"WaitRegistered": client.WaitRegistered(context.Background()),
	} {
		if !errors.Is(err, ErrShutDown) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	if _, err := client.Info(); !errors.Is(err, ErrShutDown) {
		t.Errorf("Info after Close: %v", err)
	}
	if client.InstanceID() != id || client.AppName() != app {
		t.Error("identity lost after Close")
	}
}

func renewal(t *testing.T, inst remoteInstance) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(inst.LeaseInfo.LastRenewalTimestamp.String(), 10)
	if !ok {
		t.Fatalf("lastRenewalTimestamp %q", inst.LeaseInfo.LastRenewalTimestamp)
	}
	return n
}

func TestRegisterWithBasicAuth(t *testing.T) {
	url := authURL(t)
	cfg := fastConfig(t, url)
	cfg.User, cfg.Password = "registrar", testPassword()
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
	if inst, found := lookup(t, url, client.AppName(), client.InstanceID(), true); !found || inst.Status != "UP" {
		t.Fatalf("registry: found=%v status=%q", found, inst.Status)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if _, found := lookup(t, url, client.AppName(), client.InstanceID(), true); found {
		t.Error("still registered after Close")
	}
}

func TestWrongPassword(t *testing.T) {
	url := authURL(t)
	const wrong = "pw-Wrong-Secret-44"
	for _, how := range []string{"fields", "url"} {
		t.Run(how, func(t *testing.T) {
			cfg := fastConfig(t, url)
			if how == "fields" {
				cfg.User, cfg.Password = "registrar", wrong
			} else {
				cfg.URL = strings.Replace(url, "http://", "http://registrar:"+wrong+"@", 1)
			}
			client, err := Start(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err = client.WaitRegistered(ctx)
			if err == nil {
				t.Fatal("registered with a wrong password")
			}
			for _, target := range []error{ErrTimeout, ErrUnauthorized, context.DeadlineExceeded} {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false", err, target)
				}
			}
			last := client.LastError()
			if !errors.Is(last, ErrUnauthorized) {
				t.Errorf("LastError() = %v", last)
			}
			info, _ := client.Info()
			if info.LastError != CodeUnauthorized || info.State != StateRegistering || info.FailedRequests == 0 {
				t.Errorf("Info() = %+v", info)
			}
			for _, text := range []string{err.Error(), last.Error(), fmt.Sprintf("%v %+v", cfg, cfg)} {
				if strings.Contains(text, wrong) {
					t.Errorf("the password shows in %q", text)
				}
			}
			if err := client.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

func TestWaitRegisteredHonoursContext(t *testing.T) {
	cfg := fastConfig(t, closedPortURL(t))
	client, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	began := time.Now()
	err = client.WaitRegistered(ctx)
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("WaitRegistered returned %v after the cancel", took-500*time.Millisecond)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrTransport) {
		t.Errorf("WaitRegistered: %v", err)
	}
	if !strings.Contains(err.Error(), "registry unreachable") {
		t.Errorf("message does not say why: %v", err)
	}
	// An already expired context returns at once.
	expired, cancel2 := context.WithTimeout(context.Background(), -time.Second)
	defer cancel2()
	if err := client.WaitRegistered(expired); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired context: %v", err)
	}
}

func TestCloseWakesWaiters(t *testing.T) {
	client, err := Start(fastConfig(t, closedPortURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	const waiters = 4
	errs := make(chan error, waiters)
	for range waiters {
		go func() { errs <- client.WaitRegistered(context.Background()) }()
	}
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	if err := client.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for range waiters {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrShutDown) {
				t.Errorf("waiter: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a waiter did not return after Close")
		}
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Close and waking the waiters took %v", took)
	}
}

// Many goroutines use one client while another closes it: every call either works or
// returns ErrShutDown, nothing crashes (run with -race), and the instance is deregistered.
func TestManyGoroutinesOneClient(t *testing.T) {
	url := plainURL(t)
	cfg := fastConfig(t, url)
	cfg.Status = StatusUp
	client, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := client.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 16, 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	unexpected := []error{}
	okOrClosed := func(err error, allowed ...error) {
		if err == nil || errors.Is(err, ErrShutDown) {
			return
		}
		for _, a := range allowed {
			if errors.Is(err, a) {
				return
			}
		}
		mu.Lock()
		unexpected = append(unexpected, err)
		mu.Unlock()
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%d", w)
			for r := range rounds {
				okOrClosed(client.SetMetadata(key, fmt.Sprint(r)))
				_, err := client.Metadata(key)
				okOrClosed(err, ErrNotFound)
				_, err = client.Info()
				okOrClosed(err)
				okOrClosed(client.LastError())
				_ = client.State()
				if r%10 == 0 {
					okOrClosed(client.Up())
					wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
					okOrClosed(client.WaitRegistered(wctx), ErrTimeout)
					wcancel()
				}
				if w == 0 && r == rounds/2 {
					okOrClosed(client.Close())
				}
				_ = client.InstanceID()
			}
		}()
	}
	wg.Wait()
	for _, err := range unexpected {
		t.Errorf("unexpected error: %v", err)
	}
	if err := client.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, found := lookup(t, url, client.AppName(), client.InstanceID(), false); found {
		t.Error("still registered after Close")
	}
}

// Many clients at once, each in its own goroutine, on the same registry.
func TestManyClients(t *testing.T) {
	url := plainURL(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := fastConfig(t, url)
			cfg.Port = 19000 + i
			cfg.Status = StatusUp
			client, err := Start(cfg)
			if err != nil {
				errs <- err
				return
			}
			defer client.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := client.WaitRegistered(ctx); err != nil {
				errs <- err
				return
			}
			if err := client.Close(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A client dropped without Close is closed (deregistered) by the cleanup safety net.
func TestCleanupClosesAForgottenClient(t *testing.T) {
	url := plainURL(t)
	cfg := fastConfig(t, url)
	cfg.Status = StatusUp
	app, id := func() (string, string) {
		client, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := client.WaitRegistered(ctx); err != nil {
			t.Fatal(err)
		}
		return client.AppName(), client.InstanceID()
	}()
	before := cleanupsRun.Load()
	eventually(t, 10*time.Second, "the cleanup runs", func() bool {
		runtime.GC()
		return cleanupsRun.Load() > before
	})
	eventually(t, 10*time.Second, "the forgotten client deregisters", func() bool {
		_, found := lookup(t, url, app, id, false)
		return !found
	})
}

// A closed client is not closed again by the cleanup.
func TestCleanupNotRunAfterClose(t *testing.T) {
	before := cleanupsRun.Load()
	for range 20 {
		client, err := Start(fastConfig(t, closedPortURL(t)))
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := cleanupsRun.Load() - before; n != 0 {
		t.Errorf("%d cleanups ran for closed clients", n)
	}
}

// The registry forgets everything when it restarts; the client registers again on its own.
func TestReRegistersAfterServerRestart(t *testing.T) {
	server := startDedicatedServer(t)
	cfg := fastConfig(t, server.url)
	cfg.Status = StatusUp
	rec := &recorder{}
	cfg.Logger, cfg.LogLevel = SlogLogger(slog.New(rec)), LogInfo
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
	app, id := client.AppName(), client.InstanceID()
	began := time.Now()
	server.stop()
	t.Logf("server stopped after %v", time.Since(began))
	eventually(t, 10*time.Second, "the client notices the registry is gone", func() bool {
		info, err := client.Info()
		return err == nil && info.LastError != CodeOK
	})
	// The failed heartbeat is counted as result="error" and logged (Warn) through cfg.Logger.
	who := []string{"app", app, "instance", id}
	if v := metricValue(t, currentMetrics(t), "registrar_heartbeats_total", append(who, "result", "error")...); v < 1 {
		t.Errorf("heartbeats error = %v after the server stopped", v)
	}
	eventually(t, 5*time.Second, "the failed heartbeat logged", func() bool {
		rec, found, _ := rec.find("heartbeat failed")
		return found && rec.Level == slog.LevelWarn
	})
	server.start() // same port
	t.Logf("server restarted after %v", time.Since(began))
	eventually(t, 30*time.Second, "registered again after the restart", func() bool {
		inst, found := lookup(t, server.url, app, id, false)
		return found && inst.Status == "UP"
	})
	t.Logf("registered again after %v", time.Since(began))
	eventually(t, 5*time.Second, "the recovery logged", func() bool {
		rec, found, _ := rec.find("(after: heartbeat failed")
		return found && rec.Level == slog.LevelInfo
	})
	info, err := client.Info()
	if err != nil || info.Registrations < 2 || info.State != StateRegistered {
		t.Errorf("Info() = %+v, %v", info, err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if _, found := lookup(t, server.url, app, id, false); found {
		t.Error("still registered after Close")
	}
}

func TestShutdownWithDeadline(t *testing.T) {
	url := plainURL(t)
	cfg := fastConfig(t, url)
	cfg.Status = StatusUp
	client, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := client.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	if err := client.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if _, found := lookup(t, url, client.AppName(), client.InstanceID(), false); found {
		t.Error("still registered after Shutdown")
	}
	if err := client.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
}

// A registry that accepts connections and never answers (the real server cannot show this):
// Shutdown gives up at the context's deadline and says so.
func TestShutdownBoundedByDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	cfg := fastConfig(t, "http://"+ln.Addr().String()+"/eureka/")
	cfg.Timeout = 10 * time.Second
	client, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the registration request is now hanging
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	began := time.Now()
	err = client.Shutdown(ctx)
	took := time.Since(began)
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("Shutdown: %v", err)
	}
	if took > 3*time.Second {
		t.Errorf("Shutdown took %v with a 500 ms deadline", took)
	}
	if err := client.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
}
