package mqttclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/crampwatch/crampwatch/embedbroker"
	"github.com/crampwatch/crampwatch/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// wait is how long a test waits for something that should happen in
// milliseconds; it only bounds failures, it never slows a passing test.
const waitLong = 15 * time.Second

// inbox collects received messages.
type inbox struct {
	mu   sync.Mutex
	msgs []string // "topic payload"
	cond chan struct{}
}

func newInbox() *inbox { return &inbox{cond: make(chan struct{}, 1)} }

func (b *inbox) handle(topic string, payload []byte) {
	b.mu.Lock()
	b.msgs = append(b.msgs, topic+" "+string(payload))
	b.mu.Unlock()
	select {
	case b.cond <- struct{}{}:
	default:
	}
}

func (b *inbox) all() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.msgs...)
}

// waitFor waits until the inbox holds n messages.
func (b *inbox) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(waitLong)
	for {
		if got := b.all(); len(got) >= n {
			return got
		}
		select {
		case <-b.cond:
		case <-deadline:
			t.Fatalf("received %d messages, want %d: %v", len(b.all()), n, b.all())
		}
	}
}

// broker is an embedded broker for a test.
type broker struct {
	url  string
	stop context.CancelFunc // stops it (soon after, not at once); idempotent
}

// startBroker starts an embedded broker on addr. After a stop the port may
// take a moment to free, so it retries for a while.
func startBroker(t *testing.T, addr string) broker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	deadline := time.Now().Add(waitLong)
	for {
		// The broker closes itself when ctx ends; Broker.Close is not
		// called here as well, since closing twice panics.
		b, err := embedbroker.Start(ctx, addr, slog.New(slog.DiscardHandler))
		if err == nil {
			return broker{url: b.URL(), stop: cancel}
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func connect(t *testing.T, cfg Config, subs ...Subscription) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := Connect(ctx, cfg, nil, subs...)
	if err != nil {
		t.Fatal(err)
	}
	// A little quiesce lets the last acknowledgements go out, so a
	// persistent session is not left with a message to redeliver.
	t.Cleanup(func() { c.Close(100 * time.Millisecond) })
	return c
}

// uniqueID makes a client id no earlier test run (with -count) has used:
// a persistent session outlives the test that made it.
func uniqueID(base string) string {
	return base + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

func publish(t *testing.T, c *Client, topic string, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := c.Publish(ctx, topic, 1, false, []byte(payload)); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := c.Write(&pb); err != nil {
		t.Fatal(err)
	}
	if pb.Counter != nil {
		return pb.Counter.GetValue()
	}
	return pb.Gauge.GetValue()
}

func TestSharedFilter(t *testing.T) {
	for _, tt := range []struct{ group, filter, want string }{
		{"crampwatch", "crampwatch/v1/+/emg", "$share/crampwatch/crampwatch/v1/+/emg"},
		{"g", "#", "$share/g/#"},
	} {
		if got := SharedFilter(tt.group, tt.filter); got != tt.want {
			t.Errorf("SharedFilter(%q, %q) = %q, want %q", tt.group, tt.filter, got, tt.want)
		}
	}
}

func TestDefaultClientID(t *testing.T) {
	id := DefaultClientID()
	if !strings.HasPrefix(id, "crampwatch-") || len(id) <= len("crampwatch-") {
		t.Fatalf("DefaultClientID() = %q", id)
	}
	if strings.ContainsAny(id, " ./#+") {
		t.Fatalf("DefaultClientID() = %q has characters brokers may refuse", id)
	}
	if DefaultClientID() != id {
		t.Fatal("DefaultClientID is not stable")
	}
}

func TestConnectRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		subs []Subscription
		want string
	}{
		{"unknown scheme", Config{URL: "http://127.0.0.1:1"}, nil, "unsupported scheme"},
		{"unparsable url", Config{URL: "tcp://[::1"}, nil, "broker url"},
		{"missing CA file", Config{URL: "ssl://127.0.0.1:1", TLS: TLSConfig{CAFile: filepath.Join(dir, "nope.pem")}}, nil, "ca file"},
		{"CA file without certificates", Config{URL: "ssl://127.0.0.1:1", TLS: TLSConfig{CAFile: notPEM}}, nil, "no PEM"},
		{"cert without key", Config{URL: "ssl://127.0.0.1:1", TLS: TLSConfig{CertFile: notPEM}}, nil, "key file"},
		{"subscription without handler", Config{URL: "tcp://127.0.0.1:1"}, []Subscription{{Filter: "a/#", QoS: 1}}, "handler"},
		{"subscription QoS 3", Config{URL: "tcp://127.0.0.1:1"}, []Subscription{{Filter: "a/#", QoS: 3, Handler: func(string, []byte) {}}}, "QoS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := Connect(ctx, tt.cfg, nil, tt.subs...)
			if err == nil {
				c.Close(0)
				t.Fatal("Connect succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error %v: a bad config must fail at once, not after retrying", err)
			}
		})
	}
}

