package registrar

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The https and mTLS registries and their certificates come from scripts/test-tls-servers.sh
// (run by scripts/test-go.sh and scripts/test.sh).
type tlsEnv struct{ certs, tlsURL, mtlsURL string }

func needTLS(t *testing.T) tlsEnv {
	return tlsEnv{
		certs:   needEnv(t, "REGISTRAR_TEST_TLS_CERTS"),
		tlsURL:  needEnv(t, "REGISTRAR_TEST_EUREKA_TLS_URL"),
		mtlsURL: needEnv(t, "REGISTRAR_TEST_EUREKA_MTLS_URL"),
	}
}

func (e tlsEnv) file(name string) string { return filepath.Join(e.certs, name) }

// registers starts a client with cfg and waits for its registration.
func registers(t *testing.T, cfg Config) {
	t.Helper()
	cfg.Status = StatusUp
	c, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitRegistered(ctx); err != nil {
		t.Fatalf("WaitRegistered: %v", err)
	}
}

// registrationError is the background thread's error for a client that cannot register.
func registrationError(t *testing.T, cfg Config) string {
	t.Helper()
	c, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := c.WaitRegistered(ctx); err == nil {
		t.Fatal("registered although the certificate must be refused")
	}
	last := c.LastError()
	if !errors.Is(last, ErrTransport) {
		t.Fatalf("want a transport error, got %v", last)
	}
	return last.Error()
}

// tlsListener accepts TLS handshakes with the given certificate; one Eureka server cannot
// serve a wrong-host or expired certificate beside its good one.
func tlsListener(t *testing.T, cert, key string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			}(conn)
		}
	}()
	return fmt.Sprintf("https://%s/eureka/", ln.Addr())
}

func TestTLSWithTheRegistryCAFile(t *testing.T) {
	e := needTLS(t)
	cfg := fastConfig(t, e.tlsURL)
	cfg.CAFile = e.file("ca.pem")
	registers(t, cfg)

	d, err := NewDiscovery(Config{URL: e.tlsURL, CAFile: e.file("ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitReady(ctx); err != nil {
		t.Fatalf("discovery over https: %v", err)
	}
}

func TestTLSUnknownIssuer(t *testing.T) {
	e := needTLS(t)
	msg := registrationError(t, fastConfig(t, e.tlsURL))
	if !strings.Contains(msg, "unknown issuer") || !strings.Contains(msg, strings.TrimSuffix(e.tlsURL, "eureka/")) {
		t.Fatalf("want unknown issuer and the server in: %s", msg)
	}
}

func TestTLSHonoursSSLCertFileAndDir(t *testing.T) {
	e := needTLS(t)
	t.Setenv("SSL_CERT_FILE", e.file("ca.pem"))
	registers(t, fastConfig(t, e.tlsURL))
	os.Unsetenv("SSL_CERT_FILE")

	dir := t.TempDir()
	pem, err := os.ReadFile(e.file("ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pem, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_DIR", dir)
	registers(t, fastConfig(t, e.tlsURL))
}

func TestTLSWrongHostAndExpired(t *testing.T) {
	e := needTLS(t)
	wrong := tlsListener(t, e.file("wrong-host.pem"), e.file("wrong-host.key"))
	cfg := fastConfig(t, wrong)
	cfg.CAFile = e.file("ca.pem")
	if msg := registrationError(t, cfg); !strings.Contains(msg, "wrong host name") {
		t.Fatalf("want wrong host name in: %s", msg)
	}
	expired := tlsListener(t, e.file("expired.pem"), e.file("expired.key"))
	cfg = fastConfig(t, expired)
	cfg.CAFile = e.file("ca.pem")
	if msg := registrationError(t, cfg); !strings.Contains(msg, "has expired") {
		t.Fatalf("want has expired in: %s", msg)
	}
	// A TLS failure moves on to the next service URL.
	cfg = fastConfig(t, expired+","+e.tlsURL)
	cfg.CAFile = e.file("ca.pem")
	registers(t, cfg)
}

func TestTLSMutual(t *testing.T) {
	e := needTLS(t)
	cfg := fastConfig(t, e.mtlsURL)
	cfg.CAFile = e.file("ca.pem")
	cfg.ClientCert, cfg.ClientKey = e.file("client.pem"), e.file("client-pkcs8.key")
	registers(t, cfg)

	cfg = fastConfig(t, e.mtlsURL)
	cfg.CAFile = e.file("ca.pem")
	if msg := registrationError(t, cfg); !strings.Contains(msg, "requires a client certificate") {
		t.Fatalf("want 'requires a client certificate' in: %s", msg)
	}
}

func TestTLSBadFilesAreConfigErrors(t *testing.T) {
	e := needTLS(t)
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{CAFile: "/nonexistent/ca.pem"}, "REGISTRY_CA_FILE '/nonexistent/ca.pem': cannot read"},
		{Config{CAFile: e.file("not-pem.txt")}, "REGISTRY_CA_FILE"},
		{Config{ClientCert: e.file("client.pem")}, "REGISTRY_CLIENT_KEY is not"},
		{Config{ClientCert: e.file("client.pem"), ClientKey: e.file("client-rsa.key")}, "does not belong"},
	}
	for _, c := range cases {
		c.cfg.URL = e.tlsURL
		_, err := NewDiscovery(c.cfg)
		c.cfg.AppName = uniqueApp(t)
		for _, err := range []error{err, c.cfg.Validate()} {
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("want ErrInvalidConfig with %q, got %v", c.want, err)
			}
		}
	}
}
