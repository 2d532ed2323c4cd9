// Package mqttclient is the service's connection to the MQTT broker, built on
// Eclipse Paho. It keeps one persistent session (stable client id, clean
// session off, QoS 1 in-flight messages in a store) so that sensor frames
// published while the service restarts or the network drops are delivered
// when it is back; it reconnects on its own, re-makes its subscriptions on
// every connection, and never logs credentials.
//
// Message handlers run on Paho's single ordered delivery goroutine, so each
// topic's messages reach them in order; handlers must not block (ingest's
// Router.Handle never does).
package mqttclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Config configures a Client. Zero values take the defaults documented on
// each field.
type Config struct {
	// URL of the broker: tcp://host:1883, ssl://host:8883 (also tls://,
	// mqtts://), ws://host/mqtt or wss://. Default tcp://127.0.0.1:1883.
	URL string
	// ClientID must be stable across restarts so the broker keeps the
	// persistent session; default "crampwatch-" + hostname. Two instances
	// with the same id throw each other off the broker.
	ClientID string
	// Username and Password authenticate to the broker. The password is
	// never logged.
	Username string
	Password string
	// CleanSession discards the broker-side session on connect. The default
	// (false) keeps it: subscriptions and QoS 1 messages queued while the
	// service was away survive a restart.
	CleanSession bool
	// TLS configures certificates for ssl://, tls://, mqtts:// and wss:// URLs.
	TLS TLSConfig
	// KeepAlive is the MQTT keep-alive interval, default 30 s.
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt, default 10 s.
	ConnectTimeout time.Duration
	// RetryInterval is the wait between initial connection attempts,
	// default 2 s.
	RetryInterval time.Duration
	// MaxReconnectInterval caps the back-off between reconnection attempts
	// after a lost connection, default 30 s.
	MaxReconnectInterval time.Duration
	// WriteDelay lets packets written within this long of the previous
	// write to the socket wait for it, so that they share one write(2).
	// A packet after a quiet spell still goes out at once. A publisher of
	// many small messages (the load generator: 60,000 a second) saves most
	// of its syscalls with a millisecond. Leave it 0 on a subscriber: its
	// acknowledgements would be late by as much, and a broker keeps only
	// a few unacknowledged messages in flight per client (Mosquitto 20), so
	// late acknowledgements throttle delivery.
	WriteDelay time.Duration
	// StoreDir, if set, keeps in-flight QoS 1/2 messages in files in this
	// directory (Paho's file store), so a publish accepted before a crash is
	// resent after it; otherwise they are kept in memory.
	StoreDir string
	// Metrics receives the connection metrics; nil uses unregistered ones.
	Metrics *Metrics
}

// TLSConfig holds the files and options for a TLS connection.
type TLSConfig struct {
	CAFile             string // PEM CA bundle to verify the broker; default the system roots
	CertFile, KeyFile  string // PEM client certificate and key, for brokers that require one
	InsecureSkipVerify bool   // do not verify the broker's certificate (testing only)
	ServerName         string // name to verify instead of the URL's host
}

// enabled reports whether any TLS setting was given.
func (t TLSConfig) enabled() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify || t.ServerName != ""
}

// Defaults for Config fields left zero.
const (
	DefaultURL                  = "tcp://127.0.0.1:1883"
	DefaultKeepAlive            = 30 * time.Second
	DefaultConnectTimeout       = 10 * time.Second
	DefaultRetryInterval        = 2 * time.Second
	DefaultMaxReconnectInterval = 30 * time.Second
)

func (cfg Config) withDefaults() Config {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID()
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.MaxReconnectInterval <= 0 {
		cfg.MaxReconnectInterval = DefaultMaxReconnectInterval
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	return cfg
}

// DefaultClientID is "crampwatch-" followed by the host name, reduced to
// characters every broker accepts in a client id.
func DefaultClientID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, host)
	return "crampwatch-" + clean
}

