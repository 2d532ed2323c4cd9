package export

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/alerts"
	"github.com/crampwatch/crampwatch/detect"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/pipeline"
	"github.com/crampwatch/crampwatch/store"
	"github.com/crampwatch/crampwatch/wire"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// collector is a pipeline sink that keeps every event's final report and
// every envelope point, to compare the export with.
type collector struct {
	mu       sync.Mutex
	events   map[string]detect.Event
	envelope []detect.Envelope
}

func (c *collector) Event(e detect.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events[e.ID()] = e
}

func (c *collector) Envelope(e detect.Envelope) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.envelope = append(c.envelope, e)
}
func (c *collector) Motion(detect.Motion)        {}
func (c *collector) Health(ingest.Health)        {}
func (c *collector) Close(context.Context) error { return nil }

// simNight is a simulated night of two wearers, stored in a fresh InfluxDB
// database by the production path, with the wearer's loop recorded.
type simNight struct {
	db       testenv.Influx
	influx   *store.Influx // a store on that database, for queries
	from, to time.Time
	events   []detect.Event // final reports, by device then onset
	envelope []detect.Envelope
	// loop is what the test recorded for each cramp, by event id.
	loop map[string]simLoop
}

// simLoop is the wearer's loop the test recorded for one cramp.
type simLoop struct {
	alerted  bool
	alertAt  time.Time
	acked    bool
	pain     int
	remedies string
	note     string
}

var (
	simOnce sync.Once
	simVal  *simNight
	simErr  error
)

// simDevices are the two simulated wearers.
var simDevices = []string{"night-sim-01", "night-sim-02"}

// simulated returns the night, simulating it on first use: every test of
// the package reads the same data.
func simulated(t *testing.T) *simNight {
	t.Helper()
	simOnce.Do(func() { simVal, simErr = simulate(t) })
	if simErr != nil {
		t.Fatalf("simulated night: %v", simErr)
	}
	return simVal
}

