package registrar

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The test harness (scripts/test-go.sh, or scripts/test.sh) exports these: real Spring Cloud
// Eureka servers on loopback. Tests that need one are skipped without them.
func plainURL(t *testing.T) string { return needEnv(t, "REGISTRAR_TEST_EUREKA_URL") }
func authURL(t *testing.T) string  { return needEnv(t, "REGISTRAR_TEST_EUREKA_AUTH_URL") }

func needEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Skipf("%s is not set: run scripts/test-go.sh (it starts real Eureka servers)", name)
	}
	return v
}

func testPassword() string {
	if p := os.Getenv("REGISTRAR_TEST_PASSWORD"); p != "" {
		return p
	}
	return "s3cret-pw"
}

var appSeq atomic.Int64

// uniqueApp returns an app name no other test (or earlier run on the shared server) uses.
func uniqueApp(t *testing.T) string {
	name := strings.ToUpper(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	return fmt.Sprintf("GO_%s_%d_%d", name, os.Getpid(), appSeq.Add(1))
}

// fastConfig is a config for the shared server with fast heartbeats and a short lease.
func fastConfig(t *testing.T, url string) Config {
	return Config{
		URL:               url,
		AppName:           uniqueApp(t),
		Hostname:          "127.0.0.1",
		IPAddress:         "127.0.0.1",
		Port:              18080,
		HeartbeatInterval: 200 * time.Millisecond,
		LeaseDuration:     2 * time.Second,
		Timeout:           2 * time.Second,
	}
}

// remoteInstance is what the registry says about an instance (GET apps/{APP}/{ID}).
type remoteInstance struct {
	Status    string            `json:"status"`
	Metadata  map[string]string `json:"metadata"`
	HealthURL string            `json:"healthCheckUrl"`
	Port      struct {
		Value json.Number `json:"$"`
	} `json:"port"`
	LeaseInfo struct {
		LastRenewalTimestamp json.Number `json:"lastRenewalTimestamp"`
	} `json:"leaseInfo"`
}

// lookup GETs the instance; found is false on 404.
func lookup(t *testing.T, url, app, id string, auth bool) (inst remoteInstance, found bool) {
	t.Helper()
	req, err := http.NewRequest("GET", url+"apps/"+app+"/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if auth {
		req.SetBasicAuth("registrar", testPassword())
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return inst, false
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", req.URL, resp.StatusCode)
	}
	var body struct {
		Instance remoteInstance `json:"instance"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: %v", req.URL, err)
	}
	return body.Instance, true
}

// eventually polls cond every 100 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// closedPortURL is a loopback URL where nothing listens.
func closedPortURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return fmt.Sprintf("http://127.0.0.1:%d/eureka/", port)
}

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// eurekaServer is a dedicated server, for tests that stop or restart it. It lives in a new
// subdirectory of REGISTRAR_TEST_RUN_DIR, so the harness stops it even if the test crashes.
type eurekaServer struct {
	t    *testing.T
	dir  string
	port string
	url  string
}

func startDedicatedServer(t *testing.T) *eurekaServer {
	t.Helper()
	runDir := needEnv(t, "REGISTRAR_TEST_RUN_DIR")
	dir, err := os.MkdirTemp(runDir, "go-"+strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	s := &eurekaServer{t: t, dir: dir}
	t.Cleanup(s.stop)
	s.start()
	return s
}

func (s *eurekaServer) start() {
	s.t.Helper()
	args := []string{"start", s.dir}
	if s.port != "" {
		args = append(args, "--port", s.port)
	}
	cmd := exec.Command(filepath.Join(repoRoot(s.t), "scripts", "test-eureka.sh"), args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("starting a Eureka server: %v", err)
	}
	s.url = strings.TrimSpace(string(out))
	port, err := os.ReadFile(filepath.Join(s.dir, "port"))
	if err != nil {
		s.t.Fatal(err)
	}
	s.port = strings.TrimSpace(string(port))
}

func (s *eurekaServer) stop() {
	cmd := exec.Command(filepath.Join(repoRoot(s.t), "scripts", "test-eureka.sh"), "stop", s.dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		s.t.Errorf("stopping the Eureka server in %s: %v", s.dir, err)
	}
}
