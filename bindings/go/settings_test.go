package registrar

import (
	"reflect"
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
// setting would otherwise be sent under a stale name). The fields are found by reflection,
// so a typed field added later is covered without editing this test.
func TestTypedFieldsUseKnownSettingNames(t *testing.T) {
	names := settingNames(t)
	var all Config
	v := reflect.ValueOf(&all).Elem()
	set := 0
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeOf(time.Duration(0)):
			f.SetInt(int64(time.Second))
		case f.Kind() == reflect.String:
			f.SetString("x")
		case f.Kind() == reflect.Int:
			f.SetInt(1)
		default:
			continue // Metadata, Settings, Status, Logger, LogLevel: not one setting each
		}
		set++
	}
	pairs := all.pairs()
	if set < 18 || len(pairs) != set {
		t.Fatalf("expected one pair per typed field (%d), got %d: %v", set, len(pairs), pairs)
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
