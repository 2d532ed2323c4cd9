// Package embedbroker runs an in-process MQTT broker (mochi-mqtt) on a
// loopback port, for the zero-setup demo and for unit tests that need a
// broker but not a real Mosquitto. It allows anonymous clients: it is never
// meant to face a network.
package embedbroker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Broker is a running embedded broker.
type Broker struct {
	srv   *mqtt.Server
	addr  string
	close sync.Once
	err   error
}

// Start starts a broker listening on addr ("127.0.0.1:0" picks a free port).
// It stops when ctx is done or Close is called.
func Start(ctx context.Context, addr string, log *slog.Logger) (*Broker, error) {
	// Reserve the port first so the caller learns the real address.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	addr = ln.Addr().String()
	ln.Close()

	caps := mqtt.NewDefaultServerCapabilities()
	// The demo pushes a night through in seconds: let clients queue deeply
	// instead of having the broker drop their writes.
	caps.MaximumClientWritesPending = 1 << 16
	srv := mqtt.New(&mqtt.Options{Capabilities: caps, Logger: log, InlineClient: false})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	b := &Broker{srv: srv, addr: addr}
	go func() {
		<-ctx.Done()
		b.Close()
	}()
	return b, nil
}

// URL returns the broker's address as tcp://host:port.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Close stops the broker. It may be called more than once.
func (b *Broker) Close() error {
	b.close.Do(func() { b.err = b.srv.Close() })
	return b.err
}