// simulate runs a simulated night through the production path (firmware
// simulator -> ingest router -> pipeline with the real detector -> the
// InfluxDB sink), as dashboards/query_test.go does, then records the
// wearer's loop through store.AlertRecorder as the alert engine would: for
// even cramps an alert, an acknowledgement and a diary entry with a note;
// for odd ones a suppressed alert and a diary entry without one.
func simulate(t *testing.T) (*simNight, error) {
	sc := firmwaresim.DefaultScenario()
	sc.Hours = 1
	sc.Encoding = "binary"
	sc.Cramps.PerNight = 4
	sc.Cramps.DurationS = firmwaresim.Range{10, 120}
	sc.PLM.WearerFraction = 1
	sc.PLM.SeriesPerNight = 2
	start := time.Date(2025, 1, 14, 23, 0, 0, 0, time.UTC)

	var devs []*firmwaresim.Device
	seed := int64(1)
	for _, id := range simDevices {
		for ; seed < 300; seed++ {
			d := firmwaresim.NewDevice(id, sc, seed, start)
			if err := d.Err(); err != nil {
				return nil, err
			}
			n := map[string]int{}
			for _, tr := range d.Truth() {
				n[tr.Kind]++
			}
			if n["cramp"] >= 2 && n["plm"] >= 4 {
				devs = append(devs, d)
				seed++
				break
			}
		}
	}
	if len(devs) != len(simDevices) {
		return nil, fmt.Errorf("no seeds give nights with cramps and PLMs")
	}

	db := testenv.InfluxDB(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := store.DefaultConfig()
	cfg.URL, cfg.Token, cfg.Org, cfg.Bucket, cfg.Logger = db.URL, db.Token, db.Org, db.Bucket, log
	// The night runs far faster than real time: the queue must hold all of
	// its envelope, or points the test expects are dropped (by design) when
	// InfluxDB falls behind.
	cfg.QueueSize = 4 << 20
	reg := prometheus.NewRegistry()
	sink, err := store.New(cfg, reg)
	if err != nil {
		return nil, err
	}
	got := &collector{events: map[string]detect.Event{}}
	pipe := pipeline.New(detect.DefaultConfig(), pipeline.NewMetrics(reg), log, sink, got)
	router := ingest.NewRouter(ingest.Config{}, pipe, ingest.NewMetrics(reg), log)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	buf := make([]byte, 0, 64<<10)
	for _, dev := range devs {
		for {
			m, ok := dev.Next(buf)
			if !ok {
				break
			}
			if err := router.Feed(ctx, wire.Topic(wire.DefaultPrefix, dev.ID(), m.Stream), m.Payload); err != nil {
				return nil, fmt.Errorf("feed: %w", err)
			}
			buf = m.Payload[:0]
		}
		if err := dev.Err(); err != nil {
			return nil, err
		}
	}
	router.Close()
	pipe.EndStreams()

	sn := &simNight{db: db, loop: map[string]simLoop{}}
	for _, e := range got.events {
		sn.events = append(sn.events, e)
	}
	slices.SortFunc(sn.events, func(a, b detect.Event) int {
		if a.Device != b.Device {
			return compareStrings(a.Device, b.Device)
		}
		return compareEvents(&a, &b)
	})
	sn.envelope = got.envelope

	rec := store.NewAlertRecorder(sink)
	i := 0
	for _, e := range sn.events {
		if e.Kind != detect.KindCramp {
			continue
		}
		alertID := "al-" + e.ID()
		l := simLoop{pain: 3 + i%5, remedies: "stretch"}
		records := []alerts.AlertRecord{}
		if i%2 == 0 {
			l.alerted, l.alertAt, l.acked, l.note = true, e.ConfirmedAt, true, fmt.Sprintf("woke at 3, cramp %d", i)
			l.remedies = "stretch,heat"
			records = append(records,
				alerts.AlertRecord{Device: e.Device, Type: alerts.TypeAlert, Outcome: alerts.OutcomeSent, AlertID: alertID, EventID: e.ID(),
					Channel: e.Channel, Onset: e.Onset, Time: e.ConfirmedAt, LatencyS: e.ConfirmedAt.Sub(e.Onset).Seconds()})
		} else {
			records = append(records,
				alerts.AlertRecord{Device: e.Device, Type: alerts.TypeAlert, Outcome: alerts.OutcomeSuppressed, Reason: alerts.SuppressHourlyCap,
					AlertID: alertID, EventID: e.ID(), Channel: e.Channel, Onset: e.Onset, Time: e.ConfirmedAt, LatencyS: e.ConfirmedAt.Sub(e.Onset).Seconds()})
		}
		records = append(records, alerts.AlertRecord{Device: e.Device, Type: alerts.TypeEnded, Outcome: alerts.OutcomeSent, AlertID: alertID,
			EventID: e.ID(), Channel: e.Channel, Onset: e.Onset, Time: e.End, LatencyS: e.End.Sub(e.Onset).Seconds(), DurationS: e.DurationS, Acked: l.acked})
		for _, r := range records {
			if err := rec.RecordAlert(ctx, r); err != nil {
				return nil, err
			}
		}
		if l.acked {
			ack := e.ConfirmedAt.Add(8 * time.Second)
			if err := rec.RecordAck(ctx, alerts.AckRecord{Device: e.Device, AlertID: alertID, EventID: e.ID(), Action: "ok", Channel: e.Channel,
				Onset: e.Onset, Time: ack, LatencyS: ack.Sub(e.Onset).Seconds(), SinceAlertS: 8}); err != nil {
				return nil, err
			}
		}
		pain := l.pain
		helped := []alerts.Remedy{alerts.RemedyStretch}
		if l.remedies == "stretch,heat" {
			helped = append(helped, alerts.RemedyHeat)
		}
		entry := e.End.Add(2 * time.Minute)
		if err := rec.RecordDiary(ctx, alerts.DiaryRecord{Device: e.Device, Time: entry, Night: "2025-01-14",
			Entry:  alerts.DiaryEntry{Pain: &pain, Helped: helped, Note: l.note},
			Linked: true, AlertID: alertID, EventID: e.ID(), Channel: e.Channel, Onset: e.Onset, OffsetS: entry.Sub(e.Onset).Seconds()}); err != nil {
			return nil, err
		}
		sn.loop[e.ID()] = l
		i++
	}
	if err := pipe.Close(ctx); err != nil {
		return nil, fmt.Errorf("close pipeline (flush to InfluxDB): %w", err)
	}
	// The test compares the export with what the pipeline produced: every
	// point must have reached the database.
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	for _, mf := range mfs {
		if mf.GetName() != "crampwatch_sink_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetCounter().GetValue(); v > 0 {
				return nil, fmt.Errorf("the store dropped %v points (%v): the database does not hold the whole night", v, m.GetLabel())
			}
		}
	}
	qcfg := cfg
	if sn.influx, err = store.New(qcfg, nil); err != nil {
		return nil, err
	}
	end := start.Add(time.Duration(sc.Hours * float64(time.Hour)))
	sn.from, sn.to = start.Add(-30*time.Minute), end.Add(30*time.Minute)
	return sn, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