// SharedFilter returns the shared-subscription form of filter,
// "$share/group/filter": the broker delivers each matching message to one
// member of the group, which is how several service instances split the
// devices between them.
func SharedFilter(group, filter string) string {
	return "$share/" + group + "/" + filter
}

// Subscription is a filter and the handler for the messages it matches.
type Subscription struct {
	Filter  string
	QoS     byte
	Handler func(topic string, payload []byte)
}

// Client is a connection to the broker. Its methods are safe for concurrent use.
type Client struct {
	cli paho.Client
	cfg Config
	log *slog.Logger
	m   *Metrics

	mu     sync.Mutex
	subs   map[string]byte        // filter -> QoS, re-subscribed on every connection
	routes atomic.Pointer[routes] // filter -> handler, read by dispatch without a lock
	up     atomic.Bool            // this client's share of the connected gauge

	// subscribed receives the outcome of onConnect's subscriptions, for
	// Connect to wait on; later outcomes find it full and are only logged.
	subscribed chan error
}

// Connect connects to the broker and returns once the connection is up, or
// fails when ctx ends first (it keeps retrying until then). subs are
// registered before the connection opens: with a persistent session the
// broker may deliver messages queued for the service the moment it
// connects, and only routes that exist by then receive them. Further
// subscriptions can be made with Subscribe.
func Connect(ctx context.Context, cfg Config, log *slog.Logger, subs ...Subscription) (*Client, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("mqtt: broker url: %w", err)
	}
	safeURL := u.Redacted()
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return nil, fmt.Errorf("mqtt: broker url %s: unsupported scheme %q (want tcp, ssl, tls, mqtts, ws or wss)", safeURL, u.Scheme)
	}
	c := &Client{cfg: cfg, log: log.With("broker", safeURL, "client_id", cfg.ClientID), m: cfg.Metrics,
		subs: map[string]byte{}, subscribed: make(chan error, 1)}
	c.routes.Store(&routes{})

	opts := paho.NewClientOptions().
		AddBroker(cfg.URL).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(cfg.CleanSession).
		SetKeepAlive(cfg.KeepAlive).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(cfg.RetryInterval).
		SetMaxReconnectInterval(cfg.MaxReconnectInterval).
		// One delivery goroutine: a device's frames reach the router in
		// the order the broker sent them.
		SetOrderMatters(true).
		SetResumeSubs(true).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(c.onConnectionLost).
		SetReconnectingHandler(c.onReconnecting).
		// mqttclient routes messages itself (route.go) and opens the
		// connection itself, buffered (conn.go).
		SetDefaultPublishHandler(c.dispatch).
		SetCustomOpenConnectionFn(func(u *url.URL, o paho.ClientOptions) (net.Conn, error) {
			return openConnection(u, o, cfg.WriteDelay)
		})
	if cfg.StoreDir != "" {
		if err := os.MkdirAll(cfg.StoreDir, 0o700); err != nil {
			return nil, fmt.Errorf("mqtt: store dir: %w", err)
		}
		opts.SetStore(paho.NewFileStore(cfg.StoreDir))
	} else {
		opts.SetStore(paho.NewMemoryStore())
	}
	if cfg.TLS.enabled() || u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts" || u.Scheme == "wss" {
		tc, err := cfg.TLS.build()
		if err != nil {
			return nil, err
		}
		opts.SetTLSConfig(tc)
	}
	c.cli = paho.NewClient(opts)
	for _, s := range subs {
		if err := c.register(s.Filter, s.QoS, s.Handler); err != nil {
			return nil, err
		}
	}

	c.log.Info("mqtt: connecting", "clean_session", cfg.CleanSession, "username_set", cfg.Username != "")
	tok := c.cli.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			c.cli.Disconnect(0)
			return nil, fmt.Errorf("mqtt: connect to %s: %w", safeURL, err)
		}
	case <-ctx.Done():
		// Stops the retry loop too.
		c.cli.Disconnect(0)
		return nil, fmt.Errorf("mqtt: connect to %s: %w", safeURL, ctx.Err())
	}
	// The initial subscriptions are made by onConnect; wait for them so a
	// caller that publishes right away is already listening.
	select {
	case err := <-c.subscribed:
		if err != nil {
			c.cli.Disconnect(0)
			return nil, err
		}
	case <-ctx.Done():
		c.cli.Disconnect(0)
		return nil, fmt.Errorf("mqtt: subscribe: %w", ctx.Err())
	}
	return c, nil
}

