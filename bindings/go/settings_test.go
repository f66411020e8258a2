package registrar

import (
	"strings"
	"testing"
	"time"
)

func settingNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, s := range Settings() {
		if !strings.HasPrefix(s.Name, "REGISTRY_") || s.Description == "" {
			t.Errorf("odd setting from the library: %+v", s)
		}
		if names[s.Name] {
			t.Errorf("setting %s listed twice", s.Name)
		}
		names[s.Name] = true
	}
	return names
}

// The list is the library's: every name it gives is accepted by the library's config, and
// the usual ones are there.
func TestSettingsComeFromTheLibrary(t *testing.T) {
	names := settingNames(t)
	for _, want := range []string{"REGISTRY_URL", "REGISTRY_APP_NAME", "REGISTRY_FETCH_INTERVAL"} {
		if !names[want] {
			t.Errorf("Settings() lacks %s", want)
		}
	}
	for name := range names {
		cfg := Config{AppName: "a", URL: "http://127.0.0.1:1/eureka/", Settings: map[string]string{name: ""}}
		if err := cfg.Validate(); err != nil {
			t.Errorf("the library refuses its own setting %s: %v", name, err)
		}
	}
}

// Every typed field of Config maps to a setting the library knows (a renamed or removed
// setting would otherwise be sent under a stale name).
func TestTypedFieldsUseKnownSettingNames(t *testing.T) {
	names := settingNames(t)
	all := Config{
		URL: "u", User: "u", Password: "p", AppName: "a", InstanceID: "i", Hostname: "h",
		IPAddress: "1.2.3.4", Port: 1, SecurePort: 2, VIPAddress: "v", SecureVIPAddress: "s",
		HomePageURL: "h", StatusPageURL: "s", HealthCheckURL: "h", HeartbeatInterval: time.Second,
		LeaseDuration: time.Second, Timeout: time.Second, FetchInterval: time.Second,
	}
	pairs := all.pairs()
	if len(pairs) != 18 {
		t.Fatalf("expected one pair per typed field (18), got %d: %v", len(pairs), pairs)
	}
	for _, p := range pairs {
		if !names[p.key] {
			t.Errorf("typed field sends %s, which the library does not know", p.key)
		}
	}
}

func TestConfigFromEnvReadsEverySettingTheLibraryLists(t *testing.T) {
	for _, s := range Settings() {
		t.Setenv(s.Name, "x-"+s.Name)
	}
	cfg := ConfigFromEnv()
	for _, s := range Settings() {
		if cfg.Settings[s.Name] != "x-"+s.Name {
			t.Errorf("ConfigFromEnv did not read %s", s.Name)
		}
	}
}
