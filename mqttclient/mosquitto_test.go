package mqttclient

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/internal/testenv"
)

// Integration tests against a real Mosquitto (internal/testenv starts it).

// TestMosquittoPersistentSession: frames published while the service is
// down wait in its persistent session and arrive, in order, when it comes
// back with the same client id.
func TestMosquittoPersistentSession(t *testing.T) {
	url := testenv.Mosquitto(t)
	svcID := uniqueID("persist-svc")
	first := newInbox()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	svc, err := Connect(ctx, Config{URL: url, ClientID: svcID}, nil,
		Subscription{Filter: "crampwatch/v1/+/emg", QoS: 1, Handler: first.handle})
	if err != nil {
		t.Fatal(err)
	}
	svc.Close(100 * time.Millisecond) // the service stops; its session stays

	pub := connect(t, Config{URL: url, ClientID: uniqueID("persist-dev"), CleanSession: true})
	const n = 50
	for i := 0; i < n; i++ {
		publish(t, pub, "crampwatch/v1/dev1/emg", fmt.Sprint(i))
	}

	again := newInbox()
	connect(t, Config{URL: url, ClientID: svcID},
		Subscription{Filter: "crampwatch/v1/+/emg", QoS: 1, Handler: again.handle})
	got := again.waitFor(t, n)
	for i, m := range got[:n] {
		if m != fmt.Sprintf("crampwatch/v1/dev1/emg %d", i) {
			t.Fatalf("message %d is %q", i, m)
		}
	}
	if len(first.all()) != 0 {
		t.Errorf("the stopped client received %v", first.all())
	}
}

// TestMosquittoBrokerRestart: the broker restarts (with persistence, as in
// production); both sides reconnect, a publish made during the outage is
// delivered afterwards, and the subscription still works.
func TestMosquittoBrokerRestart(t *testing.T) {
	// testenv runs the broker as root when the tests are root, so that it
	// can write its persistence to the test's directory. The log shows on
	// failure.
	srv, err := testenv.StartMosquitto(testenv.MosquittoOptions{Persistence: true,
		ExtraConfig: "log_type all\nlog_dest stderr\n"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(srv.Dir + "/mosquitto.log")
			t.Log(string(b))
		}
	}()
	in := newInbox()
	m := NewMetrics(nil)
	sub := connect(t, Config{URL: srv.URL, ClientID: uniqueID("restart-svc"), Metrics: m},
		Subscription{Filter: "t/#", QoS: 1, Handler: in.handle})
	pub := connect(t, Config{URL: srv.URL, ClientID: uniqueID("restart-dev")})
	publish(t, pub, "t/x", "before")
	in.waitFor(t, 1)

	restarted := make(chan error, 1)
	go func() { restarted <- srv.Restart() }()
	eventually(t, "the publisher to notice the outage", func() bool { return !pub.Connected() })
	// Published while the broker is down: waits in the client's store.
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLong)
	defer cancel()
	if err := pub.Publish(ctx, "t/x", 1, false, []byte("during")); err != nil {
		t.Fatalf("publish across the outage: %v", err)
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	eventually(t, "the subscriber to reconnect", sub.Connected)
	publish(t, pub, "t/x", "after")
	got := in.waitFor(t, 3)
	want := []string{"t/x before", "t/x during", "t/x after"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if value(t, m.connectionLost) < 1 || value(t, m.connects) < 2 {
		t.Errorf("connection_lost_total %v, connects_total %v", value(t, m.connectionLost), value(t, m.connects))
	}
}

// TestMosquittoSharedSubscription: two instances in one share group split
// the messages between them, each message going to exactly one.
func TestMosquittoSharedSubscription(t *testing.T) {
	url := testenv.Mosquitto(t)
	a, b := newInbox(), newInbox()
	filter := SharedFilter("crampwatch", "share-test/+/emg")
	connect(t, Config{URL: url, ClientID: uniqueID("share-a"), CleanSession: true}, Subscription{Filter: filter, QoS: 1, Handler: a.handle})
	connect(t, Config{URL: url, ClientID: uniqueID("share-b"), CleanSession: true}, Subscription{Filter: filter, QoS: 1, Handler: b.handle})
	pub := connect(t, Config{URL: url, ClientID: uniqueID("share-pub"), CleanSession: true})
	const n = 40
	for i := 0; i < n; i++ {
		publish(t, pub, fmt.Sprintf("share-test/dev%d/emg", i), "x")
	}
	deadline := time.Now().Add(waitLong)
	for len(a.all())+len(b.all()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let any duplicate show up
	seen := map[string]int{}
	for _, m := range append(a.all(), b.all()...) {
		seen[m]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct messages received, want %d", len(seen), n)
	}
	for m, c := range seen {
		if c != 1 {
			t.Errorf("%s received %d times", m, c)
		}
	}
	if len(a.all()) == 0 || len(b.all()) == 0 {
		t.Errorf("the group did not share: a got %d, b got %d", len(a.all()), len(b.all()))
	}
}

// TestMosquittoStaleSessionSubscription: a persistent session may still
// hold a subscription the service no longer routes; its messages are
// counted and acknowledged instead of blocking the session's in-flight
// window. (Mosquitto, not the embedded broker: this needs exact session
// takeover semantics.)
func TestMosquittoStaleSessionSubscription(t *testing.T) {
	url := testenv.Mosquitto(t)
	id := uniqueID("stale")
	old := newInbox()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := Connect(ctx, Config{URL: url, ClientID: id}, nil,
		Subscription{Filter: "old/#", QoS: 1, Handler: old.handle})
	if err != nil {
		t.Fatal(err)
	}
	c.Close(100 * time.Millisecond)

	m := NewMetrics(nil)
	cur := newInbox()
	connect(t, Config{URL: url, ClientID: id, Metrics: m},
		Subscription{Filter: "new/#", QoS: 1, Handler: cur.handle})
	pub := connect(t, Config{URL: url, ClientID: uniqueID("stale-pub"), CleanSession: true})
	publish(t, pub, "old/x", "stale")
	publish(t, pub, "new/x", "fresh")
	cur.waitFor(t, 1)
	eventually(t, "the stale message counted", func() bool { return value(t, m.unexpected) == 1 })
	if got := old.all(); len(got) != 0 {
		t.Errorf("old handler (from a previous connection) got %v", got)
	}
}
