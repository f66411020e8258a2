package registrar

// End-to-end tests of examples/go: built with `go build` (as a user would, in their own
// module that points here with a replace) and run as subprocesses against the real server.

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// exampleBinary builds examples/go/NAME once per test run and returns its path.
func exampleBinary(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "registrar-go-examples-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+string(os.PathSeparator), "./register", "./httpservice", "./discover")
		cmd.Dir = filepath.Join(repoRoot(t), "examples", "go")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build in examples/go: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, name)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// process is an example running in the background; its stdout lines arrive on a channel.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string
	stderr *lockedBuffer
	done   chan struct{}
	err    error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// exampleEnv is the test's environment without any REGISTRY_* variable, plus extra.
func exampleEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func startProcess(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{t: t, cmd: exec.Command(bin, args...), lines: make(chan string, 100),
		stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		io.Copy(io.Discard, stdout)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// line waits for the next stdout line.
func (p *process) line(timeout time.Duration) string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.done
			p.t.Fatalf("the example exited (%v) without the expected output; stderr:\n%s", p.err, p.stderr)
		}
		return l
	case <-time.After(timeout):
		p.t.Fatalf("no output within %v; stderr:\n%s", timeout, p.stderr)
	}
	return ""
}

// signalAndWait sends sig and returns the exit code (-1: killed after the timeout).
func (p *process) signalAndWait(sig syscall.Signal, timeout time.Duration) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	return p.wait(timeout)
}

func (p *process) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("the example did not exit within %v; stderr:\n%s", timeout, p.stderr)
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// remaining drains the stdout lines left after exit.
func (p *process) remaining() []string {
	var out []string
	for l := range p.lines {
		out = append(out, l)
	}
	return out
}

func fastEnv(url, app string) []string {
	return exampleEnv(
		"REGISTRY_URL="+url,
		"REGISTRY_APP_NAME="+app,
		"REGISTRY_HOSTNAME=127.0.0.1",
		"REGISTRY_IP_ADDRESS=127.0.0.1",
		"REGISTRY_PORT=18081",
		"REGISTRY_HEARTBEAT_INTERVAL=0.2",
		"REGISTRY_LEASE_DURATION=2",
		"REGISTRY_TIMEOUT=2",
	)
}

func TestExampleRegister(t *testing.T) {
	url := plainURL(t)
	app := uniqueApp(t)
	p := startProcess(t, exampleBinary(t, "register"), fastEnv(url, strings.ToLower(app)))
	got := p.line(20 * time.Second)
	id := "127.0.0.1:" + strings.ToLower(app) + ":18081"
	if want := "registered " + app + "/" + id; got != want {
		t.Fatalf("stdout %q, want %q", got, want)
	}
	inst, found := lookup(t, url, app, id, false)
	if !found || inst.Status != "UP" {
		t.Fatalf("registry: found=%v status=%q", found, inst.Status)
	}
	first := renewal(t, inst)
	eventually(t, 10*time.Second, "heartbeats advance the lease", func() bool {
		inst, _ := lookup(t, url, app, id, false)
		return renewal(t, inst).Cmp(first) > 0
	})
	if code := p.signalAndWait(syscall.SIGINT, 15*time.Second); code != 0 {
		t.Errorf("exit code %d; stderr:\n%s", code, p.stderr)
	}
	if extra := p.remaining(); len(extra) != 0 {
		t.Errorf("more stdout: %q", extra)
	}
	if _, found := lookup(t, url, app, id, false); found {
		t.Error("still registered after SIGINT")
	}
}

// TestExampleRegisterSignals runs tests/example_signals.py (shared with the C and Python
// suites): a signal is acted on within 100 ms (bound 300 ms) before and after registration,
// and a deregistration that fails makes the exit status 1.
func TestExampleRegisterSignals(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 runs tests/example_signals.py: %v", err)
	}
	cmd := exec.Command(python, filepath.Join(repoRoot(t), "tests", "example_signals.py"),
		"--registry", plainURL(t), "--", exampleBinary(t, "register"))
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("example_signals.py: %v", err)
	}
}

func TestExampleRegisterBadConfig(t *testing.T) {
	bin := exampleBinary(t, "register")
	for name, env := range map[string][]string{
		"no app name": exampleEnv("REGISTRY_URL=http://127.0.0.1:1/eureka/"),
		"bad port":    exampleEnv("REGISTRY_URL=http://127.0.0.1:1/eureka/", "REGISTRY_APP_NAME=x", "REGISTRY_PORT=eighty"),
	} {
		t.Run(name, func(t *testing.T) {
			p := startProcess(t, bin, env)
			if code := p.wait(10 * time.Second); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			stderr := p.stderr.String()
			want := map[string]string{"no app name": "REGISTRY_APP_NAME", "bad port": "REGISTRY_PORT"}[name]
			if !strings.Contains(stderr, "bad configuration") || !strings.Contains(stderr, want) {
				t.Errorf("stderr %q does not name %s", stderr, want)
			}
			if out := p.remaining(); len(out) != 0 {
				t.Errorf("stdout %q", out)
			}
		})
	}
}

