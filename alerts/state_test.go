package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
)

// restart replaces the harness's policy by a new one that got the old one's
// state through the file format (snapshot, JSON, restore), as a service
// restart with --state-dir does.
func restart() op {
	return func(h *harness) {
		next, err := newPolicy(h.p.cfg)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, d := range h.p.devs {
			st := h.p.snapshot(d)
			if st == nil {
				continue
			}
			b, err := json.Marshal(st)
			if err != nil {
				h.t.Fatal(err)
			}
			var back deviceFile
			if err := json.Unmarshal(b, &back); err != nil {
				h.t.Fatal(err)
			}
			if err := next.restore(&back); err != nil {
				h.t.Fatalf("restore: %v", err)
			}
		}
		h.p = next
		h.drain()
	}
}

// forget is a restart without saved state: what the service did before.
func forget() op {
	return func(h *harness) {
		next, err := newPolicy(h.p.cfg)
		if err != nil {
			h.t.Fatal(err)
		}
		h.p = next
	}
}

// gapTo jumps the device's clock to s, as a stream resuming after a gap.
func gapTo(s float64) op {
	return func(h *harness) {
		h.clock = int64(s*10+0.5) - 1
		tickTo(s)(h)
	}
}

func alertID(label string, onset float64) string {
	return "al-" + (&detect.Event{Device: dev, Kind: detect.KindCramp, Channel: chOf(label), Onset: at(onset)}).ID()
}

func TestStateAcrossRestart(t *testing.T) {
	capped := testConfig()
	capped.Cooldown = 0
	capped.MaxPerHour = 2

	tests := []struct {
		name           string
		cfg            Config
		ops            []op
		want           []string
		wantSuppressed []string
		wantErrs       int
	}{
		{
			name: "an unacknowledged alert escalates after the restart, and ends",
			cfg:  testConfig(),
			ops:  []op{confirm("calf_left", 0, 3), tickTo(10), restart(), end("calf_left", 0, 100)},
			want: []string{"alert@3", "escalation@60", "ended@100"},
		},
		{
			name: "without saved state: no escalation, no ended (the old behaviour)",
			cfg:  testConfig(),
			ops:  []op{confirm("calf_left", 0, 3), tickTo(10), forget(), end("calf_left", 0, 100)},
			want: []string{"alert@3"},
		},
		{
			name: "an ack after the restart is accepted and stops escalation",
			cfg:  withTENS(testConfig()),
			ops:  []op{confirm("calf_left", 0, 3), tickTo(10), restart(), ack("calf_left", 0, 20, ActionOK), end("calf_left", 0, 200)},
			want: []string{"alert@3", "ended@200"},
		},
		{
			name:     "without saved state the ack is rejected",
			cfg:      withTENS(testConfig()),
			ops:      []op{confirm("calf_left", 0, 3), tickTo(10), forget(), ack("calf_left", 0, 20, ActionOK)},
			want:     []string{"alert@3"},
			wantErrs: 1,
		},
		{
			name: "an ack before the restart still holds after it",
			cfg:  withTENS(testConfig()),
			ops:  []op{confirm("calf_left", 0, 3), ack("calf_left", 0, 20, ActionDismiss), tickTo(30), restart(), end("calf_left", 0, 200)},
			want: []string{"alert@3", "ended@200"},
		},
		{
			name: "a snooze runs on across the restart",
			cfg:  withTENS(testConfig()),
			ops:  []op{confirm("calf_left", 0, 3), ack("calf_left", 0, 50, ActionSnooze), tickTo(55), restart(), end("calf_left", 0, 300)},
			want: []string{"alert@3", "escalation@170", "tens_prompt@170", "ended@300"},
		},
		{
			name: "an escalation sent before the restart is not sent again",
			cfg:  withTENS(testConfig()),
			ops:  []op{confirm("calf_left", 0, 3), tickTo(70), restart(), end("calf_left", 0, 150)},
			want: []string{"alert@3", "escalation@60", "tens_prompt@120", "ended@150"},
		},
		{
			name: "the cramp detected again after the restart joins the running alert",
			cfg:  testConfig(),
			ops: []op{confirm("calf_left", 0, 3), tickTo(10), restart(),
				confirm("calf_left", 10.5, 13), end("calf_left", 10.5, 30), end("calf_left", 0, 30)},
			want:           []string{"alert@3", "ended@30"},
			wantSuppressed: []string{"alert:concurrent"},
		},
		{
			name:           "the cooldown holds across the restart",
			cfg:            testConfig(),
			ops:            []op{whole("calf_left", 0, 20), tickTo(25), restart(), whole("calf_left", 60, 20)},
			want:           []string{"alert@3", "ended@20"},
			wantSuppressed: []string{"alert:cooldown"},
		},
		{
			name: "without saved state the cooldown restarts from zero",
			cfg:  testConfig(),
			ops:  []op{whole("calf_left", 0, 20), tickTo(25), forget(), whole("calf_left", 60, 20)},
			want: []string{"alert@3", "ended@20", "alert@63", "ended@80"},
		},
		{
			name: "the hourly cap holds across the restart",
			cfg:  capped,
			ops: []op{whole("calf_left", 0, 20), whole("calf_left", 30, 20), tickTo(60), restart(),
				whole("calf_left", 100, 20), whole("calf_left", 3700, 20)},
			want:           []string{"alert@3", "ended@20", "alert@33", "ended@50", "alert@3703", "ended@3720"},
			wantSuppressed: []string{"alert:hourly_cap"},
		},
		{
			name: "without saved state the hourly cap restarts from zero",
			cfg:  capped,
			ops: []op{whole("calf_left", 0, 20), whole("calf_left", 30, 20), tickTo(60), forget(),
				whole("calf_left", 100, 20)},
			want: []string{"alert@3", "ended@20", "alert@33", "ended@50", "alert@103", "ended@120"},
		},
		{
			name: "after a gap the saved episode does not escalate; the pipeline's end still ends it",
			cfg:  testConfig(),
			ops:  []op{confirm("calf_left", 0, 3), tickTo(10), restart(), gapTo(70), end("calf_left", 0, 75)},
			want: []string{"alert@3", "ended@75"},
		},
		{
			name: "a saved episode nobody ends gives way to the next cramp",
			cfg:  testConfig(),
			ops: []op{confirm("calf_left", 0, 3), tickTo(10), restart(), gapTo(40),
				confirm("calf_right", 40, 43), end("calf_right", 40, 50)},
			want: []string{"alert@3", "alert@43", "ended@50"},
		},
		{
			name:     "alerts older than the kept hour are forgotten",
			cfg:      testConfig(),
			ops:      []op{whole("calf_left", 0, 20), tickTo(3700), restart(), ack("calf_left", 0, 3701, ActionOK)},
			want:     []string{"alert@3", "ended@20"},
			wantErrs: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg).run(tc.ops...)
			if len(h.errs) != tc.wantErrs {
				t.Fatalf("errors %v, want %d", h.errs, tc.wantErrs)
			}
			if got := h.sent(); !slices.Equal(got, tc.want) {
				t.Errorf("sent %q, want %q", got, tc.want)
			}
			if got := h.suppressed(); !slices.Equal(got, tc.wantSuppressed) {
				t.Errorf("suppressed %q, want %q", got, tc.wantSuppressed)
			}
		})
	}
}

