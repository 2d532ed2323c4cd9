package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// counter is a Handler that counts what each device gets and checks that
// its EMG frames arrive in order without gaps.
type counter struct {
	mu     sync.Mutex
	emg    map[string]int
	imu    map[string]int
	gaps   map[string][]string
	lastSq map[string]uint32
	order  map[string]int // EMG frames that did not follow the previous one
}

func newCounter() *counter {
	return &counter{emg: map[string]int{}, imu: map[string]int{}, gaps: map[string][]string{},
		lastSq: map[string]uint32{}, order: map[string]int{}}
}

func (c *counter) EMG(device string, f *wire.EMGFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if last, ok := c.lastSq[device]; ok && f.Seq != last+1 {
		c.order[device]++
	}
	c.lastSq[device] = f.Seq
	c.emg[device]++
}
func (c *counter) IMU(device string, _ *wire.IMUFrame) {
	c.mu.Lock()
	c.imu[device]++
	c.mu.Unlock()
}
func (c *counter) Status(string, *wire.StatusFrame) {}
func (c *counter) Gap(device string, s wire.Stream, lost int, from, to int64) {
	c.mu.Lock()
	c.gaps[device] = append(c.gaps[device], fmt.Sprintf("%s:%d:%.1fs", s, lost, float64(to-from)/1e6))
	c.mu.Unlock()
}
func (c *counter) Health(Health) {}

