package export

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/journal"
	"github.com/crampwatch/crampwatch/store"
	"github.com/crampwatch/crampwatch/wire"
)

// Source is where an export reads from: InfluxDB (NewInfluxSource) or the
// local journal (NewJournalSource).
type Source interface {
	// Name is "influxdb" or "journal", for the manifest.
	Name() string
	// nights yields the device-nights of q in order of night, then device.
	nights(ctx context.Context, q *query) iter.Seq2[*deviceNight, error]
	// hasEnvelope says whether envelope and channels work.
	hasEnvelope() bool
	// envelope yields a device's envelope points in [from, to), by channel
	// and then time.
	envelope(ctx context.Context, device string, from, to time.Time) iter.Seq2[detect.Envelope, error]
	// channels returns the EMG channels with envelope data in [from, to).
	channels(ctx context.Context, device string, from, to time.Time) ([]wire.Channel, error)
}

// query is what a source is asked for.
type query struct {
	from, to time.Time
	devices  []string
	nights   Nights
	// maxGap is the longest time between two health reports of a device
	// that still counts as recording.
	maxGap time.Duration
	// skipped counts source rows that could not be read (malformed), for
	// the manifest.
	skipped int64
}

// deviceNight is one device's data in one night.
type deviceNight struct {
	device   string
	night    string
	from, to time.Time // the part of the night in the export's range
	// events yields the device's events of the night by onset. It is only
	// valid until the next device-night is requested.
	events    iter.Seq2[detect.Event, error]
	recording Opt[time.Duration]
	loop      *loopIndex // nil when the source has no loop records
}

// compareEvents orders one device-night's events: onset, kind, channel.
func compareEvents(a, b *detect.Event) int {
	return cmp.Or(a.Onset.Compare(b.Onset), strings.Compare(string(a.Kind), string(b.Kind)),
		cmp.Compare(a.Channel.Muscle, b.Channel.Muscle), cmp.Compare(a.Channel.Side, b.Channel.Side))
}

// influxSource reads InfluxDB through store's streaming queries, one
// device-night at a time: the server sorts that device's night by onset,
// and this process holds only the night's alert records and one row.
type influxSource struct {
	db *store.Influx
}

// NewInfluxSource reads from InfluxDB through db (only its query methods
// are used; create it with store.New and Close it when done).
func NewInfluxSource(db *store.Influx) Source { return &influxSource{db: db} }

func (s *influxSource) Name() string      { return "influxdb" }
func (s *influxSource) hasEnvelope() bool { return true }

// loopSlack widens the time range of the loop records around a night: an
// alert's ended record comes when the cramp ends, a diary entry may be
// written the next day (or, dated by the wearer, before the cramp).
const loopSlack = 36 * time.Hour

func (s *influxSource) nights(ctx context.Context, q *query) iter.Seq2[*deviceNight, error] {
	return func(yield func(*deviceNight, error) bool) {
		cursor := q.from
		for cursor.Before(q.to) {
			next, ok, err := s.firstData(ctx, cursor, q.to, q.devices)
			if err != nil {
				yield(nil, err)
				return
			}
			if !ok {
				return
			}
			name, start, end := q.nights.Of(next)
			from, to := later(start, q.from), earlier(end, q.to)
			if !s.night(ctx, q, name, from, to, yield) {
				return
			}
			cursor = to
		}
	}
}

// firstData returns the first event or health report at or after from.
func (s *influxSource) firstData(ctx context.Context, from, to time.Time, devices []string) (time.Time, bool, error) {
	ev, okEv, err := s.db.FirstTime(ctx, store.RowQuery{Measurement: store.MeasurementEvents, From: from, To: to, Devices: devices, Fields: []string{"state"}})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("export: %w", err)
	}
	h, okH, err := s.db.FirstTime(ctx, store.RowQuery{Measurement: store.MeasurementHealth, From: from, To: to, Devices: devices, Fields: []string{"frames_in"}})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("export: %w", err)
	}
	switch {
	case okEv && okH:
		return earlier(ev, h), true, nil
	case okEv:
		return ev, true, nil
	case okH:
		return h, true, nil
	}
	return time.Time{}, false, nil
}

// night yields the device-nights of one night: every device with events
// or health reports in [from, to), in device order. Each device is read
// with its own queries: sorting a whole fleet's night in one Flux query
// is slow on InfluxDB 1.8 (a 100-device night of 100 000 events outran
// the client's 20 s request timeout), while one device's night is a few
// thousand rows. It returns false when the consumer stopped or an error
// was yielded.
func (s *influxSource) night(ctx context.Context, q *query, name string, from, to time.Time, yield func(*deviceNight, error) bool) bool {
	devices, err := s.devices(ctx, q, from, to)
	if err != nil {
		yield(nil, err)
		return false
	}
	loop, err := s.loop(ctx, q, from, to)
	if err != nil {
		yield(nil, err)
		return false
	}
	for _, dev := range devices {
		dn := &deviceNight{device: dev, night: name, from: from, to: to, loop: loop}
		// Without health reports (events only) the recording time is
		// unknown, not zero.
		r, ok, err := s.recording(ctx, q, dev, from, to)
		if err != nil {
			yield(nil, err)
			return false
		}
		if ok {
			dn.recording = some(r)
		}
		dn.events = func(yield func(detect.Event, error) bool) {
			for e, err := range s.db.EventStream(ctx, from, to, []string{dev}, nil) {
				if errors.Is(err, store.ErrBadRow) {
					q.skipped++
					continue
				}
				if err != nil {
					yield(detect.Event{}, fmt.Errorf("export: %w", err))
					return
				}
				if !yield(e, nil) {
					return
				}
			}
		}
		if !yield(dn, nil) {
			return false
		}
	}
	return true
}