func TestStateEndedNamesTheOriginalAlert(t *testing.T) {
	h := newHarness(t, testConfig()).run(confirm("calf_left", 0, 3), tickTo(10), restart(), end("calf_left", 0, 30))
	var ids []string
	for _, n := range h.notes {
		if n.Type != TypeDiscovery {
			ids = append(ids, n.Type+" "+n.AlertID)
		}
	}
	id := alertID("calf_left", 0)
	if want := []string{"alert " + id, "ended " + id}; !slices.Equal(ids, want) {
		t.Errorf("messages %q, want %q", ids, want)
	}
	var m AlertMessage
	if err := json.Unmarshal(h.notes[len(h.notes)-1].Payload, &m); err != nil {
		t.Fatal(err)
	}
	if m.DurationS != 30 || m.Acked == nil || *m.Acked {
		t.Errorf("ended message %+v: want 30 s, not acked", m)
	}
}

func newStateEngine(t *testing.T) (*Engine, *fakePublisher, *Metrics) {
	t.Helper()
	pub := &fakePublisher{}
	m := NewMetrics(prometheus.NewRegistry())
	e, err := NewEngine(testConfig(), Deps{Publisher: pub, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e, pub, m
}

// openCramp confirms a cramp at 3 s and ticks the clock to 10 s.
func openCramp(e *Engine, label string) {
	ev := crampEvent(label, 0)
	ev.State, ev.ConfirmedAt, ev.End = detect.StateOngoing, at(3), at(3)
	for s := 0.0; s <= 10; s += 0.1 {
		e.Envelope(detect.Envelope{Device: dev, Channel: ev.Channel, Time: at(s), RMSUV: 200, BaselineUV: 5})
		if s >= 3 && s < 3.1 {
			e.Event(ev)
		}
	}
}

func TestEngineSaveLoadState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "alerts")
	e1, _, m1 := newStateEngine(t)
	openCramp(e1, "calf_left")
	if n, err := e1.SaveState(dir); err != nil || n != 1 {
		t.Fatalf("SaveState = %d, %v; want 1 device", n, err)
	}
	if got := counterValue(t, m1.state.WithLabelValues("saved")); got != 1 {
		t.Errorf("saved counter %g, want 1", got)
	}
	if err := e1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir %v, %v: want mode 0700", fi, err)
	}

	e2, _, m2 := newStateEngine(t)
	if n, err := e2.LoadState(dir); err != nil || n != 1 {
		t.Fatalf("LoadState = %d, %v; want 1 device", n, err)
	}
	if got := counterValue(t, m2.state.WithLabelValues("loaded")); got != 1 {
		t.Errorf("loaded counter %g, want 1", got)
	}
	// LoadState consumed the active episode in the file: a crash now must
	// not leave the next run with an episode the pipeline will never end.
	st, err := readDeviceFile(dir, dev)
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != "" || len(st.Episodes) != 1 || !st.Episodes[0].Ended {
		t.Errorf("file after load: active %q, episodes %+v; want the episode ended", st.Active, st.Episodes)
	}
	ackMsg := []byte(`{"id":"` + alertID("calf_left", 0) + `","action":"ok"}`)
	if err := e2.HandleAck(dev, ackMsg); err != nil {
		t.Fatalf("ack of the alert issued before the restart: %v", err)
	}
	if got := e2.Outcomes(dev); len(got) != 1 || !got[0].Acked || !got[0].Alerted {
		t.Errorf("outcomes after restart %+v: want the cramp, alerted and acked", got)
	}

	// The crash case: a third engine reads the consumed file. The ack is
	// still accepted, but no episode is open.
	e3, _, _ := newStateEngine(t)
	if n, err := e3.LoadState(dir); err != nil || n != 1 {
		t.Fatalf("LoadState after a crash = %d, %v", n, err)
	}
	e3.mu.Lock()
	active := e3.pol.devs[dev].active
	e3.mu.Unlock()
	if active != nil {
		t.Errorf("episode still open after loading a consumed file")
	}
	if err := e3.HandleAck(dev, ackMsg); err != nil {
		t.Errorf("ack after a crash: %v", err)
	}
}

