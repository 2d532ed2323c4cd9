package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/export"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/mqttclient"
	"github.com/crampwatch/crampwatch/wire"
)

// pki is a throwaway certificate authority for one test.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	CAFile string
	serial int64
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "crampwatch test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key, serial: 1}
	p.CAFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue makes a certificate for name signed by the CA: a server
// certificate for 127.0.0.1 when server is set, else a client one. It
// returns the certificate and key files.
func (p *pki) issue(t *testing.T, name string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", kder)
}

// securedBroker starts Mosquitto with a mutual-TLS listener, a password
// file made with mosquitto_passwd, anonymous access off and the ACL that
// deploy/mosquitto ships. It returns the broker and the ssl:// URL.
func securedBroker(t *testing.T, p *pki, users map[string]string) (*testenv.MosquittoServer, string) {
	t.Helper()
	passwd := filepath.Join(p.dir, "passwd")
	first := true
	for user, pass := range users {
		args := []string{"-b", passwd, user, pass}
		if first {
			args = append([]string{"-c"}, args...)
			first = false
		}
		if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	serverCert, serverKey := p.issue(t, "broker", true)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	acl, err := filepath.Abs("../../deploy/mosquitto/acl")
	if err != nil {
		t.Fatal(err)
	}
	// allow_anonymous false comes after testenv's "true" and wins: it is a
	// global setting, so it covers testenv's plain listener as well.
	conf := fmt.Sprintf(`allow_anonymous false
password_file %s
acl_file %s
listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
tls_version tlsv1.2
`, passwd, acl, port, p.CAFile, serverCert, serverKey)
	ms, err := testenv.StartMosquitto(testenv.MosquittoOptions{ExtraConfig: conf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ms.Stop)
	return ms, fmt.Sprintf("ssl://127.0.0.1:%d", port)
}

// collect is an MQTT handler that keeps topics it receives.
type collect struct {
	mu     sync.Mutex
	topics []string
}

func (c *collect) handle(topic string, _ []byte) {
	c.mu.Lock()
	c.topics = append(c.topics, topic)
	c.mu.Unlock()
}

func (c *collect) has(topic string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range c.topics {
		if tp == topic {
			return true
		}
	}
	return false
}

func (c *collect) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.topics...)
}