func TestPublishSubscribe(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	in := newInbox()
	m := NewMetrics(nil) // shared, as the service shares it between its two clients
	sub := connect(t, Config{URL: b.url, ClientID: "sub", CleanSession: true, Metrics: m},
		Subscription{Filter: "crampwatch/v1/+/emg", QoS: 1, Handler: in.handle})
	pub := connect(t, Config{URL: b.url, ClientID: "pub", CleanSession: true, Metrics: m})
	if !sub.Connected() || !pub.Connected() {
		t.Fatal("not connected after Connect")
	}
	eventually(t, "connected gauge 2", func() bool { return value(t, m.connected) == 2 })
	// Order is kept: the router relies on it to avoid needless reordering.
	const n = 200
	for i := 0; i < n; i++ {
		publish(t, pub, "crampwatch/v1/dev1/emg", fmt.Sprint(i))
	}
	publish(t, pub, "crampwatch/v1/dev1/ack", "not subscribed")
	got := in.waitFor(t, n)
	for i, m := range got {
		if m != fmt.Sprintf("crampwatch/v1/dev1/emg %d", i) {
			t.Fatalf("message %d is %q", i, m)
		}
	}

	// A subscription made after Connect works too.
	acks := newInbox()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := sub.Subscribe(ctx, "crampwatch/v1/+/ack", 1, acks.handle); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, "crampwatch/v1/dev2/ack", "yes")
	if got := acks.waitFor(t, 1); got[0] != "crampwatch/v1/dev2/ack yes" {
		t.Fatalf("got %v", got)
	}
	if err := sub.Subscribe(ctx, "", 1, acks.handle); err == nil {
		t.Error("Subscribe with an empty filter succeeded")
	}
	pub.Close(0)
	if got := value(t, m.connected); got != 1 {
		t.Errorf("connected gauge %v after closing one of two clients", got)
	}
}

func TestResubscribesAfterBrokerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b := startBroker(t, addr)

	m := NewMetrics(prometheus.NewRegistry())
	in := newInbox()
	// The embedded broker keeps sessions in memory only: after its restart
	// the subscription exists again only because the client re-makes it.
	sub := connect(t, Config{URL: b.url, ClientID: "restart-sub", Metrics: m},
		Subscription{Filter: "t/#", QoS: 1, Handler: in.handle})
	b.stop()
	eventually(t, "connection loss", func() bool { return !sub.Connected() })
	if got := value(t, m.connected); got != 0 {
		t.Errorf("connected gauge = %v during the outage", got)
	}
	startBroker(t, addr)
	eventually(t, "reconnection", sub.Connected)

	pub := connect(t, Config{URL: "tcp://" + addr, ClientID: "restart-pub", CleanSession: true})
	// onConnect subscribes right after the connection opens; publish until
	// a message gets through rather than guessing how long that takes.
	deadline := time.Now().Add(waitLong)
	for len(in.all()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no message after the broker restarted: not re-subscribed")
		}
		publish(t, pub, "t/x", "after restart")
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range []struct {
		name string
		m    prometheus.Metric
		min  float64
	}{
		{"connects_total", m.connects, 2},
		{"connection_lost_total", m.connectionLost, 1},
		{"reconnects_total", m.reconnects, 1},
		{"connected", m.connected, 1},
	} {
		if got := value(t, c.m); got < c.min {
			t.Errorf("%s = %v, want >= %v", c.name, got, c.min)
		}
	}
}

func TestPublishHonoursContext(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	m := NewMetrics(nil)
	c := connect(t, Config{URL: b.url, ClientID: "ctx-pub", Metrics: m})

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	b.stop()
	eventually(t, "connection loss", func() bool { return !c.Connected() })
	// While reconnecting a QoS 1 publish waits for the connection; the
	// context bounds that wait.
	ctx, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	start := time.Now()
	err := c.Publish(ctx, "t/x", 1, false, []byte("x"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish during an outage: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Publish returned after %v", d)
	}
	if err := c.Publish(cancelled, "t/x", 1, false, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled context: %v", err)
	}
	if got := value(t, m.publishErrors); got != 2 {
		t.Errorf("publish_errors_total = %v, want 2", got)
	}
}

func TestConnectHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "tcp://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	c, err := Connect(ctx, Config{URL: url, RetryInterval: 50 * time.Millisecond}, nil)
	if err == nil {
		c.Close(0)
		t.Fatal("Connect to a closed port succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Connect returned after %v", d)
	}
}

func TestCredentialsNeverLogged(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const secret, urlSecret = "hunter2-password", "url-secret-zz"
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	// The embedded broker accepts anyone, so the credentials get all the
	// way through a connection.
	u := strings.Replace(b.url, "tcp://", "tcp://someone:"+urlSecret+"@", 1)
	c, err := Connect(ctx, Config{URL: u, ClientID: "creds", Username: "someone", Password: secret}, log)
	if err != nil {
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), urlSecret) {
			t.Fatalf("error leaks a secret: %v", err)
		}
		t.Fatal(err)
	}
	c.Close(0)
	// Failure paths put the URL in errors.
	_, err = Connect(ctx, Config{URL: "gopher://someone:" + urlSecret + "@127.0.0.1:1"}, log)
	if err == nil || strings.Contains(err.Error(), urlSecret) {
		t.Fatalf("error %v: want a failure that does not show the URL's password", err)
	}
	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	if !strings.Contains(out, "mqtt: connected") {
		t.Fatalf("expected connection logs, got:\n%s", out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, urlSecret) {
		t.Fatalf("logs leak a secret:\n%s", out)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestFileStore(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	dir := filepath.Join(t.TempDir(), "store")
	c := connect(t, Config{URL: b.url, ClientID: "filestore", StoreDir: dir})
	publish(t, c, "t/x", "stored while in flight")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("store directory not created: %v", err)
	}
}