// Unreachable registry: the reason is reported once (not once per retry), SIGTERM still
// ends the process cleanly.
func TestExampleRegisterUnreachableDoesNotFlood(t *testing.T) {
	p := startProcess(t, exampleBinary(t, "register"), fastEnv(closedPortURL(t), "unreachable"))
	time.Sleep(3 * time.Second) // many retries
	if code := p.signalAndWait(syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Errorf("exit code %d; stderr:\n%s", code, p.stderr)
	}
	stderr := p.stderr.String()
	if n := strings.Count(stderr, "not registered yet"); n < 1 || n > 2 {
		t.Errorf("%d reports in 3 s:\n%s", n, stderr)
	}
	if !strings.Contains(stderr, "registry unreachable") {
		t.Errorf("stderr does not say why:\n%s", stderr)
	}
	if out := p.remaining(); len(out) != 0 {
		t.Errorf("stdout %q", out)
	}
}

func TestExampleRegisterWrongPassword(t *testing.T) {
	url := authURL(t)
	const wrong = "pw-Wrong-Secret-45"
	env := append(fastEnv(url, "wrongpw"), "REGISTRY_USER=registrar", "REGISTRY_PASSWORD="+wrong)
	p := startProcess(t, exampleBinary(t, "register"), env)
	eventually(t, 10*time.Second, "the example reports the refusal", func() bool {
		return strings.Contains(p.stderr.String(), "not registered yet")
	})
	if code := p.signalAndWait(syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	stderr := p.stderr.String()
	if !strings.Contains(stderr, "unauthorized") || strings.Contains(stderr, wrong) {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func TestExampleHTTPService(t *testing.T) {
	url := plainURL(t)
	app := uniqueApp(t)
	env := exampleEnv("REGISTRY_URL="+url, "REGISTRY_APP_NAME="+app,
		"REGISTRY_HEARTBEAT_INTERVAL=0.2", "REGISTRY_LEASE_DURATION=2")
	p := startProcess(t, exampleBinary(t, "httpservice"), env, "-listen", "127.0.0.1:0")
	listening := p.line(10 * time.Second)
	addr, ok := strings.CutPrefix(listening, "listening on http://")
	if !ok {
		t.Fatalf("stdout %q", listening)
	}
	port := addr[strings.LastIndex(addr, ":")+1:]
	registered := p.line(20 * time.Second)
	appID, ok := strings.CutPrefix(registered, "registered ")
	if !ok || !strings.HasPrefix(appID, app+"/") {
		t.Fatalf("stdout %q", registered)
	}
	id := strings.TrimPrefix(appID, app+"/")
	inst, found := lookup(t, url, app, id, false)
	if !found || inst.Status != "UP" || inst.Port.Value.String() != port {
		t.Fatalf("registry: found=%v %+v, want port %s", found, inst, port)
	}
	if want := "http://" + addr + "/healthcheck"; inst.HealthURL != want {
		t.Errorf("healthCheckUrl %q, want %q", inst.HealthURL, want)
	}
	// The registered health URL is served.
	resp, err := http.Get(inst.HealthURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"UP"`) {
		t.Errorf("GET %s: %d %s", inst.HealthURL, resp.StatusCode, body)
	}
	if code := p.signalAndWait(syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Errorf("exit code %d; stderr:\n%s", code, p.stderr)
	}
	if _, found := lookup(t, url, app, id, false); found {
		t.Error("still registered after SIGTERM")
	}
}

func TestExampleDiscover(t *testing.T) {
	url := plainURL(t)
	app := uniqueApp(t)
	clients := registerInstances(t, url, app, StatusUp, StatusDown, StatusUp)
	bin := exampleBinary(t, "discover")

	p := startProcess(t, bin, exampleEnv("REGISTRY_URL="+url), strings.ToLower(app))
	if code := p.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr)
	}
	want := []string{
		clients[0].InstanceID() + " 127.0.0.1:18091 UP",
		clients[2].InstanceID() + " 127.0.0.1:18093 UP",
	}
	if got := p.remaining(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stdout %q, want %q", got, want)
	}

	t.Run("bad usage", func(t *testing.T) {
		for _, args := range [][]string{nil, {"A", "B"}, {"-wait", "soon", "A"}} {
			p := startProcess(t, bin, exampleEnv("REGISTRY_URL="+url), args...)
			if code := p.wait(10 * time.Second); code != 2 {
				t.Errorf("args %q: exit code %d, want 2", args, code)
			}
			if !strings.Contains(p.stderr.String(), "usage") {
				t.Errorf("args %q: stderr %q", args, p.stderr)
			}
			if out := p.remaining(); len(out) != 0 {
				t.Errorf("args %q: stdout %q", args, out)
			}
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		p := startProcess(t, bin, exampleEnv("REGISTRY_URL="+closedPortURL(t), "REGISTRY_TIMEOUT=0.5"),
			"-wait", "1s", app)
		if code := p.wait(10 * time.Second); code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
		if stderr := p.stderr.String(); !strings.Contains(stderr, "cannot fetch the registry") {
			t.Errorf("stderr %q", stderr)
		}
		if out := p.remaining(); len(out) != 0 {
			t.Errorf("stdout %q", out)
		}
	})
}