func (t TLSConfig) build() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // explicit opt-in, documented as testing only
		ServerName:         t.ServerName,
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: tls ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt: tls ca file %s: no PEM certificates in it", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("mqtt: tls: a client certificate needs both a cert file and a key file")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// register validates a subscription, routes its messages to h and records
// it for re-subscription.
func (c *Client) register(filter string, qos byte, h func(topic string, payload []byte)) error {
	if filter == "" || qos > 2 || h == nil {
		return fmt.Errorf("mqtt: subscribe %q qos %d: need a filter, QoS 0..2 and a handler", filter, qos)
	}
	c.mu.Lock()
	c.subs[filter] = qos
	c.routes.Store(c.routes.Load().with(filter, h))
	c.mu.Unlock()
	return nil
}

// dispatch receives every message from Paho's ordered delivery goroutine
// and hands it to the handlers whose filters match its topic.
func (c *Client) dispatch(_ paho.Client, msg paho.Message) {
	if c.routes.Load().each(msg.Topic(), msg.Payload()) == 0 {
		c.onUnexpected(msg)
	}
}

// Subscribe registers a subscription whose handler runs on Paho's ordered
// delivery goroutine: it must not block. Subscriptions are made again on
// every reconnection. If the client is connected Subscribe waits for the
// broker's acknowledgement (or ctx); if not, the subscription is made as
// soon as the connection is back.
func (c *Client) Subscribe(ctx context.Context, filter string, qos byte, h func(topic string, payload []byte)) error {
	if err := c.register(filter, qos, h); err != nil {
		return err
	}
	if !c.cli.IsConnectionOpen() {
		return nil
	}
	return c.subscribe(ctx, filter, qos)
}

// subscribe sends one SUBSCRIBE and checks the broker granted it.
func (c *Client) subscribe(ctx context.Context, filter string, qos byte) error {
	tok := c.cli.Subscribe(filter, qos, nil)
	if err := wait(ctx, tok); err != nil {
		return fmt.Errorf("mqtt: subscribe %q: %w", filter, err)
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		if granted, ok := st.Result()[filter]; ok && granted == 0x80 {
			return fmt.Errorf("mqtt: subscribe %q: refused by the broker", filter)
		}
	}
	return nil
}

func (c *Client) snapshot() map[string]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]byte, len(c.subs))
	for f, q := range c.subs {
		out[f] = q
	}
	return out
}

// Publish sends a message and waits until the broker has it (QoS 1 and 2)
// or it is written (QoS 0), or ctx ends. While the connection is down a
// QoS 1 message waits in the store and is sent on reconnection; Publish
// still returns at ctx's end, and the message may be sent later.
//
// The payload is copied, so the caller may reuse its buffer as soon as
// Publish returns. Paho keeps a reference to the payload in its store until
// the broker acknowledges the message, and after a reconnection it resends
// stored messages under fresh tokens, completing the caller's token at once
// (paho v1.5.1, messageIds.claimID): without the copy a caller that reuses
// its buffer (the simulator does) overwrites a message paho is about to
// resend, which the broker then delivers under the old topic with the next
// message's payload.
func (c *Client) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	if qos > 2 {
		return fmt.Errorf("mqtt: publish %q: QoS %d", topic, qos)
	}
	payload = bytes.Clone(payload)
	if payload == nil {
		payload = []byte{} // bytes.Clone(nil) is nil; paho wants a []byte
	}
	if err := wait(ctx, c.cli.Publish(topic, qos, retained, payload)); err != nil {
		c.m.publishErrors.Inc()
		return fmt.Errorf("mqtt: publish %q: %w", topic, err)
	}
	return nil
}

