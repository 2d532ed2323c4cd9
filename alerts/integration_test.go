package alerts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/alerts"
	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/mqttclient"
	"github.com/crampwatch/crampwatch/store"
	"github.com/crampwatch/crampwatch/wire"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// night is 01:00 UTC: inside the night of 23 November.
var night = time.Date(2025, 11, 24, 1, 0, 0, 0, time.UTC)

func sec(s float64) time.Time { return night.Add(time.Duration(s * float64(time.Second))) }

// appMsg is one message the phone app received.
type appMsg struct {
	Type    string  `json:"type"`
	ID      string  `json:"id"`
	Device  string  `json:"device"`
	Muscle  string  `json:"muscle"`
	Side    string  `json:"side"`
	Hint    string  `json:"hint"`
	Advice  string  `json:"advice"`
	EventID string  `json:"event_id"`
	Preset  string  `json:"preset"`
	MinMA   float64 `json:"min_ma"`
	MaxMA   float64 `json:"max_ma"`
	StartMA float64 `json:"start_ma"`
	T       time.Time
	topic   string
}

// phoneApp subscribes to everything under the prefix, like the wearer's app,
// and acknowledges alerts of the devices it is told to.
type phoneApp struct {
	t      *testing.T
	prefix string
	cli    *mqttclient.Client
	mu     sync.Mutex
	msgs   map[string][]appMsg // by device
	done   chan struct{}       // closed when the sentinel arrives
	ackFor map[string]string   // device -> action to answer its gentle alert with
}

func newPhoneApp(t *testing.T, url, prefix string, ackFor map[string]string) *phoneApp {
	t.Helper()
	a := &phoneApp{t: t, prefix: prefix, msgs: map[string][]appMsg{}, done: make(chan struct{}), ackFor: ackFor}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cli, err := mqttclient.Connect(ctx, mqttclient.Config{URL: url, ClientID: "app-" + strings.ReplaceAll(prefix, "/", "-"), CleanSession: true}, nil,
		mqttclient.Subscription{Filter: prefix + "/#", QoS: 1, Handler: a.receive})
	if err != nil {
		t.Fatalf("phone app: %v", err)
	}
	a.cli = cli
	t.Cleanup(func() { cli.Close(100 * time.Millisecond) })
	return a
}

func (a *phoneApp) receive(topic string, payload []byte) {
	if topic == a.prefix+"/_sentinel" {
		close(a.done)
		return
	}
	device, stream, err := wire.ParseTopic(a.prefix, topic)
	if err != nil || (stream != wire.StreamAlert && stream != wire.StreamTENS) {
		return // its own acks and diary entries come back too
	}
	var m appMsg
	var raw struct {
		T time.Time `json:"t"`
	}
	if err := json.Unmarshal(payload, &m); err != nil || json.Unmarshal(payload, &raw) != nil {
		a.t.Errorf("app: bad payload on %s: %s", topic, payload)
		return
	}
	m.T, m.topic = raw.T, topic
	a.mu.Lock()
	a.msgs[device] = append(a.msgs[device], m)
	action := a.ackFor[device]
	a.mu.Unlock()
	if action != "" && m.Type == alerts.TypeAlert {
		// Handlers run on the client's delivery goroutine and must not
		// wait for a publish to be acknowledged.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			body := fmt.Sprintf(`{"id":%q,"action":%q}`, m.ID, action)
			if err := a.cli.Publish(ctx, wire.Topic(a.prefix, device, wire.StreamAck), 1, false, []byte(body)); err != nil {
				a.t.Errorf("app: ack: %v", err)
			}
		}()
	}
}

func (a *phoneApp) types(device string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, m := range a.msgs[device] {
		out = append(out, m.Type)
	}
	return out
}

func (a *phoneApp) messages(device string) []appMsg {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.msgs[device])
}

// feeder plays one device's simulated night into the engine as the pipeline
// would: envelope points at 10 Hz and the detector's events at their times.
type feeder struct {
	e      *alerts.Engine
	device string
	clock  int64 // tenths of a second after night
}

func (f *feeder) to(s float64) {
	for d := f.clock + 1; d <= int64(s*10+0.5); d++ {
		f.e.Envelope(detect.Envelope{Device: f.device, Channel: wire.Channel{Muscle: wire.Calf, Side: wire.Left},
			Time: night.Add(time.Duration(d) * 100 * time.Millisecond), RMSUV: 4, BaselineUV: 4})
		f.clock = d
	}
}