func TestEngineLoadStateMissingDir(t *testing.T) {
	e, _, _ := newStateEngine(t)
	if n, err := e.LoadState(filepath.Join(t.TempDir(), "nope")); n != 0 || err != nil {
		t.Errorf("LoadState(missing) = %d, %v; want 0, nil", n, err)
	}
}

func TestSaveStateRemovesDevicesWithNothingLeft(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, dev+".json")
	if err := os.WriteFile(path, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	e, _, _ := newStateEngine(t)
	e.Envelope(detect.Envelope{Device: dev, Channel: chOf("calf_left"), Time: at(1)}) // seen, nothing to keep
	if n, err := e.SaveState(dir); err != nil || n != 0 {
		t.Fatalf("SaveState = %d, %v; want 0", n, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale file left: %v", err)
	}
}

func TestEngineLoadStateRejectsBadFiles(t *testing.T) {
	// A valid file to corrupt in various ways.
	src := t.TempDir()
	e0, _, _ := newStateEngine(t)
	openCramp(e0, "calf_left")
	if _, err := e0.SaveState(src); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(src, dev+".json"))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(*deviceFile)) []byte {
		var st deviceFile
		if err := json.Unmarshal(good, &st); err != nil {
			t.Fatal(err)
		}
		f(&st)
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"truncated", good[:len(good)/2]},
		{"not json", []byte("\x00\x01garbage")},
		{"unknown version", edit(func(st *deviceFile) { st.Version = 2 })},
		{"another device's file", edit(func(st *deviceFile) { st.Device = "dev2" })},
		{"active episode missing", edit(func(st *deviceFile) { st.Active = "al-nope" })},
		{"episode without cramps", edit(func(st *deviceFile) { st.Episodes[0].Members = nil })},
		{"episode id not its cramp's", edit(func(st *deviceFile) { st.Episodes[0].ID = "al-other" })},
		{"bad channel", edit(func(st *deviceFile) { st.Episodes[0].Members[0].Channel = "elbow_up" })},
		{"bad action", edit(func(st *deviceFile) { st.Episodes[0].AckAction = "explode" })},
		{"no clock", edit(func(st *deviceFile) { st.NowUS = 0 })},
		{"buzz after the clock", edit(func(st *deviceFile) { st.BuzzesUS = []int64{st.NowUS + 1} })},
		{"too big", append(append([]byte(`{"version":1,"device":"dev1","cramps":[`), make([]byte, maxStateBytes)...), ']', '}')},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, dev+".json"), tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			e, _, m := newStateEngine(t)
			n, err := e.LoadState(dir)
			if err != nil || n != 0 {
				t.Fatalf("LoadState = %d, %v; want 0 devices, no error", n, err)
			}
			if got := counterValue(t, m.state.WithLabelValues("rejected")); got != 1 {
				t.Errorf("rejected counter %g, want 1", got)
			}
			// The device starts afresh: a new cramp alerts normally.
			openCramp(e, "calf_left")
			e.mu.Lock()
			d := e.pol.devs[dev]
			sent := d != nil && d.active != nil && d.active.sent
			e.mu.Unlock()
			if !sent {
				t.Error("device did not start afresh")
			}
		})
	}
}

