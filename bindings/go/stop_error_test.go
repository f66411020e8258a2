package registrar

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A registry that refuses the DELETE (a stub: a real Eureka server cannot be made to): Close
// returns an error naming it instead of reporting a deregistration that did not happen.
func TestCloseReportsARefusedDeregistration(t *testing.T) {
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.Method {
		case http.MethodPost:
			w.WriteHeader(http.StatusNoContent)
		case http.MethodDelete:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "delete refused (stub)")
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer stub.Close()
	cfg := fastConfig(t, stub.URL+"/eureka/")
	client, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	err = client.Close()
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("Close() = %v, want ErrRejected", err)
	}
	for _, want := range []string{"DELETE", "500", "delete refused (stub)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Close() error %q does not name %q", err, want)
		}
	}
}