func (f *feeder) event(label string, kind detect.Kind, state detect.State, onset, at float64) {
	f.to(at)
	ch, err := wire.ParseChannel(label)
	if err != nil {
		panic(err)
	}
	ev := detect.Event{Device: f.device, Kind: kind, State: state, Channel: ch, Onset: sec(onset),
		End: sec(at), ConfirmedAt: sec(min(onset+3, at)), DurationS: at - onset, PeakUV: 250, Confidence: 0.9}
	f.e.Event(ev)
}

// cramp plays a cramp confirmed 3 s after onset; wait, if set, runs at
// onset+10 s (the wearer answering) before the cramp goes on.
func (f *feeder) cramp(label string, onset, dur float64, wait func()) {
	f.event(label, detect.KindCramp, detect.StateOngoing, onset, onset+3)
	if wait != nil {
		f.to(onset + 10)
		wait()
	}
	f.event(label, detect.KindCramp, detect.StateEnded, onset, onset+dur)
}

func TestWearerLoopOverMosquitto(t *testing.T) {
	url := testenv.Mosquitto(t)
	tens := alerts.TENSConfig{Preset: "calf-night", MinMA: 8, MaxMA: 20, StartMA: 10, MaxDuration: 15 * time.Minute}
	for _, tc := range []struct {
		name string
		tens alerts.TENSConfig
	}{
		{"with TENS preset", tens},
		{"without TENS preset", alerts.TENSConfig{}},
	} {
		t.Run(tc.name, func(t *testing.T) { runNight(t, url, tc.tens) })
	}
}