// devices returns the devices with events or health reports in [from,
// to), sorted.
func (s *influxSource) devices(ctx context.Context, q *query, from, to time.Time) ([]string, error) {
	var all []string
	for _, m := range []struct{ measurement, field string }{
		{store.MeasurementEvents, "state"},
		{store.MeasurementHealth, "frames_in"},
	} {
		devs, err := s.db.TagValues(ctx, store.RowQuery{Measurement: m.measurement, From: from, To: to, Devices: q.devices, Fields: []string{m.field}}, "device")
		if err != nil {
			return nil, fmt.Errorf("export: devices: %w", err)
		}
		all = append(all, devs...)
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

// recording returns how long a device recorded in [from, to): the sum of
// the intervals between consecutive health reports (one every 10 s of
// sample time while data flows) in which frames arrived, leaving out gaps
// longer than q.maxGap. ok is false when there is no health report.
func (s *influxSource) recording(ctx context.Context, q *query, device string, from, to time.Time) (rec time.Duration, ok bool, err error) {
	var (
		prevT  time.Time
		prevIn int64
	)
	for r, err := range s.db.Rows(ctx, store.RowQuery{
		Measurement: store.MeasurementHealth, From: from, To: to, Devices: []string{device}, Fields: []string{"frames_in"},
	}) {
		if err != nil {
			return 0, false, fmt.Errorf("export: recording time: %w", err)
		}
		in, isInt := r.Int("frames_in")
		if !isInt {
			q.skipped++
			continue
		}
		// frames_in is cumulative per service run: a drop is a restart.
		if dt := r.Time.Sub(prevT); ok && dt <= q.maxGap && (in > prevIn || (in < prevIn && in > 0)) {
			rec += dt
		}
		prevT, prevIn, ok = r.Time, in, true
	}
	return rec, ok, nil
}

// loop loads the alert, ack and diary records that can concern cramps
// with an onset in [from, to).
func (s *influxSource) loop(ctx context.Context, q *query, from, to time.Time) (*loopIndex, error) {
	l := newLoopIndex()
	for _, m := range []struct {
		name string
		add  func(store.Row)
	}{
		{store.MeasurementAlerts, l.addAlert},
		{store.MeasurementAcks, l.addAck},
		{store.MeasurementDiary, l.addDiary},
	} {
		for r, err := range s.db.Rows(ctx, store.RowQuery{Measurement: m.name, From: from.Add(-loopSlack), To: to.Add(loopSlack), Devices: q.devices}) {
			if err != nil {
				return nil, fmt.Errorf("export: %s: %w", m.name, err)
			}
			m.add(r)
		}
	}
	return l, nil
}

func (s *influxSource) envelope(ctx context.Context, device string, from, to time.Time) iter.Seq2[detect.Envelope, error] {
	return func(yield func(detect.Envelope, error) bool) {
		for r, err := range s.db.Rows(ctx, store.RowQuery{
			Measurement: store.MeasurementEnvelope, From: from, To: to, Devices: []string{device},
			Fields: []string{"rms_uv", "baseline_uv"}, SortBy: []string{"channel", "_time"},
		}) {
			if err != nil {
				yield(detect.Envelope{}, fmt.Errorf("export: envelope: %w", err))
				return
			}
			ch, err := wire.ParseChannel(r.String("channel"))
			if err != nil {
				continue
			}
			rms, ok := r.Float("rms_uv")
			if !ok {
				continue
			}
			base, _ := r.Float("baseline_uv")
			if !yield(detect.Envelope{Device: device, Channel: ch, Time: r.Time, RMSUV: rms, BaselineUV: base}, nil) {
				return
			}
		}
	}
}

func (s *influxSource) channels(ctx context.Context, device string, from, to time.Time) ([]wire.Channel, error) {
	names, err := s.db.TagValues(ctx, store.RowQuery{
		Measurement: store.MeasurementEnvelope, From: from, To: to, Devices: []string{device}, Fields: []string{"rms_uv"},
	}, "channel")
	if err != nil {
		return nil, fmt.Errorf("export: channels: %w", err)
	}
	var out []wire.Channel
	for _, n := range names {
		if c, err := wire.ParseChannel(n); err == nil {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b wire.Channel) int {
		return cmp.Or(cmp.Compare(a.Muscle, b.Muscle), cmp.Compare(a.Side, b.Side))
	})
	return out, nil
}

// journalSource reads the local event journal (JSON Lines, docs/schema.md).
// The journal is in detection order, not in the order of nights and
// devices, and a cramp appears twice (ongoing, then ended). It is read in
// passes: one to count events per night, then one per batch of nights
// holding at most journalBatch events, so memory is bounded by the batch
// (or by the largest night), not by the file.
type journalSource struct {
	path  string
	batch int
}

// journalBatch is the most events held at once when reading the journal.
const journalBatch = 200_000

// NewJournalSource reads the journal file at path. The journal has no
// alerts, health or envelope: those columns are missing ("n/a") and
// envelope windows are not available.
func NewJournalSource(path string) Source { return &journalSource{path: path, batch: journalBatch} }

func (s *journalSource) Name() string      { return "journal" }
func (s *journalSource) hasEnvelope() bool { return false }

func (s *journalSource) envelope(context.Context, string, time.Time, time.Time) iter.Seq2[detect.Envelope, error] {
	return func(yield func(detect.Envelope, error) bool) {
		yield(detect.Envelope{}, errors.New("export: the journal has no envelope"))
	}
}

func (s *journalSource) channels(context.Context, string, time.Time, time.Time) ([]wire.Channel, error) {
	return nil, errors.New("export: the journal has no envelope")
}

// scan calls fn for every valid event of the journal in range and of the
// wanted devices; malformed lines are counted in q.skipped only when
// count is set (so that each line is counted once, in the first pass).
func (s *journalSource) scan(ctx context.Context, q *query, count bool, fn func(detect.Event)) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("export: journal: %w", err)
	}
	defer f.Close()
	n := 0
	for e, err := range journal.Events(f) {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			var le *journal.LineError
			if errors.As(err, &le) {
				if count {
					q.skipped++
				}
				continue
			}
			return fmt.Errorf("export: journal %s: %w", s.path, err)
		}
		if e.Onset.Before(q.from) || !e.Onset.Before(q.to) {
			continue
		}
		if len(q.devices) > 0 && !slices.Contains(q.devices, e.Device) {
			continue
		}
		fn(e)
	}
	return nil
}

