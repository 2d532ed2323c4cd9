package eventpub

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// pahoPublisher is the smallest Publisher over paho, standing in for the
// service's MQTT client in this test.
type pahoPublisher struct{ c mqtt.Client }

func (p pahoPublisher) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	tok := p.c.Publish(topic, qos, retained, payload)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func connect(t *testing.T, url, id string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func TestSinkThroughRealMosquitto(t *testing.T) {
	url := testenv.Mosquitto(t)
	sub := connect(t, url, fmt.Sprintf("sub-%d", os.Getpid()))
	got := make(chan mqtt.Message, 10)
	if tok := sub.Subscribe("cwtest/+/events", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	s, err := New(pahoPublisher{connect(t, url, fmt.Sprintf("pub-%d", os.Getpid()))}, Config{Prefix: "cwtest"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ongoing := sampleCramp()
	ongoing.State = detect.StateOngoing
	s.Event(ongoing)
	s.Event(sampleCramp())
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, want := range []detect.State{detect.StateOngoing, detect.StateEnded} {
		select {
		case m := <-got:
			if m.Topic() != "cwtest/dev-01/events" || m.Qos() != 1 || m.Retained() {
				t.Errorf("message %d: topic %q qos %d retained %v", i, m.Topic(), m.Qos(), m.Retained())
			}
			var j Event
			if err := json.Unmarshal(m.Payload(), &j); err != nil {
				t.Fatal(err)
			}
			e, err := j.Detect()
			if err != nil {
				t.Fatal(err)
			}
			if e.State != want || !e.Onset.Equal(ongoing.Onset) || j.ID != ongoing.ID() {
				t.Errorf("message %d: %+v, want state %s of %s", i, e, want, ongoing.ID())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d not received", i)
		}
	}
}
