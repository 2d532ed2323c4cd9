package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
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
	var result error
	s.AddCheck("influx", func(context.Context) error { return result })
	tests := []struct {
		name, path, auth string
		result           error
		code             int
		body             string
	}{
		{name: "metrics", path: "/metrics", code: 200, body: "crampwatch_test_total 1"},
		{name: "healthz", path: "/healthz", code: 200, body: "ok"},
		{name: "ready", path: "/readyz", code: 200, body: `"influx":"ok"`},
		{name: "not ready", path: "/readyz", result: errors.New("influx down"), code: 503, body: `"influx":"failed: influx down"`},
		{name: "degraded is ready", path: "/readyz", result: Degraded(errors.New("unreachable, spooling 10 bytes")), code: 200,
			body: `"influx":"degraded: unreachable, spooling 10 bytes"`},
		{name: "no token", path: "/api/v1/secret", code: 401},
		{name: "wrong token", path: "/api/v1/secret", auth: "Bearer nope", code: 401},
		{name: "basic auth is not bearer", path: "/api/v1/secret", auth: "Basic tok", code: 401},
		{name: "token", path: "/api/v1/secret", auth: "Bearer tok", code: 200, body: "data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			result = tc.result
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

// degradedFlag has the method IsDegraded looks for, as a package that does
// not import httpapi would define it.
type degradedFlag bool

func (d degradedFlag) Error() string  { return "flagged" }
func (d degradedFlag) Degraded() bool { return bool(d) }

func TestIsDegraded(t *testing.T) {
	plain := errors.New("down")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", plain, false},
		{"Degraded", Degraded(plain), true},
		{"wrapped Degraded", fmt.Errorf("influxdb: %w", Degraded(plain)), true},
		{"own type, degraded", degradedFlag(true), true},
		{"own type, not degraded", degradedFlag(false), false},
		{"own type wrapped", fmt.Errorf("x: %w", degradedFlag(true)), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsDegraded(tc.err); got != tc.want {
				t.Errorf("IsDegraded(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	if Degraded(nil) != nil {
		t.Error("Degraded(nil) != nil")
	}
	if err := Degraded(plain); !errors.Is(err, plain) || err.Error() != "down" {
		t.Errorf("Degraded(plain) = %q, does not wrap it", err)
	}
}

// TestReadyzStates checks /readyz with several checks: one failed check
// makes it 503, degraded ones do not, and the body lists every check.
func TestReadyzStates(t *testing.T) {
	ok := func(context.Context) error { return nil }
	degraded := func(context.Context) error {
		return Degraded(errors.New("unreachable, spooling 2048 bytes (0.0% of limit)"))
	}
	failed := func(context.Context) error { return errors.New("not connected to the broker") }
	tests := []struct {
		name   string
		checks map[string]Check
		code   int
		body   map[string]string
	}{
		{"no checks", nil, 200, map[string]string{}},
		{"all ok", map[string]Check{"influxdb": ok, "mqtt": ok}, 200,
			map[string]string{"influxdb": "ok", "mqtt": "ok"}},
		{"degraded", map[string]Check{"influxdb": degraded, "mqtt": ok}, 200,
			map[string]string{"influxdb": "degraded: unreachable, spooling 2048 bytes (0.0% of limit)", "mqtt": "ok"}},
		{"degraded and failed", map[string]Check{"influxdb": degraded, "mqtt": failed}, 503,
			map[string]string{"influxdb": "degraded: unreachable, spooling 2048 bytes (0.0% of limit)", "mqtt": "failed: not connected to the broker"}},
		{"failed", map[string]Check{"influxdb": failed, "mqtt": ok}, 503,
			map[string]string{"influxdb": "failed: not connected to the broker", "mqtt": "ok"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer("")
			for name, c := range tc.checks {
				s.AddCheck(name, c)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != tc.code {
				t.Errorf("code %d, want %d", rec.Code, tc.code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if !maps.Equal(got, tc.body) {
				t.Errorf("body %v, want %v", got, tc.body)
			}
		})
	}
}
