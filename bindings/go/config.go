package registrar

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Setting is one setting the C library knows: Name is the environment variable and the key
// of Config.Settings ("REGISTRY_URL"); Description is one line that gives the default when
// there is one.
type Setting struct {
	Name        string
	Description string
}

// Settings returns every setting the loaded C library accepts, in its order. The list is the
// library's own (registrar_setting_name): this package never lists setting names itself, so
// a setting added to the library is usable through Config.Settings and ConfigFromEnv without
// a change here. Nil if the library cannot be used (see the error of Validate).
func Settings() []Setting {
	if checkLibrary() != nil {
		return nil
	}
	return cSettings()
}

// Config holds the settings of a client. The zero value means "all defaults"; AppName is
// the one setting without a default. Precedence, lowest to highest: the library's
// defaults, Settings (raw values by name, which ConfigFromEnv fills from the environment),
// then the typed fields when they are not zero.
//
// Values are validated by the C library when Start (or Validate) is called, with messages
// that name the setting. A Config is a plain value: copy it freely; printing it with
// %v, %+v, %#v or String never shows the password (nor a password inside a URL).
type Config struct {
	// URL is one or more Eureka service URLs, comma-separated:
	// "http://127.0.0.1:8761/eureka/" (the seed's ".../eureka/apps/" form works too).
	URL string
	// User and Password enable HTTP basic auth (sent preemptively).
	User     string
	Password string
	// TLS for https registries; server certificates are always verified against the OS
	// trust store (which honours SSL_CERT_FILE and SSL_CERT_DIR) plus CAFile, a PEM bundle
	// of extra CAs for the registry alone. ClientCert and ClientKey (PEM; PKCS#8, RSA or EC
	// key) present a client certificate for mutual TLS. The files are read by Start and
	// NewDiscovery: a bad file is an ErrInvalidConfig naming the setting.
	CAFile     string
	ClientCert string
	ClientKey  string
	// AppName is the application name (registered upper-case). Required.
	AppName string
	// InstanceID defaults to "{hostname}:{app}:{port}".
	InstanceID string
	Hostname   string
	IPAddress  string
	// Port is the HTTP port (default 8080); SecurePort the HTTPS port (0: disabled).
	Port       int
	SecurePort int

	VIPAddress       string
	SecureVIPAddress string
	HomePageURL      string
	StatusPageURL    string
	HealthCheckURL   string

	// Metadata entries are added to (and override) REGISTRY_METADATA's.
	Metadata map[string]string

	// HeartbeatInterval (default 30 s), LeaseDuration (default 90 s, whole seconds) and
	// Timeout, the HTTP timeout per request (default 5 s).
	HeartbeatInterval time.Duration
	LeaseDuration     time.Duration
	Timeout           time.Duration
	// FetchInterval is how often a Discovery fetches the registry's changes (default: the
	// library's, 30 s). A Client ignores it.
	FetchInterval time.Duration

	// HealthCheck lets the service's health decide the registry status (see HealthFunc):
	// DOWN while it fails, the status set with SetStatus otherwise. Installed by Start, before
	// the first registration; SetHealthCheck changes it later. It replaces HealthURL.
	HealthCheck HealthFunc
	// HealthURL (REGISTRY_HEALTH_URL) is a local http:// URL checked instead when HealthCheck
	// is nil: 2xx is healthy. HealthInterval (default 10 s) is the time between checks,
	// HealthThreshold (default 3) the failures (passes) in a row that turn DOWN (UP again).
	HealthURL       string
	HealthInterval  time.Duration
	HealthThreshold int
	// Drain (REGISTRY_DRAIN_SECONDS, default 0) is how long Close keeps the instance
	// registered as DOWN, heartbeating, before deleting it, so that callers' caches drop it
	// first. Close then takes up to Drain + Timeout; Shutdown's deadline covers the drain.
	Drain time.Duration

	// Status is the status of the first registration; zero (StatusUnknown) means the
	// library's default, STARTING. Set StatusUp to register as ready at once.
	Status Status

	// Logger receives the library's log messages of LogLevel or more severe, from the first
	// request on (Start and NewDiscovery install it before anything is sent): registration
	// and heartbeat failures (each distinct problem once), recoveries, registrations; for a
	// Discovery the first fetch, failures, recovery and (DEBUG) changes. SlogLogger adapts a
	// *slog.Logger. nil logs through log/slog: slog.Default() as it is at each message, with
	// the attributes component=registrar and, for a Client, app and instance; the levels
	// slog.Default() has enabled at Start decide what is sent unless LogLevel is above
	// LogError. To silence the library, give a LogFunc that does nothing. For an explicit
	// Logger, the zero LogLevel (LogError) sends errors only. SetLogger changes it later.
	Logger   LogFunc
	LogLevel LogLevel

	// Settings holds raw values by setting name, parsed by the library exactly like the
	// environment: "REGISTRY_PORT" or "port" (case-insensitive, prefix optional). An unknown
	// name is an ErrInvalidConfig from Start. ConfigFromEnv fills it.
	Settings map[string]string
}