// TestSecureBroker runs the service against Mosquitto with mutual TLS,
// passwords and the per-device ACL of deploy/mosquitto/acl: the service
// connects over TLS with its credentials; clients without a certificate,
// with a wrong password, without a user or trusting another CA are turned
// away; a device's frames reach the service only under its own id; and a
// device reads its own alert topic, never another's.
func TestSecureBroker(t *testing.T) {
	p := newPKI(t)
	users := map[string]string{"crampwatch": "service-pass", "dev-a": "a-pass", "dev-b": "b-pass"}
	ms, tlsURL := securedBroker(t, p, users)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	client := func(name string) mqttclient.Config {
		cert, key := p.issue(t, name, false)
		return mqttclient.Config{URL: tlsURL, ClientID: name + "-test", CleanSession: true, Username: name, Password: users[name],
			TLS: mqttclient.TLSConfig{CAFile: p.CAFile, CertFile: cert, KeyFile: key}, RetryInterval: 100 * time.Millisecond}
	}
	refused := func(name string, cfg mqttclient.Config) {
		t.Helper()
		cctx, ccancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer ccancel()
		c, err := mqttclient.Connect(cctx, cfg, nil)
		if err == nil {
			c.Close(0)
			t.Errorf("%s: connected, want refused", name)
		}
	}
	wrongPass := client("dev-a")
	wrongPass.Password = "guess"
	refused("wrong password", wrongPass)
	anonymous := client("dev-a")
	anonymous.Username, anonymous.Password = "", ""
	refused("no user name", anonymous)
	noCert := client("dev-a")
	noCert.TLS.CertFile, noCert.TLS.KeyFile = "", ""
	refused("no client certificate", noCert)
	otherCA := client("dev-a")
	otherCA.TLS.CAFile = "" // the system roots do not know the test CA
	refused("broker certificate not trusted", otherCA)
	refused("plain TCP without credentials", mqttclient.Config{URL: ms.URL, ClientID: "plain-test", CleanSession: true, RetryInterval: 100 * time.Millisecond})

	// The service, over TLS with its own certificate and password.
	svcTLS := client("crampwatch")
	cfg := defaultServeConfig()
	cfg.mqtt.URL = tlsURL
	cfg.mqtt.ClientID = "crampwatch-secure-test"
	cfg.mqtt.Username, cfg.mqtt.Password = "crampwatch", users["crampwatch"]
	cfg.mqtt.TLS = svcTLS.TLS
	cfg.httpAddr = "127.0.0.1:0"
	cfg.journalPath = filepath.Join(t.TempDir(), "journal.jsonl")
	if err := cfg.load(); err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()
	svc, err := startService(ctx, cfg, quietLog(), reg)
	if err != nil {
		t.Fatalf("service over TLS: %v", err)
	}
	defer svc.stop(context.Background(), false)

	// Device a reads alert topics: its own, device b's, and everybody's.
	inbox := &collect{}
	devA := client("dev-a")
	a, err := mqttclient.Connect(ctx, devA, nil,
		mqttclient.Subscription{Filter: "crampwatch/v1/dev-a/alert", QoS: 1, Handler: inbox.handle},
		mqttclient.Subscription{Filter: "crampwatch/v1/dev-b/alert", QoS: 1, Handler: inbox.handle},
		mqttclient.Subscription{Filter: "crampwatch/v1/+/emg", QoS: 1, Handler: inbox.handle},
	)
	if err != nil {
		t.Fatalf("device a over TLS: %v", err)
	}
	defer a.Close(time.Second)

	// Frames under b's id from a are dropped by the broker; a's own go
	// through. a's own last, so once it has arrived so would the other.
	frame := func(seq uint32) []byte {
		f := &wire.EMGFrame{Seq: seq, T0: time.Now().Add(-time.Second).UnixMicro() + int64(seq)*100_000, Rate: 1000, Unit: wire.Microvolt,
			Channels: []wire.Channel{{Muscle: wire.Calf, Side: wire.Left}}, Data: [][]float64{make([]float64, 100)}}
		return wire.AppendEMGJSON(nil, f)
	}
	for i := range uint32(3) {
		if err := a.Publish(ctx, "crampwatch/v1/dev-b/emg", 1, false, frame(i+1)); err != nil {
			t.Fatalf("publish as dev-b: %v", err)
		}
	}
	for i := range uint32(3) {
		if err := a.Publish(ctx, "crampwatch/v1/dev-a/emg", 1, false, frame(i+1)); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	waitUntil(ctx, t, "device a's frames at the service", func() bool {
		return counterSum(t, reg, "crampwatch_ingest_frames_total", "stream", "emg") >= 3
	})
	if got := counterSum(t, reg, "crampwatch_ingest_frames_total", "stream", "emg"); got != 3 {
		t.Errorf("service received %v EMG frames, want device a's 3 (none of those a sent as b)", got)
	}

	// The service alerts both wearers; a hears only its own.
	// The alerts are sent again until a's arrives: a's subscription may not
	// be acknowledged yet when the first ones go out (not retained, so lost).
	last := time.Time{}
	waitUntil(ctx, t, "device a's alert", func() bool {
		if inbox.has("crampwatch/v1/dev-a/alert") {
			return true
		}
		if time.Since(last) > 500*time.Millisecond {
			last = time.Now()
			for _, dev := range []string{"dev-b", "dev-a"} {
				if err := svc.pub.Publish(ctx, wire.Topic(wire.DefaultPrefix, dev, wire.StreamAlert), 1, false, []byte(`{"type":"cramp"}`)); err != nil {
					t.Fatalf("service alert to %s: %v", dev, err)
				}
			}
		}
		return false
	})
	time.Sleep(300 * time.Millisecond) // b's alert went first; give it time to show, if it could
	for _, tp := range inbox.all() {
		if tp != "crampwatch/v1/dev-a/alert" {
			t.Errorf("device a received %s", tp)
		}
	}
}

func waitUntil(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestExportNeedsToken mounts the research export (export.Handler, as
// docs/export.md says: behind the bearer token) on the running service's
// HTTP API and checks that it refuses requests without the token or with a
// wrong one, and serves the right one.
func TestExportNeedsToken(t *testing.T) {
	mqttURL := testenv.Mosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultServeConfig()
	cfg.mqtt.URL = mqttURL
	cfg.mqtt.ClientID = "crampwatch-export-token-test"
	cfg.httpAddr = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.httpToken = "s3cret-token"
	cfg.journalPath = filepath.Join(t.TempDir(), "journal.jsonl")
	if err := cfg.load(); err != nil {
		t.Fatal(err)
	}
	svc, err := startService(ctx, cfg, quietLog(), newRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.stop(context.Background(), false)
	pseud, err := export.NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := export.NewHandler(export.HandlerConfig{Source: export.NewJournalSource(cfg.journalPath), Pseudonyms: pseud,
		Nights: export.DefaultNights(time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	svc.api.HandleAuth("GET /api/v1/export/{table}", h)

	url := fmt.Sprintf("http://127.0.0.1:%d/api/v1/export/events?format=csv&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z", port)
	get := func(auth string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		var resp *http.Response
		for {
			resp, err = http.DefaultClient.Do(req)
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond) // the listener may still be starting
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret-tokenX", "Basic s3cret-token", "bearer s3cret-token"} {
		if code, body := get(auth); code != http.StatusUnauthorized || strings.Contains(body, "device") {
			t.Errorf("Authorization %q: %d %q, want 401 and no data", auth, code, body)
		}
	}
	if code, body := get("Bearer s3cret-token"); code != http.StatusOK {
		t.Errorf("with the token: %d %q, want 200", code, body)
	}
}