func TestEngineLoadStateSkipsLiveDevice(t *testing.T) {
	dir := t.TempDir()
	e1, _, _ := newStateEngine(t)
	openCramp(e1, "calf_left")
	if _, err := e1.SaveState(dir); err != nil {
		t.Fatal(err)
	}
	e2, _, m := newStateEngine(t)
	e2.Health(ingest.Health{Device: dev, Time: at(1)}) // live before the load
	if n, err := e2.LoadState(dir); err != nil || n != 0 {
		t.Fatalf("LoadState = %d, %v; want 0", n, err)
	}
	if got := counterValue(t, m.state.WithLabelValues("rejected")); got != 1 {
		t.Errorf("rejected counter %g, want 1", got)
	}
}

// FuzzRestoreState feeds arbitrary state files to the decoder and restore:
// never a panic, and whatever is accepted survives use and a new snapshot.
func FuzzRestoreState(f *testing.F) {
	f.Add([]byte(`{"version":1,"device":"dev1","now_us":1000}`))
	f.Add([]byte(`{"version":1,"device":"dev1","now_us":5000000,"buzzes_us":[4000],"active":"al-dev1-cramp-calf_left-1000","episodes":[{"id":"al-dev1-cramp-calf_left-1000","onset_us":1000,"sent":true,"first_msg_us":4000,"noted":[{"type":"escalation","reason":"quiet_hours","event_id":"dev1-cramp-calf_left-1000"}],"members":[{"channel":"calf_left","onset_us":1000,"confirmed_us":4000}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var st deviceFile
		if json.Unmarshal(data, &st) != nil || st.Device != dev {
			return
		}
		p, err := newPolicy(testConfig())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.restore(&st); err != nil {
			if p.devs[dev] != nil {
				t.Fatalf("rejected state (%v) left a device behind", err)
			}
			return
		}
		d := p.devs[dev]
		for s := 0.0; s < 200; s += 1 {
			p.tick(dev, time.UnixMicro(st.NowUS).Add(time.Duration(s)*time.Second))
		}
		_ = p.ack(dev, Ack{ID: "al-dev1-cramp-calf_left-1000", Action: ActionOK})
		if snap := p.snapshot(d); snap != nil {
			var again deviceFile
			b, _ := json.Marshal(snap)
			if err := json.Unmarshal(b, &again); err != nil {
				t.Fatal(err)
			}
			q, _ := newPolicy(testConfig())
			if err := q.restore(&again); err != nil {
				t.Fatalf("a snapshot of restored state does not restore: %v", err)
			}
		}
	})
}

// BenchmarkSaveState measures a graceful stop's alert state save: 100
// devices, each in the middle of an alerted cramp (one fsynced file each).
func BenchmarkSaveState(b *testing.B) {
	e, err := NewEngine(testConfig(), Deps{Publisher: &fakePublisher{}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	for i := range 100 {
		ev := crampEvent("calf_left", 0)
		ev.Device = fmt.Sprintf("dev%03d", i)
		ev.State, ev.ConfirmedAt, ev.End = detect.StateOngoing, at(3), at(3)
		e.Event(ev)
		e.Health(ingest.Health{Device: ev.Device, Time: at(10)})
	}
	dir := b.TempDir()
	for b.Loop() {
		if n, err := e.SaveState(dir); err != nil || n != 100 {
			b.Fatalf("SaveState = %d, %v", n, err)
		}
	}
}
