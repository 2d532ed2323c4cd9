// Package httpapi serves the service's operational HTTP endpoints:
// Prometheus metrics, liveness and readiness, and (behind a bearer token)
// the data endpoints other packages register.
//
// Readiness has three states per check: ok, degraded and failed. A
// degraded dependency (InfluxDB down while its on-disk spool keeps every
// point) leaves the service ready: it is doing its job, and a failing
// probe would make an orchestrator restart or drain it, which loses
// in-memory state and helps nobody. Only a failed check makes /readyz
// answer 503.
package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports the state of one dependency for /readyz. nil means ok. An
// error for which IsDegraded is true means degraded: impaired, but the
// service still does its job, so it stays ready. Any other error means
// failed: not ready. The error's text is shown in the /readyz body under
// the check's name, so it should say what is wrong in a few words.
type Check func(ctx context.Context) error

// Degraded marks err as a degraded, not failed, readiness result. It
// returns nil if err is nil.
func Degraded(err error) error {
	if err == nil {
		return nil
	}
	return degradedError{err}
}

type degradedError struct{ err error }

func (e degradedError) Error() string  { return e.err.Error() }
func (e degradedError) Unwrap() error  { return e.err }
func (e degradedError) Degraded() bool { return true }

// IsDegraded reports whether err marks a degraded dependency: err, or an
// error it wraps, has a method Degraded() bool that returns true. The
// method, not a type of this package, is the contract, so a package can
// report degraded readiness without importing httpapi (store does).
func IsDegraded(err error) bool {
	var d interface{ Degraded() bool }
	return errors.As(err, &d) && d.Degraded()
}

// Server is the HTTP API. Register checks and handlers before Serve.
type Server struct {
	mux    *http.ServeMux
	log    *slog.Logger
	token  string
	mu     sync.Mutex
	checks map[string]Check
}

// New returns a server whose /metrics serves gatherer. token protects the
// handlers added with HandleAuth; an empty token refuses them all.
func New(gatherer prometheus.Gatherer, token string, log *slog.Logger) *Server {
	s := &Server{mux: http.NewServeMux(), log: log, token: token, checks: map[string]Check{}}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	return s
}

// AddCheck registers a readiness check shown under name in /readyz.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// HandleAuth registers h at pattern behind bearer-token authentication.
func (s *Server) HandleAuth(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.requireToken(h))
}

// Handler returns the server's root handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.mux }

// ready answers /readyz: 200 unless a check failed, 503 if one did, with a
// JSON object of each check's state: "ok", "degraded: <why>" or
// "failed: <why>".
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for k, v := range s.checks {
		checks[k] = v
	}
	s.mu.Unlock()
	status := make(map[string]string, len(checks))
	code := http.StatusOK
	for name, c := range checks {
		err := c(ctx)
		switch {
		case err == nil:
			status[name] = "ok"
		case IsDegraded(err):
			status[name] = "degraded: " + err.Error()
		default:
			status[name] = "failed: " + err.Error()
			code = http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(status)
}

// requireToken refuses requests without "Authorization: Bearer <token>".
// The comparison is constant-time so the token cannot be guessed by timing.
func (s *Server) requireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if s.token == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="crampwatch"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Serve listens on addr until ctx is done, then shuts down gracefully.
// If certFile and keyFile are set it serves HTTPS.
func (s *Server) Serve(ctx context.Context, addr, certFile, keyFile string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.ServeListener(ctx, ln, certFile, keyFile)
}

// ServeListener is Serve on an existing listener.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener, certFile, keyFile string) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() {
		if certFile != "" {
			done <- srv.ServeTLS(ln, certFile, keyFile)
		} else {
			done <- srv.Serve(ln)
		}
	}()
	s.log.Info("http listening", "addr", ln.Addr().String(), "tls", certFile != "")
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shCtx)
	if e := <-done; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}
