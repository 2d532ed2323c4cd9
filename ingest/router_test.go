package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// msg is one message a test sends.
type msg struct {
	topic   string
	payload []byte
}

func em(dev string, seq uint32, slot int64) msg {
	return msg{topic(dev, wire.StreamEMG), emgJSON(seq, slot)}
}
func im(dev string, seq uint32, slot int64) msg {
	return msg{topic(dev, wire.StreamIMU), imuJSON(seq, slot)}
}

// feedAll feeds msgs in order and closes the router, so every frame has
// been handled when it returns.
func feedAll(t *testing.T, r *Router, msgs []msg) {
	t.Helper()
	for _, m := range msgs {
		if err := r.Feed(context.Background(), m.topic, m.payload); err != nil {
			t.Fatalf("feed %s: %v", m.topic, err)
		}
	}
	r.Close()
}

func TestRouterStreams(t *testing.T) {
	const top = ^uint32(0)
	eb := func(dev string, seq uint32, slot int64) msg {
		return msg{topic(dev, wire.StreamEMG), emgBin(t, seq, slot)}
	}
	ib := func(dev string, seq uint32, slot int64) msg {
		return msg{topic(dev, wire.StreamIMU), imuBin(t, seq, slot)}
	}
	tests := []struct {
		name              string
		msgs              []msg
		want              map[string]string
		lost, dup, resets float64
	}{
		{
			name: "in order, JSON",
			msgs: []msg{em("a", 1, 0), em("a", 2, 1), em("a", 3, 2)},
			want: map[string]string{"a": "emg1 emg2 emg3"},
		},
		{
			name: "binary and JSON mixed on one stream",
			msgs: []msg{eb("a", 1, 0), em("a", 2, 1), eb("a", 3, 2), ib("a", 1, 0), ib("a", 2, 1)},
			want: map[string]string{"a": "emg1 emg2 emg3 imu1 imu2"},
		},
		{
			name: "QoS 1 duplicates dropped",
			msgs: []msg{em("a", 1, 0), em("a", 2, 1), em("a", 2, 1), em("a", 1, 0), em("a", 3, 2)},
			want: map[string]string{"a": "emg1 emg2 emg3"},
			dup:  2,
		},
		{
			name: "reordered frames put back in order",
			msgs: []msg{em("a", 1, 0), em("a", 3, 2), em("a", 2, 1), em("a", 4, 3)},
			want: map[string]string{"a": "emg1 emg2 emg3 emg4"},
		},
		{
			name: "lost frames reported as a gap with sample times",
			msgs: []msg{em("a", 1, 0), em("a", 4, 3), em("a", 5, 4), em("a", 6, 5), em("a", 7, 6)},
			want: map[string]string{"a": "emg1 gap:emg:2:[1-3] emg4 emg5 emg6 emg7"},
			lost: 2,
		},
		{
			name: "sequence number wraps",
			msgs: []msg{em("a", top-1, 0), em("a", top, 1), em("a", 0, 2), em("a", 1, 3)},
			want: map[string]string{"a": "emg4294967294 emg4294967295 emg0 emg1"},
		},
		{
			name:   "device reboot: seq back to 0 with newer samples",
			msgs:   []msg{em("a", 500, 0), em("a", 501, 1), em("a", 0, 2), em("a", 1, 3)},
			want:   map[string]string{"a": "emg500 emg501 emg0 emg1"},
			resets: 1,
		},
		{
			name: "t0 backwards for a new seq rejected, stream goes on",
			msgs: []msg{em("a", 1, 5), em("a", 2, 3), em("a", 3, 6)},
			want: map[string]string{"a": "emg1 gap:emg:1:[6-6] emg3"},
			lost: 1,
		},
		{
			name: "EMG and IMU sequenced independently",
			msgs: []msg{em("a", 1, 0), im("a", 7, 0), em("a", 2, 1), im("a", 9, 2), im("a", 8, 1), em("a", 3, 2)},
			want: map[string]string{"a": "emg1 imu7 emg2 imu8 imu9 emg3"},
		},
		{
			name: "devices independent",
			msgs: []msg{em("a", 1, 0), em("b", 1, 0), em("a", 2, 1), em("b", 1, 0), em("c", 9, 0), em("a", 3, 2), em("b", 2, 1)},
			want: map[string]string{"a": "emg1 emg2 emg3", "b": "emg1 emg2", "c": "emg9"},
			dup:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRecHandler()
			m := NewMetrics(nil)
			r := NewRouter(Config{Shards: 3, ReorderWindow: 2}, h, m, nil)
			feedAll(t, r, tt.msgs)
			for dev, want := range tt.want {
				if got := strings.Join(h.get(dev), " "); got != want {
					t.Errorf("device %s:\n got  %s\n want %s", dev, got, want)
				}
			}
			if got := h.devices(); len(got) != len(tt.want) {
				t.Errorf("devices %v, want %d", got, len(tt.want))
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"lost", value(t, m.lost), tt.lost},
				{"duplicate", value(t, m.duplicate), tt.dup},
				{"resets", value(t, m.resets), tt.resets},
			} {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

// TestRouterSimultaneousIMUSites: firmware that samples both shanks at the
// same instants sends, for every frame period, two frames with equal t0
// under consecutive sequence numbers on the one imu topic. Every frame
// reaches the handler, in sequence order, through the real decoders; a
// site that repeats its own t0 is still rejected as bad_time; and
// duplicates, reordering, losses and reboots work as on any stream.
func TestRouterSimultaneousIMUSites(t *testing.T) {
	type enc func(f *wire.IMUFrame) []byte
	jsonEnc := func(f *wire.IMUFrame) []byte { return wire.AppendIMUJSON(nil, f) }
	binEnc := func(f *wire.IMUFrame) []byte {
		b, err := wire.AppendIMUBinary(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// l and r are frames of the left and right shank; pair is both at once.
	l := func(e enc, seq uint32, slot int64) msg {
		return msg{topic("a", wire.StreamIMU), e(imuSiteFrame(seq, slot, shankLeft))}
	}
	r := func(e enc, seq uint32, slot int64) msg {
		return msg{topic("a", wire.StreamIMU), e(imuSiteFrame(seq, slot, shankRight))}
	}
	pair := func(e enc, seq uint32, slot int64) []msg { return []msg{l(e, seq, slot), r(e, seq+1, slot)} }
	cat := func(parts ...[]msg) []msg {
		var out []msg
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	one := func(m ...msg) []msg { return m }
	for _, e := range []struct {
		name string
		enc  enc
	}{{"json", jsonEnc}, {"binary", binEnc}} {
		tests := []struct {
			name                       string
			msgs                       []msg
			want                       string
			lost, dup, resets, badTime float64
		}{
			{
				name: "equal t0s of both sites all delivered",
				msgs: cat(pair(e.enc, 1, 0), pair(e.enc, 3, 1), pair(e.enc, 5, 2)),
				want: "imu1 imu2/shank_right imu3 imu4/shank_right imu5 imu6/shank_right",
			},
			{
				name:    "a site repeating its own t0 is bad_time",
				msgs:    one(l(e.enc, 1, 0), r(e.enc, 2, 0), l(e.enc, 3, 0), r(e.enc, 4, 1), l(e.enc, 5, 1)),
				want:    "imu1 imu2/shank_right gap:imu:1:[1-1] imu4/shank_right imu5",
				lost:    1,
				badTime: 1,
			},
			{
				name: "duplicates of either site dropped",
				msgs: cat(pair(e.enc, 1, 0), one(r(e.enc, 2, 0)), pair(e.enc, 3, 1), one(l(e.enc, 1, 0))),
				want: "imu1 imu2/shank_right imu3 imu4/shank_right",
				dup:  2,
			},
			{
				name: "reordered frames put back in order",
				msgs: one(l(e.enc, 1, 0), r(e.enc, 2, 0), r(e.enc, 4, 1), l(e.enc, 5, 2), l(e.enc, 3, 1), r(e.enc, 6, 2)),
				want: "imu1 imu2/shank_right imu3 imu4/shank_right imu5 imu6/shank_right",
			},
			{
				name: "one site's frame lost",
				msgs: one(l(e.enc, 1, 0), r(e.enc, 2, 0), r(e.enc, 4, 1), l(e.enc, 5, 2), r(e.enc, 6, 2), l(e.enc, 7, 3)),
				want: "imu1 imu2/shank_right gap:imu:1:[1-1] imu4/shank_right imu5 imu6/shank_right imu7",
				lost: 1,
			},
			{
				name:   "device reboot: both sites count from 0 again",
				msgs:   cat(pair(e.enc, 500, 0), pair(e.enc, 502, 1), pair(e.enc, 0, 2), pair(e.enc, 2, 3)),
				want:   "imu500 imu501/shank_right imu502 imu503/shank_right imu0 imu1/shank_right imu2 imu3/shank_right",
				resets: 1,
			},
			{
				name: "EMG on its own sequence next to both sites",
				msgs: cat(one(em("a", 1, 0)), pair(e.enc, 7, 0), one(em("a", 2, 1)), pair(e.enc, 9, 1)),
				want: "emg1 imu7 imu8/shank_right emg2 imu9 imu10/shank_right",
			},
		}
		for _, tt := range tests {
			t.Run(e.name+"/"+tt.name, func(t *testing.T) {
				h := newRecHandler()
				m := NewMetrics(nil)
				rt := NewRouter(Config{Shards: 2, ReorderWindow: 2}, h, m, nil)
				feedAll(t, rt, tt.msgs)
				if got := strings.Join(h.get("a"), " "); got != tt.want {
					t.Errorf("\n got  %s\n want %s", got, tt.want)
				}
				for _, c := range []struct {
					name      string
					got, want float64
				}{
					{"lost", value(t, m.lost), tt.lost},
					{"duplicate", value(t, m.duplicate), tt.dup},
					{"resets", value(t, m.resets), tt.resets},
					{"bad_time", rejected(t, m, wire.ReasonBadTime), tt.badTime},
					{"clock jumps", value(t, m.clockJumps), 0},
				} {
					if c.got != c.want {
						t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
					}
				}
			})
		}
	}
}

func TestRouterRejects(t *testing.T) {
	const maxPayload = 8 << 10
	goodFrame := emgFrame(9, 9)
	ragged := emgJSON(2, 1)
	ragged = bytes.Replace(ragged, []byte("]]}"), []byte(",1]]}"), 1)
	corrupt := emgBin(t, 2, 1)
	corrupt[30] ^= 0xff
	tests := []struct {
		name    string
		topic   string
		payload []byte
		reason  wire.Reason // "" when the message is not a rejection
		sync    error       // what Handle itself returns, if it decides
	}{
		{"topic outside the prefix", "other/dev/emg", emgJSON(2, 1), wire.ReasonBadTopic, &wire.Error{}},
		{"unknown stream", wire.DefaultPrefix + "/dev/blood", emgJSON(2, 1), wire.ReasonBadTopic, &wire.Error{}},
		{"invalid device id", wire.DefaultPrefix + "/de+v/emg", emgJSON(2, 1), wire.ReasonBadDevice, &wire.Error{}},
		{"oversize", topic("dev", wire.StreamEMG), make([]byte, maxPayload+1), wire.ReasonOversize, &wire.Error{}},
		{"not the router's stream", topic("dev", wire.StreamAck), []byte(`{"ok":true}`), "", ErrUnrouted},
		{"empty payload", topic("dev", wire.StreamEMG), nil, wire.ReasonEmpty, nil},
		{"truncated JSON", topic("dev", wire.StreamEMG), []byte(`{"seq": 2, "t0":`), wire.ReasonBadJSON, nil},
		{"ragged rows", topic("dev", wire.StreamEMG), ragged, wire.ReasonRagged, nil},
		{"corrupted binary", topic("dev", wire.StreamEMG), corrupt, wire.ReasonBadBinary, nil},
		{"unknown channel", topic("dev", wire.StreamEMG),
			bytes.Replace(emgJSON(2, 1), []byte("calf_left"), []byte("elbow_left"), 1), wire.ReasonUnknownChannel, nil},
		{"absurd rate", topic("dev", wire.StreamEMG),
			bytes.Replace(emgJSON(2, 1), []byte(`"rate":1000`), []byte(`"rate":100`), 1), wire.ReasonBadRate, nil},
		{"IMU garbage", topic("dev", wire.StreamIMU), []byte(`[1,2,3]`), wire.ReasonBadJSON, nil},
		{"status without time", topic("dev", wire.StreamStatus), []byte(`{"battery_pct": 50}`), wire.ReasonMissingField, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRecHandler()
			m := NewMetrics(nil)
			r := NewRouter(Config{Shards: 2, MaxPayload: maxPayload, HealthInterval: 50 * time.Millisecond}, h, m, nil)
			send := func(tp string, p []byte) error { return r.Handle(tp, p) }
			for _, mm := range []msg{em("dev", 1, 0), em("other", 1, 0)} {
				if err := send(mm.topic, mm.payload); err != nil {
					t.Fatal(err)
				}
			}
			err := send(tt.topic, tt.payload)
			switch {
			case tt.sync == nil && err != nil:
				t.Errorf("Handle: %v, want nil (rejected later, by the shard)", err)
			case errors.Is(tt.sync, ErrUnrouted) && !errors.Is(err, ErrUnrouted):
				t.Errorf("Handle: %v, want ErrUnrouted", err)
			case tt.sync != nil && !errors.Is(tt.sync, ErrUnrouted):
				var we *wire.Error
				if !errors.As(err, &we) || we.Reason != tt.reason {
					t.Errorf("Handle: %v, want a *wire.Error with reason %s", err, tt.reason)
				}
			}
			for _, mm := range []msg{em("dev", 2, 1), em("other", 2, 1)} {
				if err := send(mm.topic, mm.payload); err != nil {
					t.Fatal(err)
				}
			}
			if err := send(topic("dev", wire.StreamEMG), wire.AppendEMGJSON(nil, goodFrame)); err != nil {
				t.Fatal(err)
			}
			r.Close()
			if got, want := strings.Join(h.get("dev"), " "), "emg1 emg2 gap:emg:6:[2-9] emg9"; got != want {
				t.Errorf("device dev: got %s, want %s", got, want)
			}
			if got, want := strings.Join(h.get("other"), " "), "emg1 emg2"; got != want {
				t.Errorf("device other: got %s, want %s", got, want)
			}
			var total float64
			for _, reason := range append(wire.Reasons(), ReasonTooManyDevices, ReasonUnknown) {
				total += rejected(t, m, reason)
			}
			if tt.reason == "" {
				if total != 0 || value(t, m.unrouted) != 1 {
					t.Errorf("rejected %v, unrouted %v; want 0 and 1", total, value(t, m.unrouted))
				}
				return
			}
			if got := rejected(t, m, tt.reason); got != 1 || total != 1 {
				t.Errorf("rejected{%s} = %v (all reasons %v), want 1", tt.reason, got, total)
			}
			hs := h.health["dev"]
			if len(hs) == 0 {
				t.Fatal("no health report for dev")
			}
			// A rejection attributable to the device shows in its health.
			wantRej := uint64(1)
			if tt.reason == wire.ReasonBadTopic || tt.reason == wire.ReasonBadDevice {
				wantRej = 0
			}
			if got := hs[len(hs)-1].Rejected; got != wantRej {
				t.Errorf("health Rejected = %d, want %d", got, wantRej)
			}
		})
	}
}

func TestRouterQueueFull(t *testing.T) {
	h := newRecHandler()
	h.gate = make(chan struct{})
	h.entered = make(chan struct{}, 16)
	m := NewMetrics(nil)
	r := NewRouter(Config{Shards: 1, QueueLen: 2}, h, m, nil)
	mustHandle := func(mm msg) {
		t.Helper()
		if err := r.Handle(mm.topic, mm.payload); err != nil {
			t.Fatal(err)
		}
	}
	mustHandle(em("a", 1, 0))
	<-h.entered // the shard is busy with frame 1 and its queue is empty
	mustHandle(em("a", 2, 1))
	mustHandle(em("a", 3, 2))
	full := em("a", 4, 3)
	if err := r.Handle(full.topic, full.payload); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Handle on a full queue: %v, want ErrQueueFull", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Feed(ctx, full.topic, full.payload); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Feed on a full queue: %v, want DeadlineExceeded", err)
	}
	if got := value(t, m.queueDropped); got != 1 {
		t.Errorf("queue_dropped_total = %v, want 1 (Feed waits, it does not drop)", got)
	}
	close(h.gate)
	last := em("a", 5, 4)
	if err := r.Feed(context.Background(), last.topic, last.payload); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if got, want := strings.Join(h.get("a"), " "), "emg1 emg2 emg3 gap:emg:1:[3-4] emg5"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestRouterMaxDevices(t *testing.T) {
	h := newRecHandler()
	m := NewMetrics(nil)
	// One shard: with several, which new device takes the last slot would
	// depend on how the shards' goroutines are scheduled.
	r := NewRouter(Config{Shards: 1, MaxDevices: 3}, h, m, nil)
	feedAll(t, r, []msg{
		em("a", 1, 0), em("b", 1, 0),
		{topic("junk", wire.StreamEMG), []byte("{")}, // malformed: creates no state
		em("c", 1, 0), em("d", 1, 0), em("a", 2, 1), em("d", 2, 1),
	})
	if got := h.devices(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("devices handled %v, want [a b c]", got)
	}
	if got := rejected(t, m, ReasonTooManyDevices); got != 2 {
		t.Errorf("too_many_devices = %v, want 2", got)
	}
	if got := strings.Join(h.get("a"), " "); got != "emg1 emg2" {
		t.Errorf("device a: %s", got)
	}
}

func TestRouterCloseDrains(t *testing.T) {
	h := newRecHandler()
	m := NewMetrics(nil)
	r := NewRouter(Config{Shards: 2, QueueLen: 8}, h, m, nil)
	const frames = 200
	devs := []string{"d0", "d1", "d2", "d3", "d4"}
	ctx := context.Background()
	for i := 0; i < frames; i++ {
		for _, d := range devs {
			mm := em(d, uint32(i), int64(i))
			if err := r.Feed(ctx, mm.topic, mm.payload); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A frame held for reordering is delivered at Close, not lost.
	for _, mm := range []msg{em("z", 1, 0), em("z", 3, 2)} {
		if err := r.Feed(ctx, mm.topic, mm.payload); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	for _, d := range devs {
		got := h.get(d)
		if len(got) != frames {
			t.Fatalf("device %s: %d frames delivered, want %d", d, len(got), frames)
		}
		for i, tok := range got {
			if tok != fmt.Sprintf("emg%d", i) {
				t.Fatalf("device %s: frame %d is %s", d, i, tok)
			}
		}
	}
	if got, want := strings.Join(h.get("z"), " "), "emg1 gap:emg:1:[1-2] emg3"; got != want {
		t.Errorf("held frame at close: got %s, want %s", got, want)
	}
	if got := value(t, m.framesEMG); got != frames*5+2 {
		t.Errorf("frames_total{emg} = %v", got)
	}
	if got := value(t, m.devices); got != 0 {
		t.Errorf("devices gauge after Close = %v", got)
	}
	mm := em("d0", 1000, 1000)
	if err := r.Handle(mm.topic, mm.payload); !errors.Is(err, ErrClosed) {
		t.Errorf("Handle after Close: %v", err)
	}
	if err := r.Feed(ctx, mm.topic, mm.payload); !errors.Is(err, ErrClosed) {
		t.Errorf("Feed after Close: %v", err)
	}
	r.Close() // idempotent
}

func TestRouterHealthAndStatus(t *testing.T) {
	h := newRecHandler()
	m := NewMetrics(nil)
	r := NewRouter(Config{HealthInterval: time.Second}, h, m, nil)
	var msgs []msg
	for i := 0; i < 30; i++ {
		msgs = append(msgs, em("a", uint32(i), int64(i)))
	}
	msgs = append(msgs, em("a", 0, 0)) // one duplicate
	st := &wire.StatusFrame{T: slotT0(31), BatteryPct: 80, Firmware: "1.4.2",
		LeadOff: []wire.Channel{{Muscle: wire.Calf, Side: wire.Left}}, RSSI: -60}
	msgs = append(msgs, msg{topic("a", wire.StreamStatus), wire.AppendStatusJSON(nil, st)})
	// A later status without battery keeps the known level; no lead-off clears it.
	st2 := &wire.StatusFrame{T: slotT0(32), BatteryPct: -1}
	msgs = append(msgs, msg{topic("a", wire.StreamStatus), wire.AppendStatusJSON(nil, st2)})
	start := time.Now()
	feedAll(t, r, msgs)

	hs := h.health["a"]
	if len(hs) != 5 {
		t.Fatalf("%d health reports, want 5 (frames ending at 0.1 s, 1.1 s, 2.1 s; two status frames)", len(hs))
	}
	for i, wantEnd := range []int64{1, 11, 21} {
		if got := hs[i].Time.UnixMicro(); got != slotT0(wantEnd) {
			t.Errorf("report %d at %d, want slot %d", i, (got-base)/frameUS, wantEnd)
		}
		if hs[i].BatteryPct != -1 {
			t.Errorf("report %d: battery %v before any status, want -1", i, hs[i].BatteryPct)
		}
	}
	s1, s2 := hs[3], hs[4]
	if s1.BatteryPct != 80 || s1.Firmware != "1.4.2" || len(s1.LeadOff) != 1 || s1.LeadOff[0].Muscle != wire.Calf {
		t.Errorf("after status: %+v", s1)
	}
	if s1.FramesIn != 31 || s1.FramesDup != 1 || s1.Time.UnixMicro() != slotT0(31) {
		t.Errorf("after status: in %d dup %d time %v", s1.FramesIn, s1.FramesDup, s1.Time)
	}
	if s1.LastSeen.Before(start) || s1.LagSeconds < 3600 {
		t.Errorf("after status: last seen %v (start %v), lag %v s (the test data is from 2025)", s1.LastSeen, start, s1.LagSeconds)
	}
	if s2.BatteryPct != 80 || len(s2.LeadOff) != 0 || s2.Firmware != "1.4.2" {
		t.Errorf("second status: battery %v lead-off %v firmware %q", s2.BatteryPct, s2.LeadOff, s2.Firmware)
	}
	if len(s1.LeadOff) != 1 {
		t.Errorf("an earlier report's lead-off list changed after the fact: %v", s1.LeadOff)
	}
	if got := len(h.status["a"]); got != 2 {
		t.Errorf("%d status frames handled", got)
	}
	if got := value(t, m.framesStatus); got != 2 {
		t.Errorf("frames_total{status} = %v", got)
	}
	if got := value(t, m.lag); got != 31 {
		t.Errorf("lag observations %v, want one per decoded EMG frame, duplicate included (31)", got)
	}
}

func TestRouterEvictsIdleDevices(t *testing.T) {
	h := newRecHandler()
	m := NewMetrics(nil)
	r := NewRouter(Config{Shards: 1, IdleTimeout: 50 * time.Millisecond}, h, m, nil)
	defer r.Close()
	mm := em("a", 1, 0)
	if err := r.Handle(mm.topic, mm.payload); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for value(t, m.evicted) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle device never evicted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := value(t, m.devices); got != 0 {
		t.Errorf("devices = %v after eviction", got)
	}
	// The device starts afresh: no gap for the frames of its silence.
	mm = em("a", 50, 49)
	if err := r.Handle(mm.topic, mm.payload); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if got := strings.Join(h.get("a"), " "); got != "emg1 emg50" {
		t.Errorf("got %s", got)
	}
}

// TestRouterSteadyStateAllocs checks the per-frame path allocates nothing
// once a device's stream is running: payload copy into a pooled buffer,
// decode into reused frames, sequencing, delivery, metrics.
func TestRouterSteadyStateAllocs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream wire.Stream
		enc    func(seq uint32, slot int64) []byte
	}{
		{"emg binary", wire.StreamEMG, func(seq uint32, slot int64) []byte { return emgBin(t, seq, slot) }},
		{"imu binary", wire.StreamIMU, func(seq uint32, slot int64) []byte { return imuBin(t, seq, slot) }},
		// Both shanks sampled together: even seqs left, odd seqs right,
		// two frames per slot with equal t0 (a repeated seq repeats its frame).
		{"imu binary, two sites sampled together", wire.StreamIMU, func(seq uint32, _ int64) []byte {
			site := shankLeft
			if seq%2 == 1 {
				site = shankRight
			}
			b, err := wire.AppendIMUBinary(nil, imuSiteFrame(seq, int64(seq/2), site))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 600
			payloads := make([][]byte, n)
			for i := range payloads {
				seq := uint32(i)
				if i%10 == 9 {
					seq-- // a duplicate now and then
				}
				payloads[i] = tc.enc(seq, int64(i))
			}
			// Swap neighbours now and then so frames get held and released.
			for i := 20; i+1 < n; i += 17 {
				payloads[i], payloads[i+1] = payloads[i+1], payloads[i]
			}
			r := NewRouter(Config{Shards: 1, IdleTimeout: -1, HealthInterval: time.Second}, nopHandler{}, nil, nil)
			defer r.Close()
			s := r.shards[0] // driven directly: its goroutine gets no messages
			tp := topic("dev-1", tc.stream)
			i := 0
			step := func() {
				device, stream, err := wire.ParseTopic(r.cfg.Prefix, tp)
				if err != nil {
					t.Fatal(err)
				}
				bp := r.bufs.Get().(*[]byte)
				*bp = append((*bp)[:0], payloads[i]...)
				s.process(message{device: device, stream: stream, buf: bp})
				i++
			}
			for range 100 { // warm up: device state, spare frames, buffers
				step()
			}
			if allocs := testing.AllocsPerRun(400, step); allocs != 0 {
				t.Errorf("%v allocations per frame, want 0", allocs)
			}
		})
	}
}

type nopHandler struct{}

func (nopHandler) EMG(string, *wire.EMGFrame)                 {}
func (nopHandler) IMU(string, *wire.IMUFrame)                 {}
func (nopHandler) Status(string, *wire.StatusFrame)           {}
func (nopHandler) Gap(string, wire.Stream, int, int64, int64) {}
func (nopHandler) Health(Health)                              {}

// FuzzRouterHandle throws arbitrary topics and payloads at a router: it must
// never panic, and a well-formed frame after the junk is still delivered.
func FuzzRouterHandle(f *testing.F) {
	f.Add(wire.DefaultPrefix+"/dev/emg", emgJSON(1, 0))
	f.Add(wire.DefaultPrefix+"/dev/imu", imuJSON(1, 0))
	f.Add(wire.DefaultPrefix+"/dev/status", []byte(`{"t":1763942400000000,"battery_pct":50}`))
	f.Add(wire.DefaultPrefix+"/dev/emg", emgBin(f, 1, 0))
	f.Add("x/y", []byte("{"))
	f.Fuzz(func(t *testing.T, tp string, payload []byte) {
		h := newRecHandler()
		r := NewRouter(Config{Shards: 1, MaxPayload: 1 << 16}, h, nil, nil)
		_ = r.Handle(tp, payload)
		good := em("sentinel", 1, 0)
		if err := r.Feed(context.Background(), good.topic, good.payload); err != nil {
			t.Fatal(err)
		}
		r.Close()
		if got := h.get("sentinel"); len(got) != 1 || got[0] != "emg1" {
			t.Fatalf("sentinel frames %v", got)
		}
	})
}

// TestRouterCloseWakesFeed: a Feed waiting for queue space returns
// ErrClosed when the router closes instead of hanging.
func TestRouterCloseWakesFeed(t *testing.T) {
	h := newRecHandler()
	h.gate = make(chan struct{})
	h.entered = make(chan struct{}, 16)
	r := NewRouter(Config{Shards: 1, QueueLen: 1}, h, nil, nil)
	ctx := context.Background()
	for i, mm := range []msg{em("a", 1, 0), em("a", 2, 1)} {
		if err := r.Feed(ctx, mm.topic, mm.payload); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-h.entered // the shard holds frame 1; frame 2 fills the queue
		}
	}
	fed := make(chan error, 1)
	go func() {
		mm := em("a", 3, 2)
		fed <- r.Feed(ctx, mm.topic, mm.payload)
	}()
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	if err := <-fed; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Feed returned %v when the router closed, want ErrClosed", err)
	}
	close(h.gate)
	<-closed
	if got := strings.Join(h.get("a"), " "); got != "emg1 emg2" {
		t.Errorf("got %s, want the two queued frames", got)
	}
}
