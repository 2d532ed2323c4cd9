package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func newServer(token string) *Server {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "crampwatch_test_total", Help: "t"})
	reg.MustRegister(c)
	c.Inc()
	s := New(reg, token, slog.New(slog.DiscardHandler))
	s.HandleAuth("GET /api/v1/secret", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "data") }))
	return s
}

func TestEndpoints(t *testing.T) {
	s := newServer("tok")
	fail := errors.New("influx down")
	var broken bool
	s.AddCheck("influx", func(context.Context) error {
		if broken {
			return fail
		}
		return nil
	})
	tests := []struct {
		name, path, auth string
		broken           bool
		code             int
		body             string
	}{
		{name: "metrics", path: "/metrics", code: 200, body: "crampwatch_test_total 1"},
		{name: "healthz", path: "/healthz", code: 200, body: "ok"},
		{name: "ready", path: "/readyz", code: 200, body: `"influx":"ok"`},
		{name: "not ready", path: "/readyz", broken: true, code: 503, body: "influx down"},
		{name: "no token", path: "/api/v1/secret", code: 401},
		{name: "wrong token", path: "/api/v1/secret", auth: "Bearer nope", code: 401},
		{name: "basic auth is not bearer", path: "/api/v1/secret", auth: "Basic tok", code: 401},
		{name: "token", path: "/api/v1/secret", auth: "Bearer tok", code: 200, body: "data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			broken = tc.broken
			req := httptest.NewRequest("GET", tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, rec.Code, rec.Body.String(), tc.code, tc.body)
			}
		})
	}
}

func TestEmptyTokenRefusesEverything(t *testing.T) {
	s := newServer("")
	req := httptest.NewRequest("GET", "/api/v1/secret", nil)
	req.Header.Set("Authorization", "Bearer ")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("empty configured token let a request in: %d", rec.Code)
	}
}
