package mqttclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// Paho reads every packet straight from the socket, its fixed header one
// byte at a time, and writes every packet with its own write(2): at 30,000
// QoS 1 messages a second (1000 devices) that is four reads and one PUBACK
// write per message, and those syscalls were a third of the service's CPU.
// Paho has no option to buffer, but it lets the client open the connection
// (ClientOptions.CustomOpenConnectionFn), so mqttclient opens it itself, as
// Paho would, and hands Paho a bufferedConn.

const (
	// readBufferSize holds many small frames: one read(2) brings a burst.
	readBufferSize = 64 << 10
	// maxPendingWrite bounds what Write accepts before the flusher has sent
	// it; beyond it Write waits, as a socket with a full send buffer would.
	maxPendingWrite = 1 << 20
	// closeFlushTimeout is how long Close lets the last writes (Paho's
	// DISCONNECT) go out before it closes the socket under them.
	closeFlushTimeout = time.Second
)

// openConnection opens the network connection for Paho the way Paho's own
// openConnection does for the schemes Connect accepts (tcp and mqtt; ssl,
// tls and mqtts; ws and wss), honouring the proxy environment variables,
// and wraps it in a bufferedConn.
func openConnection(u *url.URL, o paho.ClientOptions, writeDelay time.Duration) (net.Conn, error) {
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	var conn net.Conn
	var err error
	switch u.Scheme {
	case "ws", "wss":
		wsURL := *u // the websocket library refuses URLs with credentials
		wsURL.User = nil
		var tc *tls.Config
		if u.Scheme == "wss" {
			tc = o.TLSConfig
		}
		conn, err = paho.NewWebsocket(wsURL.String(), tc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	case "ssl", "tls", "mqtts":
		conn, err = dialTLS(d, u.Host, o.TLSConfig, o.ConnectTimeout)
	case "tcp", "mqtt":
		conn, err = proxy.FromEnvironmentUsing(d).Dial("tcp", u.Host)
	default:
		err = fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return newBufferedConn(conn, writeDelay), nil
}

// dialTLS connects (through a proxy when the environment names one) and
// completes the TLS handshake within timeout.
func dialTLS(d *net.Dialer, hostport string, tc *tls.Config, timeout time.Duration) (net.Conn, error) {
	raw, err := proxy.FromEnvironmentUsing(d).Dial("tcp", hostport)
	if err != nil {
		return nil, err
	}
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if tc.ServerName == "" && !tc.InsecureSkipVerify {
		host, _, err := net.SplitHostPort(hostport)
		if err != nil {
			host = hostport
		}
		tc = tc.Clone()
		tc.ServerName = host
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn := tls.Client(raw, tc)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return conn, nil
}

// bufferedConn is the broker connection Paho sees. Reads come from a
// buffer. Writes are copied into a pending buffer and return at once; one
// flusher goroutine sends whatever is pending with a single write(2), so a
// burst of PUBACKs or PUBLISHes written while the previous write is in the
// kernel goes out together. With a write delay (Config.WriteDelay),
// writes to the socket are at least that far apart, so under load one write
// carries everything that arrived meanwhile; without one a packet goes out
// as soon as the flusher wakes (on a machine with an idle core that is
// usually one packet per write).
//
// A write error is returned by every later Write, so Paho notices a broken
// connection on its next packet (its reader notices it sooner). Bytes
// accepted but not yet sent when the connection breaks are lost exactly as
// bytes in the kernel's send buffer would be; MQTT's QoS 1 resend covers
// both.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex
	flushed *sync.Cond    // broadcast after every flush and on close
	pending []byte        // accepted from Paho, not yet handed to the socket
	err     error         // first write error
	closing chan struct{} // closed by Close
	kick    chan struct{} // holds a token while pending is non-empty and unclaimed
	done    chan struct{} // closed when the flusher has exited
	close   sync.Once
	delay   time.Duration // shortest time between two writes to the socket
}

func newBufferedConn(conn net.Conn, writeDelay time.Duration) *bufferedConn {
	c := &bufferedConn{
		Conn:    conn,
		delay:   writeDelay,
		r:       bufio.NewReaderSize(conn, readBufferSize),
		kick:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	c.flushed = sync.NewCond(&c.mu)
	go c.flush()
	return c
}

// Read reads from the buffer. Paho reads from one goroutine at a time.
func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write queues p for the flusher.
func (c *bufferedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.isClosed() && len(c.pending) >= maxPendingWrite {
		c.flushed.Wait()
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.isClosed():
		return 0, net.ErrClosed
	}
	if len(c.pending) == 0 {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	c.pending = append(c.pending, p...)
	return len(p), nil
}

// flush sends what is pending whenever Write signals, swapping buffers so
// Write can fill one while the other is in the kernel.
func (c *bufferedConn) flush() {
	defer close(c.done)
	var out []byte
	var last time.Time
	pause := time.NewTimer(0)
	defer pause.Stop()
	for range c.kick {
		if wait := c.delay - time.Since(last); c.delay > 0 && wait > 0 {
			pause.Reset(wait)
			select {
			case <-pause.C:
			case <-c.closing: // Close sends the rest at once
			}
		}
		last = time.Now()
		c.mu.Lock()
		out, c.pending = c.pending, out[:0]
		c.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		_, err := c.Conn.Write(out)
		c.mu.Lock()
		if err != nil && c.err == nil {
			c.err = err
		}
		c.flushed.Broadcast()
		c.mu.Unlock()
	}
}

// isClosed reports whether Close has begun.
func (c *bufferedConn) isClosed() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// Close sends what is pending (for up to closeFlushTimeout) and closes the
// connection.
func (c *bufferedConn) Close() error {
	c.close.Do(func() {
		c.mu.Lock()
		close(c.closing)
		c.flushed.Broadcast()
		// Write sends on kick only under mu and not once closing is closed,
		// so closing the channel here cannot race a send.
		close(c.kick)
		c.mu.Unlock()
		t := time.NewTimer(closeFlushTimeout)
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
		}
	})
	return c.Conn.Close()
}