// binEMG is a binary 100 ms EMG frame with the given seq and t0.
func binEMG(t testing.TB, seq uint32, t0 int64) []byte {
	t.Helper()
	f := emgFrame(seq, 0)
	f.T0 = t0
	b, err := wire.AppendEMGBinary(nil, f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func binIMU(t testing.TB, seq uint32, t0 int64) []byte {
	t.Helper()
	f := imuFrame(seq, 0)
	f.T0 = t0
	b, err := wire.AppendIMUBinary(nil, f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRouterFloodingDeviceIsRateLimited has one device send 100 times its
// rate (2000 messages a second instead of 20) while another sends at its
// rate, on the same shard, for two seconds of wall time, both with sample
// times at the wall clock as live devices have. The well-behaved device's
// frames all arrive, in order, none dropped or rejected; the flood is cut
// to the configured rate and counted.
func TestRouterFloodingDeviceIsRateLimited(t *testing.T) {
	h := newCounter()
	m := NewMetrics(nil)
	r := NewRouter(Config{Shards: 1, QueueLen: 64, QueueWait: 2 * time.Second}, h, m, nil)
	const (
		seconds   = 2
		goodRate  = 10  // EMG frames a second, and as many IMU frames
		floodRate = 100 // times the good device's rate
	)
	start := time.Now()
	t0 := start.UnixMicro()
	var goodSeq, floodSeq uint32
	var flood int
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; time.Since(start) < seconds*time.Second; i++ {
		<-tick.C
		// Every 100 ms the good device sends one EMG and one IMU frame.
		if i%10 == 0 {
			goodSeq++
			st := t0 + int64(goodSeq-1)*frameUS
			for _, mm := range []msg{{topic("good", wire.StreamEMG), binEMG(t, goodSeq, st)}, {topic("good", wire.StreamIMU), binIMU(t, goodSeq, st)}} {
				if err := r.Handle(mm.topic, mm.payload); err != nil {
					t.Fatalf("good device: %v", err)
				}
			}
		}
		// The flooder sends 2 * goodRate * floodRate messages a second,
		// 20 per 10 ms tick, its sample time racing ahead of the clock.
		for range 2 * goodRate * floodRate / 100 {
			floodSeq++
			if err := r.Handle(topic("flood", wire.StreamEMG), binEMG(t, floodSeq, t0+int64(floodSeq)*frameUS)); err != nil {
				t.Fatalf("flood: %v", err)
			}
			flood++
		}
	}
	elapsed := time.Since(start).Seconds()
	r.Close()

	if got, want := h.emg["good"], int(goodSeq); got != want || h.imu["good"] != want {
		t.Errorf("good device: %d EMG and %d IMU frames arrived, want %d of each", got, h.imu["good"], want)
	}
	if h.order["good"] != 0 || len(h.gaps["good"]) != 0 {
		t.Errorf("good device: %d frames out of order, gaps %v", h.order["good"], h.gaps["good"])
	}
	if got := value(t, m.queueDropped); got != 0 {
		t.Errorf("queue_dropped_total = %v, want 0", got)
	}
	limited := rejected(t, m, ReasonRateLimited)
	accepted := h.emg["flood"]
	// The flooder gets its burst plus the rate for the time it flooded.
	maxAccepted := DefaultDeviceBurstS*DefaultDeviceRate + DefaultDeviceRate*elapsed + 10
	if float64(accepted) > maxAccepted || accepted < DefaultDeviceRate {
		t.Errorf("flooder: %d frames accepted in %.1f s, want between %d and %.0f", accepted, elapsed, DefaultDeviceRate, maxAccepted)
	}
	if int(limited)+accepted != flood {
		t.Errorf("flooder: %v rate limited + %d accepted != %d sent", limited, accepted, flood)
	}
	t.Logf("good: %d+%d frames; flood: %d sent, %d accepted, %v rate limited in %.2f s", h.emg["good"], h.imu["good"], flood, accepted, limited, elapsed)
}

// TestRouterBacklogIsNotRateLimited delivers an hour-old backlog as fast as
// possible, as a broker does after an outage: nothing may be rate limited
// or dropped. The same old frame repeated, though, is a flood.
func TestRouterBacklogIsNotRateLimited(t *testing.T) {
	h := newCounter()
	m := NewMetrics(nil)
	r := NewRouter(Config{Shards: 1, QueueLen: 16, QueueWait: 5 * time.Second}, h, m, nil)
	old := time.Now().Add(-time.Hour).UnixMicro()
	const n = 3000 // 5 minutes of frames, 15 times the burst
	for i := range uint32(n) {
		if err := r.Handle(topic("late", wire.StreamEMG), binEMG(t, i+1, old+int64(i)*frameUS)); err != nil {
			t.Fatal(err)
		}
	}
	// A backlog with the usual faults: a frame lost every 97 (the frames
	// after it are held until it is given up) and one repeated every 89.
	lossy, lost := 0, 0
	for i := range uint32(n) {
		if i%97 == 50 {
			lost++
			continue
		}
		p := binEMG(t, i+1, old+int64(i)*frameUS)
		reps := 1
		if i%89 == 30 {
			reps = 2
		}
		for range reps {
			if err := r.Handle(topic("lossy", wire.StreamEMG), p); err != nil {
				t.Fatal(err)
			}
		}
		lossy++
	}
	replay := binEMG(t, 7, old)
	for range n {
		if err := r.Handle(topic("loop", wire.StreamEMG), replay); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	if h.emg["late"] != n || len(h.gaps["late"]) != 0 {
		t.Errorf("backlog: %d of %d frames delivered, gaps %v", h.emg["late"], n, h.gaps["late"])
	}
	if h.emg["lossy"] != lossy || len(h.gaps["lossy"]) != lost {
		t.Errorf("lossy backlog: %d of %d frames delivered, %d gaps for %d lost frames", h.emg["lossy"], lossy, len(h.gaps["lossy"]), lost)
	}
	if got := value(t, m.queueDropped); got != 0 {
		t.Errorf("queue_dropped_total = %v, want 0", got)
	}
	// The looping device's first frame is delivered, the rest are
	// duplicates; all but the burst and a little refill are rate limited.
	if got := rejected(t, m, ReasonRateLimited); got < n-(DefaultDeviceBurstS+2)*DefaultDeviceRate {
		t.Errorf("rate_limited = %v, want most of the %d repeated frames", got, n)
	}
}

// TestRouterQueueWait: with QueueWait set, Handle waits for room in a full
// queue rather than dropping, and drops (counted) only when the wait runs
// out.
func TestRouterQueueWait(t *testing.T) {
	h := newRecHandler()
	h.gate = make(chan struct{})
	h.entered = make(chan struct{}, 16)
	m := NewMetrics(nil)
	r := NewRouter(Config{Shards: 1, QueueLen: 1, QueueWait: 150 * time.Millisecond}, h, m, nil)
	mustHandle := func(mm msg) {
		t.Helper()
		if err := r.Handle(mm.topic, mm.payload); err != nil {
			t.Fatal(err)
		}
	}
	mustHandle(em("a", 1, 0))
	<-h.entered // the shard is stuck in frame 1
	mustHandle(em("a", 2, 1))
	// The queue is full: this one waits past QueueWait and is dropped.
	began := time.Now()
	if err := r.Handle(em("a", 3, 2).topic, em("a", 3, 2).payload); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Handle after QueueWait: %v, want ErrQueueFull", err)
	}
	if waited := time.Since(began); waited < 150*time.Millisecond {
		t.Errorf("Handle gave up after %v, before QueueWait", waited)
	}
	// This one waits until the shard moves on, and is kept.
	go func() { time.Sleep(50 * time.Millisecond); h.gate <- struct{}{} }()
	mustHandle(em("a", 4, 3))
	close(h.gate)
	r.Close()
	if got, want := strings.Join(h.get("a"), " "), "emg1 emg2 gap:emg:1:[2-3] emg4"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if w, d := value(t, m.queueWaits), value(t, m.queueDropped); w != 2 || d != 1 {
		t.Errorf("queue_waits_total %v, queue_dropped_total %v; want 2 and 1", w, d)
	}
}

// TestRouterClockJumps: a device clock that steps forward (sequence numbers
// continue, samples jump an hour ahead) is reported as a discontinuity; one
// that steps back is rejected frame by frame (bad_time) until the router
// gives in and restarts the stream. The other device never notices.
func TestRouterClockJumps(t *testing.T) {
	h := newCounter()
	m := NewMetrics(nil)
	r := NewRouter(Config{Shards: 1}, h, m, nil)
	t0 := time.Now().Add(-time.Minute).UnixMicro()
	hour := time.Hour.Microseconds()
	resync := 2*DefaultReorderWindow + 16
	var seq uint32
	var sample int64 // the device's clock, frame by frame
	send := func(dev string, seq uint32, at int64) {
		t.Helper()
		if err := r.Feed(context.Background(), topic(dev, wire.StreamEMG), binEMG(t, seq, at)); err != nil {
			t.Fatal(err)
		}
	}
	step := func(n int) {
		for range n {
			seq++
			send("jumpy", seq, t0+sample)
			send("steady", seq, t0+int64(seq)*frameUS)
			sample += frameUS
		}
	}
	step(10)
	sample += hour // clock forward
	step(10)
	sample -= 2 * hour // clock back, for good
	step(resync + 10)
	r.Close()

	if got := value(t, m.clockJumps); got != 1 {
		t.Errorf("clock_jumps_total = %v, want 1", got)
	}
	if got := rejected(t, m, wire.ReasonBadTime); got != float64(resync-1) {
		t.Errorf("bad_time = %v, want %d", got, resync-1)
	}
	if got := value(t, m.resets); got != 1 {
		t.Errorf("stream_resets_total = %v, want 1", got)
	}
	if got, want := h.emg["jumpy"], int(seq)-(resync-1); got != want {
		t.Errorf("jumpy device: %d frames delivered, want %d", got, want)
	}
	wantGaps := []string{"emg:0:3600.0s", fmt.Sprintf("emg:%d:0.0s", resync-1)}
	if got := h.gaps["jumpy"]; strings.Join(got, " ") != strings.Join(wantGaps, " ") {
		t.Errorf("jumpy device gaps %v, want %v", got, wantGaps)
	}
	if h.emg["steady"] != int(seq) || len(h.gaps["steady"]) != 0 || h.order["steady"] != 0 {
		t.Errorf("steady device: %d of %d frames, gaps %v", h.emg["steady"], seq, h.gaps["steady"])
	}
}

// TestRouterStreamMismatch: a payload published on the wrong stream's
// topic (an EMG frame on .../imu and the reverse, JSON or binary) is
// rejected with a reason and counted, and the device's streams go on.
func TestRouterStreamMismatch(t *testing.T) {
	tests := []struct {
		name    string
		topic   string
		payload []byte
		reason  wire.Reason
	}{
		{"EMG JSON on the IMU topic", topic("dev", wire.StreamIMU), emgJSON(5, 5), wire.ReasonMissingField},
		{"IMU JSON on the EMG topic", topic("dev", wire.StreamEMG), imuJSON(5, 5), wire.ReasonMissingField},
		{"binary EMG on the IMU topic", topic("dev", wire.StreamIMU), emgBin(t, 5, 5), wire.ReasonBadBinary},
		{"binary IMU on the EMG topic", topic("dev", wire.StreamEMG), imuBin(t, 5, 5), wire.ReasonBadBinary},
		{"EMG on the status topic", topic("dev", wire.StreamStatus), emgJSON(5, 5), wire.ReasonMissingField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRecHandler()
			m := NewMetrics(nil)
			r := NewRouter(Config{Shards: 1}, h, m, nil)
			feedAll(t, r, []msg{em("dev", 1, 0), im("dev", 1, 0), {tt.topic, tt.payload}, em("dev", 2, 1), im("dev", 2, 1)})
			if got := rejected(t, m, tt.reason); got != 1 {
				t.Errorf("rejected{%s} = %v, want 1", tt.reason, got)
			}
			if got, want := strings.Join(h.get("dev"), " "), "emg1 imu1 emg2 imu2"; got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}
