package mqttclient

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/internal/testenv"
)

// TestMosquittoRestartWithReusedBuffers: publishers that reuse one payload
// buffer (as the firmware simulator does) keep publishing while Mosquitto
// restarts. After the reconnection Paho resends the messages that were in
// flight and completes their Publish calls before the broker has them;
// Publish copies the payload, so every message still arrives with its own
// payload under its own topic, and none is lost.
func TestMosquittoRestartWithReusedBuffers(t *testing.T) {
	srv, err := testenv.StartMosquitto(testenv.MosquittoOptions{Persistence: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var mu sync.Mutex
	got := map[string]map[int]bool{}
	var mismatched []string
	handle := func(topic string, p []byte) {
		mu.Lock()
		defer mu.Unlock()
		tp, seq, _ := strings.Cut(string(p), "#")
		if tp != topic {
			mismatched = append(mismatched, topic+" <- "+string(p))
			return
		}
		var n int
		fmt.Sscan(seq, &n)
		if got[topic] == nil {
			got[topic] = map[int]bool{}
		}
		got[topic][n] = true
	}
	cfg := Config{URL: srv.URL, MaxReconnectInterval: time.Second}
	subCfg := cfg
	subCfg.ClientID = uniqueID("reuse-sub")
	sub := connect(t, subCfg, Subscription{Filter: "reuse/#", QoS: 1, Handler: handle})
	defer sub.Close(time.Second)
	pubCfg := cfg
	pubCfg.ClientID = uniqueID("reuse-pub")
	pub := connect(t, pubCfg)
	defer pub.Close(time.Second)

	const publishers, n = 6, 1500
	var wg sync.WaitGroup
	for d := range publishers {
		wg.Go(func() {
			buf := make([]byte, 0, 64)
			for i := range n {
				// Two topics per publisher, one buffer: a payload that
				// lands under the wrong topic shows.
				topic := fmt.Sprintf("reuse/%d/%d", d, i%2)
				buf = fmt.Appendf(buf[:0], "%s#%d", topic, i)
				for pub.Publish(ctx, topic, 1, false, buf) != nil && ctx.Err() == nil {
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	srv.StopOnly()
	time.Sleep(time.Second)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	want := publishers * n
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		c := 0
		for _, s := range got {
			c += len(s)
		}
		return c
	}
	for deadline := time.Now().Add(waitLong); count() < want && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if c := count(); c != want {
		t.Errorf("%d of %d messages delivered", c, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(mismatched) > 0 {
		t.Errorf("%d messages arrived with another message's payload, e.g. %s", len(mismatched), mismatched[0])
	}
}