func (s *journalSource) nights(ctx context.Context, q *query) iter.Seq2[*deviceNight, error] {
	return func(yield func(*deviceNight, error) bool) {
		type nightCount struct {
			start time.Time
			n     int
		}
		counts := map[string]*nightCount{}
		err := s.scan(ctx, q, true, func(e detect.Event) {
			name, start, _ := q.nights.Of(e.Onset)
			c := counts[name]
			if c == nil {
				c = &nightCount{start: start}
				counts[name] = c
			}
			c.n++
		})
		if err != nil {
			yield(nil, err)
			return
		}
		names := make([]string, 0, len(counts))
		for n := range counts {
			names = append(names, n)
		}
		slices.SortFunc(names, func(a, b string) int { return counts[a].start.Compare(counts[b].start) })
		for len(names) > 0 {
			// The next batch: whole nights, at most s.batch events (at
			// least one night however large).
			k, total := 0, 0
			for k < len(names) && (k == 0 || total+counts[names[k]].n <= s.batch) {
				total += counts[names[k]].n
				k++
			}
			batch := names[:k]
			names = names[k:]
			if !s.yieldBatch(ctx, q, batch, yield) {
				return
			}
		}
	}
}

// yieldBatch reads the events of some nights and yields their
// device-nights. The last report of an event (by id) wins, so a cramp's
// ended report replaces its ongoing one.
func (s *journalSource) yieldBatch(ctx context.Context, q *query, batch []string, yield func(*deviceNight, error) bool) bool {
	want := make(map[string]bool, len(batch))
	for _, n := range batch {
		want[n] = true
	}
	byID := map[string]int{}
	var events []detect.Event
	err := s.scan(ctx, q, false, func(e detect.Event) {
		name, _, _ := q.nights.Of(e.Onset)
		if !want[name] {
			return
		}
		id := e.ID()
		if i, ok := byID[id]; ok {
			events[i] = e
			return
		}
		byID[id] = len(events)
		events = append(events, e)
	})
	if err != nil {
		yield(nil, err)
		return false
	}
	clear(byID)
	type keyed struct {
		night string
		start time.Time
		e     detect.Event
	}
	rows := make([]keyed, len(events))
	for i := range events {
		name, start, _ := q.nights.Of(events[i].Onset)
		rows[i] = keyed{night: name, start: start, e: events[i]}
	}
	events = nil
	slices.SortFunc(rows, func(a, b keyed) int {
		return cmp.Or(a.start.Compare(b.start), strings.Compare(a.e.Device, b.e.Device), compareEvents(&a.e, &b.e))
	})
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].night == rows[i].night && rows[j].e.Device == rows[i].e.Device {
			j++
		}
		group := rows[i:j]
		_, start, end := q.nights.Of(group[0].e.Onset)
		dn := &deviceNight{
			device: group[0].e.Device, night: group[0].night,
			from: later(start, q.from), to: earlier(end, q.to),
			events: func(yield func(detect.Event, error) bool) {
				for k := range group {
					if !yield(group[k].e, nil) {
						return
					}
				}
			},
		}
		if !yield(dn, nil) {
			return false
		}
		i = j
	}
	return true
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
