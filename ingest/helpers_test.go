package ingest

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/crampwatch/crampwatch/wire"
)

// base is the sample time of slot 0 in the tests: 2025-11-24 00:00:00 UTC.
const base int64 = 1_763_942_400_000_000

// slotT0 is the t0 of a 100 ms frame in a given slot.
func slotT0(slot int64) int64 { return base + slot*frameUS }

// emgFrame is a 100 ms, two-channel, 1 kHz EMG frame starting at slot.
func emgFrame(seq uint32, slot int64) *wire.EMGFrame {
	f := &wire.EMGFrame{
		Seq: seq, T0: slotT0(slot), Rate: 1000, Unit: wire.Microvolt,
		Channels: []wire.Channel{{Muscle: wire.Calf, Side: wire.Left}, {Muscle: wire.Calf, Side: wire.Right}},
		Data:     [][]float64{make([]float64, 100), make([]float64, 100)},
	}
	for i := range f.Data[0] {
		f.Data[0][i] = 5 * math.Sin(float64(i)/3)
		f.Data[1][i] = 3 * math.Cos(float64(i)/7)
	}
	return f
}

// The IMU sites of the tests: two shanks sampled together share the imu
// topic and its sequence numbers.
var (
	shankLeft  = wire.Site{Segment: wire.Shank, Side: wire.Left}
	shankRight = wire.Site{Segment: wire.Shank, Side: wire.Right}
)

// imuFrame is a 100 ms, 50 Hz IMU frame on the left shank.
func imuFrame(seq uint32, slot int64) *wire.IMUFrame { return imuSiteFrame(seq, slot, shankLeft) }

// imuSiteFrame is a 100 ms, 50 Hz IMU frame from the given site.
func imuSiteFrame(seq uint32, slot int64, site wire.Site) *wire.IMUFrame {
	f := &wire.IMUFrame{Seq: seq, T0: slotT0(slot), Rate: 50, Site: site}
	for i := 0; i < 5; i++ {
		f.Acc = append(f.Acc, [3]float64{0, 0, 1})
		f.Gyr = append(f.Gyr, [3]float64{0.1, 0, 0})
	}
	return f
}

func emgJSON(seq uint32, slot int64) []byte { return wire.AppendEMGJSON(nil, emgFrame(seq, slot)) }
func imuJSON(seq uint32, slot int64) []byte { return wire.AppendIMUJSON(nil, imuFrame(seq, slot)) }

func emgBin(t testing.TB, seq uint32, slot int64) []byte {
	t.Helper()
	b, err := wire.AppendEMGBinary(nil, emgFrame(seq, slot))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func imuBin(t testing.TB, seq uint32, slot int64) []byte {
	t.Helper()
	b, err := wire.AppendIMUBinary(nil, imuFrame(seq, slot))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func topic(device string, s wire.Stream) string { return wire.Topic(wire.DefaultPrefix, device, s) }

// recHandler records what a Router delivers, per device, as short tokens:
// "emg5" (EMG frame seq 5), "imu5" (left shank), "imu6/shank_right",
// "status", "gap:emg:2:[3-5]" (2 lost between slots 3 and 5).
type recHandler struct {
	mu     sync.Mutex
	log    map[string][]string
	health map[string][]Health
	status map[string][]wire.StatusFrame
	// gate, when set, makes EMG calls wait for a receive, so a test can
	// hold a shard busy.
	gate    chan struct{}
	entered chan struct{} // receives before each wait on gate
}

func newRecHandler() *recHandler {
	return &recHandler{log: map[string][]string{}, health: map[string][]Health{}, status: map[string][]wire.StatusFrame{}}
}

func (h *recHandler) add(device, tok string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log[device] = append(h.log[device], tok)
}

func (h *recHandler) EMG(device string, f *wire.EMGFrame) {
	if h.gate != nil {
		h.entered <- struct{}{}
		<-h.gate
	}
	if len(f.Data) != 2 || len(f.Data[0]) != 100 || (f.T0-base)%frameUS != 0 {
		h.add(device, fmt.Sprintf("badframe%d", f.Seq))
		return
	}
	h.add(device, fmt.Sprintf("emg%d", f.Seq))
}

// IMU records "imu5" for a left-shank frame and "imu5/shank_right" for
// other sites.
func (h *recHandler) IMU(device string, f *wire.IMUFrame) {
	if f.Site != shankLeft {
		h.add(device, fmt.Sprintf("imu%d/%s", f.Seq, f.Site))
		return
	}
	h.add(device, fmt.Sprintf("imu%d", f.Seq))
}

func (h *recHandler) Status(device string, s *wire.StatusFrame) {
	h.add(device, "status")
	h.mu.Lock()
	defer h.mu.Unlock()
	c := *s
	c.LeadOff = append([]wire.Channel(nil), s.LeadOff...)
	h.status[device] = append(h.status[device], c)
}

func (h *recHandler) Gap(device string, s wire.Stream, lost int, from, to int64) {
	h.add(device, fmt.Sprintf("gap:%s:%d:[%d-%d]", s, lost, (from-base)/frameUS, (to-base)/frameUS))
}

func (h *recHandler) Health(hl Health) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.health[hl.Device] = append(h.health[hl.Device], hl)
}

func (h *recHandler) devices() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ds []string
	for d := range h.log {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	return ds
}

func (h *recHandler) get(device string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.log[device]...)
}

// value reads a counter or gauge.
func value(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	var sum float64
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		switch {
		case pb.Counter != nil:
			sum += pb.Counter.GetValue()
		case pb.Gauge != nil:
			sum += pb.Gauge.GetValue()
		case pb.Histogram != nil:
			sum += float64(pb.Histogram.GetSampleCount())
		}
	}
	return sum
}

func rejected(t testing.TB, m *Metrics, r wire.Reason) float64 {
	t.Helper()
	return value(t, m.rejected.WithLabelValues(string(r)))
}
