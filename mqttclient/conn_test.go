package mqttclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// loopback returns both ends of a TCP connection on 127.0.0.1, the client
// end wrapped in a bufferedConn.
func loopback(t *testing.T, writeDelay time.Duration) (*bufferedConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { peer.Close() })
	c := newBufferedConn(raw, writeDelay)
	t.Cleanup(func() { c.Close() })
	return c, peer
}

// TestBufferedConnWrites writes many small packets from several
// goroutines, as Paho's writers do, and checks the peer receives every one
// whole and each writer's in order.
func TestBufferedConnWrites(t *testing.T) {
	for _, delay := range []time.Duration{0, time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) { testBufferedConnWrites(t, delay) })
	}
}

func testBufferedConnWrites(t *testing.T, delay time.Duration) {
	c, peer := loopback(t, delay)
	const writers, packets = 4, 5000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range packets {
				if _, err := fmt.Fprintf(c, "%d:%06d\n", w, i); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	want := writers * packets * len("0:000000\n")
	got := make([]byte, want)
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatalf("peer read: %v", err)
	}
	wg.Wait()
	next := make([]int, writers)
	for line := range bytes.Lines(got) {
		var w, i int
		if _, err := fmt.Sscanf(string(line), "%d:%d\n", &w, &i); err != nil || w >= writers || i != next[w] {
			t.Fatalf("line %q out of order or torn (next of writer %d is %d)", line, w, next[w])
		}
		next[w]++
	}
}

// TestBufferedConnReads reads what the peer sends in pieces.
func TestBufferedConnReads(t *testing.T) {
	c, peer := loopback(t, 0)
	msg := bytes.Repeat([]byte("0123456789"), 20_000) // larger than the read buffer
	go peer.Write(msg)
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Error("read bytes differ")
	}
}

// TestBufferedConnCloseFlushes checks that what was written just before
// Close (Paho's DISCONNECT) reaches the peer, and that Write then fails.
func TestBufferedConnCloseFlushes(t *testing.T) {
	c, peer := loopback(t, time.Hour) // Close must not wait for the delay
	if _, err := c.Write([]byte("first ")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(peer)
	if err != nil || string(got) != "first last words" {
		t.Errorf("peer got %q, %v", got, err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
}

// TestBufferedConnWriteError checks a broken connection is reported by the
// next Writes rather than hidden by the buffer.
func TestBufferedConnWriteError(t *testing.T) {
	c, peer := loopback(t, 0)
	peer.Close()
	c.Conn.(*net.TCPConn).CloseWrite() // the socket itself fails further writes
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Write([]byte("into the void")); err != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("Write never reported the broken connection")
}

// TestWebsocket connects over ws:// (mochi-mqtt's websocket listener),
// which mqttclient dials itself through Paho's websocket code.
func TestWebsocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := mochi.New(&mochi.Options{InlineClient: false, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewWebsocket(listeners.Config{ID: "ws", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	in := newInbox()
	c, err := Connect(ctx, Config{URL: "ws://" + addr + "/", ClientID: "ws-test", CleanSession: true}, nil,
		Subscription{Filter: "ws/+/emg", QoS: 1, Handler: in.handle})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(time.Second)
	for i := range 3 {
		if err := c.Publish(ctx, fmt.Sprintf("ws/dev-%d/emg", i), 1, false, []byte("hello")); err != nil {
			t.Fatal(err)
		}
	}
	got := in.waitFor(t, 3)
	if got[2] != "ws/dev-2/emg hello" {
		t.Errorf("got %v", got)
	}
}