func runNight(t *testing.T, url string, tens alerts.TENSConfig) {
	prefix := "itest" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/v1"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	app := newPhoneApp(t, url, prefix, map[string]string{"acked": alerts.ActionOK})

	var influx testenv.Influx
	var sink *store.Influx
	var rec alerts.Recorder
	if tens.Enabled() {
		influx = testenv.InfluxDB(t)
		var err error
		sink, err = store.New(store.Config{URL: influx.URL, Bucket: influx.Bucket, FlushInterval: 100 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		rec = store.NewAlertRecorder(sink)
	}

	cfg := alerts.DefaultConfig()
	cfg.Prefix = prefix
	cfg.TimeZone = "UTC"
	cfg.TENS = tens
	cfg.HADiscoveryPrefix = prefix + "/ha"
	var engine *alerts.Engine
	svc, err := mqttclient.Connect(ctx, mqttclient.Config{URL: url, ClientID: "svc-" + strings.ReplaceAll(prefix, "/", "-"), CleanSession: true}, nil,
		// Wired as the service wires them: device from the topic, payload to the engine.
		mqttclient.Subscription{Filter: prefix + "/+/ack", QoS: 1, Handler: func(topic string, payload []byte) {
			if device, _, err := wire.ParseTopic(prefix, topic); err == nil {
				_ = engine.HandleAck(device, payload)
			}
		}},
		mqttclient.Subscription{Filter: prefix + "/+/diary", QoS: 1, Handler: func(topic string, payload []byte) {
			if device, _, err := wire.ParseTopic(prefix, topic); err == nil {
				_ = engine.HandleDiary(device, payload)
			}
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(100 * time.Millisecond)
	engine, err = alerts.NewEngine(cfg, alerts.Deps{Publisher: svc, Recorder: rec, Now: func() time.Time { return sec(6 * 3600) }})
	if err != nil {
		t.Fatal(err)
	}

	waitAcked := func(device string) func() {
		return func() {
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) {
				if o := engine.Outcomes(device); len(o) > 0 && o[len(o)-1].Acked {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Errorf("%s: the app's acknowledgement never reached the engine", device)
		}
	}

	// The devices' nights run concurrently, as the pipeline's shards do.
	nights := map[string]func(f *feeder){
		"short": func(f *feeder) { f.cramp("calf_left", 100, 25, nil); f.to(600) },
		"long":  func(f *feeder) { f.cramp("hamstring_right", 100, 150, nil); f.to(600) },
		"acked": func(f *feeder) { f.cramp("quadriceps_left", 100, 150, waitAcked("acked")); f.to(600) },
		"bilateral": func(f *feeder) {
			f.event("calf_left", detect.KindCramp, detect.StateOngoing, 100, 103)
			f.event("calf_right", detect.KindCramp, detect.StateOngoing, 101, 104)
			f.event("calf_left", detect.KindCramp, detect.StateEnded, 100, 130)
			f.event("calf_right", detect.KindCramp, detect.StateEnded, 101, 140)
			f.to(600)
		},
		"plm": func(f *feeder) {
			for i := range 40 { // a long periodic series, one movement every 25 s
				s := float64(60 + 25*i)
				f.event([]string{"tibialis_left", "tibialis_right"}[i%2], detect.KindPLM, detect.StateEnded, s, s+1.5)
			}
			f.to(1200)
		},
		"movement": func(f *feeder) {
			for i := range 10 {
				s := float64(100 + 90*i)
				f.event("quadriceps_right", detect.KindMovement, detect.StateEnded, s, s+4)
				f.event("calf_right", detect.KindArtifact, detect.StateEnded, s+5, s+6)
			}
			f.to(1200)
		},
		"heavy": func(f *feeder) {
			for i := range 24 { // a cramp every 5 minutes for 2 hours, each 70 s: long enough to escalate
				f.cramp([]string{"calf_left", "calf_right"}[i%2], float64(i*300), 70, nil)
			}
			f.to(7500)
		},
	}
	var wg sync.WaitGroup
	for device, play := range nights {
		wg.Add(1)
		go func() {
			defer wg.Done()
			play(&feeder{e: engine, device: device})
		}()
	}
	wg.Wait()

	// The wearer fills in the diary in the morning, about the long cramp.
	diary := fmt.Sprintf(`{"pain":6,"helped":["stretch","tens"],"note":"woke up","t":%d}`, sec(7*3600).UnixMicro())
	if err := app.cli.Publish(ctx, wire.Topic(prefix, "long", wire.StreamDiary), 1, false, []byte(diary)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !engine.Outcomes("long")[0].HasDiary {
		time.Sleep(20 * time.Millisecond)
	}

	if err := engine.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Everything the engine published reached the broker before Close
	// returned; a last message from the same client arrives after all of it.
	if err := svc.Publish(ctx, prefix+"/_sentinel", 1, false, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-app.done:
	case <-ctx.Done():
		t.Fatal("the app never got the sentinel")
	}

	withTENS := tens.Enabled()
	long := []string{"alert", "escalation", "ended"}
	if withTENS {
		long = []string{"alert", "escalation", "tens_prompt", "ended"}
	}
	for device, want := range map[string][]string{
		"short":     {"alert", "ended"},
		"long":      long,
		"acked":     {"alert", "ended"},
		"bilateral": {"alert", "ended"},
		"plm":       nil,
		"movement":  nil,
	} {
		if got := app.types(device); !slices.Equal(got, want) {
			t.Errorf("%s: the app got %q, want %q", device, got, want)
		}
	}

	hints := map[string]string{
		"short": "Straighten the leg and pull the toes towards the shin.",
		"long":  "Straighten the leg and lift it slightly.",
		"acked": "Bend the knee and bring the heel towards the buttock.",
	}
	for device, hint := range hints {
		for _, m := range app.messages(device) {
			if m.Type == alerts.TypeAlert && (m.Hint != hint || m.Advice != alerts.Advice || m.ID == "" || m.EventID == "") {
				t.Errorf("%s: alert %+v, want hint %q", device, m, hint)
			}
			if m.Type == alerts.TypeTENSPrompt {
				if m.topic != prefix+"/"+device+"/tens" || m.Preset != tens.Preset || m.MinMA != tens.MinMA || m.MaxMA != tens.MaxMA ||
					m.StartMA < tens.MinMA || m.StartMA > tens.MaxMA {
					t.Errorf("%s: TENS prompt %+v outside the preset %+v", device, m, tens)
				}
			}
		}
	}

	// The cramp-heavy night never exceeds the cap in any rolling hour, and
	// every alerted cramp gets exactly one gentle alert and one ended.
	heavy := app.messages("heavy")
	var buzz []time.Time
	perAlert := map[string][]string{}
	for _, m := range heavy {
		perAlert[m.ID] = append(perAlert[m.ID], m.Type)
		if m.Type != alerts.TypeEnded {
			buzz = append(buzz, m.T)
		}
	}
	if len(buzz) == 0 {
		t.Fatal("heavy: no alerts at all")
	}
	for i := range buzz {
		n := 0
		for _, u := range buzz[:i+1] {
			if buzz[i].Sub(u) < time.Hour {
				n++
			}
		}
		if n > cfg.MaxPerHour {
			t.Errorf("heavy: %d buzzing messages in the hour before %v, cap %d", n, buzz[i].Sub(night), cfg.MaxPerHour)
		}
	}
	for id, types := range perAlert {
		gentle := 0
		for _, ty := range types {
			if ty == alerts.TypeAlert {
				gentle++
			}
		}
		if gentle > 1 || types[len(types)-1] != alerts.TypeEnded {
			t.Errorf("heavy: alert %s got %q", id, types)
		}
	}

	// Home Assistant discovery: one retained config per device, still there
	// for a client that subscribes afterwards.
	checkDiscovery(t, url, prefix, len(nights))

	o := engine.Outcomes("long")
	if len(o) != 1 || !o[0].HasDiary || *o[0].Pain != 6 || !slices.Equal(o[0].Helped, []alerts.Remedy{alerts.RemedyStretch, alerts.RemedyTENS}) {
		t.Errorf("long: outcome %+v: diary not linked", o)
	}
	if a := engine.Outcomes("acked"); len(a) != 1 || !a[0].Acked || a[0].Escalated {
		t.Errorf("acked: outcome %+v", a)
	}

	if sink != nil {
		if err := sink.Close(ctx); err != nil {
			t.Fatal(err)
		}
		checkInflux(t, influx)
	}
}

func checkDiscovery(t *testing.T, url, prefix string, devices int) {
	t.Helper()
	var mu sync.Mutex
	got := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cli, err := mqttclient.Connect(ctx, mqttclient.Config{URL: url, ClientID: "ha-" + strings.ReplaceAll(prefix, "/", "-"), CleanSession: true}, nil,
		mqttclient.Subscription{Filter: prefix + "/ha/event/+/cramp_alert/config", QoS: 1, Handler: func(topic string, payload []byte) {
			if len(payload) == 0 {
				return // our own clearing of the retained config below
			}
			var c struct {
				StateTopic string   `json:"state_topic"`
				EventTypes []string `json:"event_types"`
			}
			if json.Unmarshal(payload, &c) != nil || !strings.HasPrefix(c.StateTopic, prefix+"/") || len(c.EventTypes) != 3 {
				t.Errorf("discovery %s: %s", topic, payload)
			}
			mu.Lock()
			got[topic] = true
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close(100 * time.Millisecond)
	for ctx.Err() == nil {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == devices {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != devices || !got[prefix+"/ha/event/crampwatch_long/cramp_alert/config"] {
		t.Errorf("retained discovery configs %v, want %d", got, devices)
	}
	// Clear the retained configs so the broker does not keep test topics.
	for topic := range got {
		_ = cli.Publish(ctx, topic, 1, true, nil)
	}
}

// checkInflux reads back what the recorder wrote for the long cramp.
func checkInflux(t *testing.T, inf testenv.Influx) {
	t.Helper()
	ctx := context.Background()
	count := func(q string) map[string]float64 {
		body, err := testenv.InfluxQLQuery(ctx, inf.URL, inf.Database, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var r struct {
			Results []struct {
				Series []struct {
					Tags   map[string]string `json:"tags"`
					Values [][]any           `json:"values"`
				} `json:"series"`
			} `json:"results"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, res := range r.Results {
			for _, s := range res.Series {
				key := strings.Join(slices.Sorted(func(yield func(string) bool) {
					for _, v := range s.Tags {
						if !yield(v) {
							return
						}
					}
				}), ",")
				if len(s.Values) > 0 && len(s.Values[0]) > 1 {
					v, _ := s.Values[0][1].(float64)
					out[key] = v
				}
			}
		}
		return out
	}
	sent := count(`SELECT count("alert_id") FROM "alerts" WHERE "device"='long' AND "outcome"='sent' GROUP BY "type"`)
	want := map[string]float64{"alert": 1, "escalation": 1, "tens_prompt": 1, "ended": 1}
	for k, v := range want {
		if sent[k] != v {
			t.Errorf("influx alerts for long: %v, want %v", sent, want)
			break
		}
	}
	lat := count(`SELECT max("latency_s") FROM "alerts" WHERE "device"='long' AND "type"='tens_prompt'`)
	if lat[""] != 120 {
		t.Errorf("influx: TENS prompt latency %v, want 120 s", lat)
	}
	acks := count(`SELECT count("alert_id") FROM "acks" GROUP BY "action","device"`)
	if acks["acked,ok"] != 1 && acks["ok,acked"] != 1 {
		t.Errorf("influx acks %v", acks)
	}
	diary := count(`SELECT max("pain") FROM "diary" WHERE "device"='long' AND "helped_tens"=true`)
	if diary[""] != 6 {
		t.Errorf("influx diary %v", diary)
	}
	capped := count(`SELECT count("alert_id") FROM "alerts" WHERE "device"='heavy' AND "reason"='hourly_cap'`)
	if capped[""] == 0 {
		t.Errorf("influx: no hourly_cap suppression recorded for the heavy night")
	}
}