// ConfigFromEnv returns a Config whose Settings hold every non-empty REGISTRY_* variable
// of the environment (read now, in Go: later changes to the environment are not seen).
// Set typed fields on the result to override them from code.
func ConfigFromEnv() Config {
	var cfg Config
	for _, setting := range Settings() {
		name := setting.Name
		if v, ok := os.LookupEnv(name); ok && strings.TrimSpace(v) != "" {
			if cfg.Settings == nil {
				cfg.Settings = make(map[string]string)
			}
			cfg.Settings[name] = v
		}
	}
	return cfg
}

// Validate checks the config exactly as Start would, without creating a client.
func (c Config) Validate() error {
	if err := checkLibrary(); err != nil {
		return err
	}
	cc, err := c.toC()
	if err != nil {
		return err
	}
	defer cc.free()
	return cc.validate()
}

// pair is one setting as given to registrar_config_set.
type pair struct{ key, value string }

// pairs lists the settings in the order they are applied: Settings (sorted by name, for
// determinism), then the typed fields that are set.
func (c Config) pairs() []pair {
	var out []pair
	keys := make([]string, 0, len(c.Settings))
	for k := range c.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, pair{k, c.Settings[k]})
	}
	str := func(key, v string) {
		if v != "" {
			out = append(out, pair{key, v})
		}
	}
	num := func(key string, v int) {
		if v != 0 {
			out = append(out, pair{key, strconv.Itoa(v)})
		}
	}
	secs := func(key string, d time.Duration) {
		if d != 0 {
			out = append(out, pair{key, strconv.FormatFloat(d.Seconds(), 'f', -1, 64)})
		}
	}
	str("REGISTRY_URL", c.URL)
	str("REGISTRY_USER", c.User)
	str("REGISTRY_PASSWORD", c.Password)
	str("REGISTRY_CA_FILE", c.CAFile)
	str("REGISTRY_CLIENT_CERT", c.ClientCert)
	str("REGISTRY_CLIENT_KEY", c.ClientKey)
	str("REGISTRY_APP_NAME", c.AppName)
	str("REGISTRY_INSTANCE_ID", c.InstanceID)
	str("REGISTRY_HOSTNAME", c.Hostname)
	str("REGISTRY_IP_ADDRESS", c.IPAddress)
	num("REGISTRY_PORT", c.Port)
	num("REGISTRY_SECURE_PORT", c.SecurePort)
	str("REGISTRY_VIP_ADDRESS", c.VIPAddress)
	str("REGISTRY_SECURE_VIP_ADDRESS", c.SecureVIPAddress)
	str("REGISTRY_HOME_PAGE_URL", c.HomePageURL)
	str("REGISTRY_STATUS_PAGE_URL", c.StatusPageURL)
	str("REGISTRY_HEALTH_CHECK_URL", c.HealthCheckURL)
	secs("REGISTRY_HEARTBEAT_INTERVAL", c.HeartbeatInterval)
	secs("REGISTRY_LEASE_DURATION", c.LeaseDuration)
	secs("REGISTRY_TIMEOUT", c.Timeout)
	secs("REGISTRY_FETCH_INTERVAL", c.FetchInterval)
	str("REGISTRY_HEALTH_URL", c.HealthURL)
	secs("REGISTRY_HEALTH_INTERVAL", c.HealthInterval)
	num("REGISTRY_HEALTH_THRESHOLD", c.HealthThreshold)
	secs("REGISTRY_DRAIN_SECONDS", c.Drain)
	return out
}

// toC builds the library's config. Messages come from the library and name the setting,
// never its value (values may be secrets).
func (c Config) toC() (cConfig, error) {
	cc, err := newCConfig()
	if err != nil {
		return cConfig{}, err
	}
	for _, p := range c.pairs() {
		if err := cc.set(p.key, p.value); err != nil {
			cc.free()
			return cConfig{}, err
		}
	}
	return cc, nil
}

// String shows the settings that are set as the C library describes them (the one
// redaction of registrar: the password and the user-info of every URL are hidden, whatever
// was given), then Metadata and Status. A setting name the library does not know is listed
// without its value.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("registrar.Config{")
	b.WriteString(c.describe())
	if len(c.Metadata) > 0 {
		keys := make([]string, 0, len(c.Metadata))
		for k := range c.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(", Metadata={")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q: %q", k, c.Metadata[k])
		}
		b.WriteString("}")
	}
	if c.Status != StatusUnknown {
		fmt.Fprintf(&b, ", Status=%v", c.Status)
	}
	b.WriteString("}")
	return b.String()
}

// describe hands the settings to a throw-away library config and asks it for its description.
func (c Config) describe() string {
	cc, err := newCConfig()
	if err != nil {
		return "(library unavailable)"
	}
	defer cc.free()
	var unknown []string
	for _, p := range c.pairs() {
		if cc.set(p.key, p.value) != nil {
			name := p.key
			if len(name) > 64 {
				name = name[:64] + "..."
			}
			unknown = append(unknown, strconv.Quote(name))
		}
	}
	text, err := cc.describe()
	if err != nil {
		text = "(no description)"
	}
	if len(unknown) > 0 {
		if text != "" {
			text += ", "
		}
		text += "unknown settings: " + strings.Join(unknown, ", ")
	}
	return text
}

// GoString makes %#v as safe as %v.
func (c Config) GoString() string { return c.String() }

// Format makes every verb (%v, %+v, %#v, %s, %q...) go through String, so no formatting path
// reaches the Password field.
func (c Config) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprint(f, strconv.Quote(c.String()))
	default:
		fmt.Fprint(f, c.String())
	}
}
