// Package localserver starts real servers for crampwatch's integration tests
// and benchmarks: a Mosquitto broker and an InfluxDB 1.8 server (with Flux,
// so the v2 client API works), each on a free loopback port in a temporary
// directory of its own. It is apart from testenv, which wraps it for tests,
// so that "crampwatch bench" can start the same servers without linking the
// testing package into the binary.
package localserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// InfluxQL runs one InfluxQL statement against an InfluxDB 1.x server and
// returns an error if the HTTP call or the statement failed.
func InfluxQL(ctx context.Context, base, db, q string) error {
	_, err := InfluxQLQuery(ctx, base, db, q)
	return err
}

// InfluxQLQuery runs an InfluxQL statement and returns the raw JSON response.
func InfluxQLQuery(ctx context.Context, base, db, q string) ([]byte, error) {
	form := url.Values{"q": {q}}
	if db != "" {
		form.Set("db", db)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("influxql %q: %w", q, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 || strings.Contains(string(body), `"error"`) {
		return body, fmt.Errorf("influxql %q: %s: %s", q, resp.Status, body)
	}
	return body, nil
}

// Server is a child process serving on a loopback port.
type Server struct {
	URL  string
	Dir  string
	Port int
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	args []string
	bin  string
	log  *os.File
	// probe reports whether the server answers.
	probe func() error
}

// Stop terminates the server and removes its directory.
func (s *Server) Stop() {
	s.kill()
	os.RemoveAll(s.Dir)
}

func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// start launches the process and waits until probe succeeds.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	// Die with the test binary even if it is killed, so no server outlives CI.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(60 * time.Second)
probe:
	for time.Now().Before(deadline) {
		if err := s.probe(); err == nil {
			return nil
		}
		select {
		case <-s.done:
			break probe // exited: no point waiting
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.kill()
	logText, _ := os.ReadFile(s.log.Name())
	return fmt.Errorf("%s did not come up on port %d; its log:\n%s", s.bin, s.Port, tail(logText, 2000))
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Restart stops the server process and starts it again on the same port
// with the same data directory, as an outage test needs.
func (s *Server) Restart() error {
	s.kill()
	return s.start()
}

// StopOnly stops the server process but keeps its port and data directory,
// so that Start can bring the same server back: an outage that lasts as long
// as the test needs, unlike Restart.
func (s *Server) StopOnly() { s.kill() }

// Start starts a server stopped by StopOnly again, on the same port with the
// same data directory, and waits until it answers.
func (s *Server) Start() error {
	if s.cmd != nil {
		return errors.New("testenv: server already running")
	}
	return s.start()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func findBinary(name, hint string, extra ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, p := range extra {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH or %v; %s (scripts/test.sh installs it)", name, extra, hint)
}

func tcpProbe(port int) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

func newServer(name string) (*Server, error) {
	dir, err := os.MkdirTemp("", "crampwatch-"+name+"-")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	return &Server{Dir: dir, Port: port, log: log}, nil
}

// MosquittoOptions configures a broker started by StartMosquitto.
type MosquittoOptions struct {
	// Persistence keeps the broker's sessions and queued messages on disk
	// across Restart, as production brokers do.
	Persistence bool
	// ExtraConfig is appended verbatim to mosquitto.conf (listeners for TLS,
	// password_file, acl_file ...). Paths may use {dir} for the broker's directory.
	ExtraConfig string
}

// StartMosquitto starts a dedicated Mosquitto broker. The caller stops it
// with Stop. Most tests share one through Mosquitto instead.
func StartMosquitto(opt MosquittoOptions) (*MosquittoServer, error) {
	bin, err := findBinary("mosquitto", "install it with: apt-get install -y mosquitto", "/usr/sbin/mosquitto")
	if err != nil {
		return nil, err
	}
	s, err := newServer("mosquitto")
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\n", s.Port)
	if os.Getuid() == 0 {
		// Started as root, mosquitto drops to the "mosquitto" user, which
		// cannot write our 0700 temp directory (persistence, logs).
		conf += "user root\n"
	}
	if opt.Persistence {
		conf += fmt.Sprintf("persistence true\npersistence_location %s/\nautosave_interval 1\n", s.Dir)
	} else {
		conf += "persistence false\n"
	}
	conf += strings.ReplaceAll(opt.ExtraConfig, "{dir}", s.Dir)
	cfgPath := filepath.Join(s.Dir, "mosquitto.conf")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	s.bin, s.args = bin, []string{"-c", cfgPath}
	s.URL = fmt.Sprintf("tcp://127.0.0.1:%d", s.Port)
	s.probe = tcpProbe(s.Port)
	if err := s.start(); err != nil {
		os.RemoveAll(s.Dir)
		return nil, err
	}
	return (*MosquittoServer)(s), nil
}

// MosquittoServer is a broker started by StartMosquitto.
type MosquittoServer = Server

// StartInfluxDB starts a dedicated InfluxDB 1.8 server with Flux enabled.
func StartInfluxDB() (*InfluxServer, error) {
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	bin, err := findBinary("influxd",
		"install it with: go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10",
		filepath.Join(gopath, "bin", "influxd"))
	if err != nil {
		return nil, err
	}
	s, err := newServer("influxd")
	if err != nil {
		return nil, err
	}
	rpc, err := FreePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = "%[2]s/meta"
[data]
  dir = "%[2]s/data"
  wal-dir = "%[2]s/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
[http]
  bind-address = "127.0.0.1:%[3]d"
  flux-enabled = true
  log-enabled = false
[logging]
  level = "warn"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
`, rpc, s.Dir, s.Port)
	cfgPath := filepath.Join(s.Dir, "influxdb.conf")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	s.bin, s.args = bin, []string{"-config", cfgPath}
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", s.Port)
	s.probe = func() error {
		resp, err := http.Get(s.URL + "/ping")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return errors.New(resp.Status)
		}
		return nil
	}
	if err := s.start(); err != nil {
		os.RemoveAll(s.Dir)
		return nil, err
	}
	return (*InfluxServer)(s), nil
}

// InfluxServer is an InfluxDB started by StartInfluxDB.
type InfluxServer = Server