// Token is a message handed to PublishAsync. Done is closed when the
// broker has acknowledged it (QoS 1 and 2) or it is written (QoS 0), or
// sending failed; Error then says which. It is an alias of an unnamed
// interface so that a package can declare the same method set without
// importing this one (firmware-sim does).
type Token = interface {
	Done() <-chan struct{}
	Error() error
}

// PublishAsync hands a message to the client and returns at once, so one
// goroutine can keep many messages in flight: the load generator publishes
// tens of thousands a second this way without a goroutine waiting on each
// acknowledgement. The payload is copied, as in Publish. Failures are not
// counted in the publish-errors metric; the caller sees them in the token.
func (c *Client) PublishAsync(topic string, qos byte, retained bool, payload []byte) Token {
	if qos > 2 {
		return failedToken{fmt.Errorf("mqtt: publish %q: QoS %d", topic, qos)}
	}
	payload = bytes.Clone(payload)
	if payload == nil {
		payload = []byte{}
	}
	return c.cli.Publish(topic, qos, retained, payload)
}

// failedToken is a Token for a message that was never sent.
type failedToken struct{ err error }

func (t failedToken) Done() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func (t failedToken) Error() error { return t.err }

// Connected reports whether the connection is up right now (for /readyz).
func (c *Client) Connected() bool { return c.cli.IsConnectionOpen() }

// Close disconnects, giving in-flight work up to quiesce to complete.
func (c *Client) Close(quiesce time.Duration) {
	c.cli.Disconnect(uint(max(quiesce, 0).Milliseconds()))
	c.setUp(false)
	c.log.Info("mqtt: disconnected")
}

// setUp moves the connected gauge when this client's state changes: the
// gauge counts connections, so clients sharing one Metrics (the service has
// a subscriber and a publisher) do not overwrite each other.
func (c *Client) setUp(v bool) {
	if c.up.Swap(v) == v {
		return
	}
	if v {
		c.m.connected.Inc()
	} else {
		c.m.connected.Dec()
	}
}

// wait waits for a Paho token or ctx.
func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onConnect runs (on its own goroutine) after every successful connection
// and re-makes the subscriptions: with a clean session the broker forgot
// them, and with a persistent one re-subscribing is harmless and repairs a
// session the broker lost (restart without persistence).
func (c *Client) onConnect(paho.Client) {
	c.m.connects.Inc()
	c.setUp(true)
	c.log.Info("mqtt: connected")
	err := c.resubscribe()
	if err != nil {
		// The connection is probably going down again; the next
		// onConnect tries again.
		c.log.Error("mqtt: subscribing failed", "err", err)
	}
	select {
	case c.subscribed <- err:
	default:
	}
}

// resubscribe makes every registered subscription in one SUBSCRIBE.
func (c *Client) resubscribe() error {
	subs := c.snapshot()
	if len(subs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ConnectTimeout)
	defer cancel()
	tok := c.cli.SubscribeMultiple(subs, nil)
	if err := wait(ctx, tok); err != nil {
		return fmt.Errorf("mqtt: subscribe: %w", err)
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for f, granted := range st.Result() {
			if granted == 0x80 {
				return fmt.Errorf("mqtt: subscribe %q: refused by the broker", f)
			}
		}
	}
	return nil
}

func (c *Client) onConnectionLost(_ paho.Client, err error) {
	c.m.connectionLost.Inc()
	c.setUp(false)
	c.log.Warn("mqtt: connection lost, reconnecting", "err", err)
}

func (c *Client) onReconnecting(paho.Client, *paho.ClientOptions) {
	c.m.reconnects.Inc()
	c.log.Debug("mqtt: reconnecting")
}

// onUnexpected receives messages no subscription routes, such as those of a
// filter an earlier version subscribed to in the persistent session. They
// are acknowledged (an unacknowledged QoS 1 message would occupy one of the
// broker's in-flight slots for this session until the next reconnection)
// and counted.
func (c *Client) onUnexpected(msg paho.Message) {
	c.m.unexpected.Inc()
	c.log.Debug("mqtt: message without a subscription", "topic", msg.Topic())
}
