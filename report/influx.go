package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api/query"

	"github.com/crampwatch/crampwatch/store"
	"github.com/crampwatch/crampwatch/wire"
)

// InfluxSource reads a night from InfluxDB: events through
// store.QueryEvents, and the envelope, alert records and device health with
// Flux queries of their own (docs/schema.md, docs/alerts.md). It works with
// InfluxDB 2.x and with 1.8 when Flux is enabled.
type InfluxSource struct {
	bucket, org string
	events      *store.Influx
	client      influxdb2.Client
}

// NewInfluxSource connects lazily to the InfluxDB of cfg (URL, Token, Org,
// Bucket as for the service); nothing is written. Close releases it.
func NewInfluxSource(cfg store.Config) (*InfluxSource, error) {
	ev, err := store.New(cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return &InfluxSource{
		bucket: cfg.Bucket,
		org:    cfg.Org,
		events: ev,
		client: influxdb2.NewClientWithOptions(cfg.URL, cfg.Token,
			influxdb2.DefaultOptions().SetHTTPRequestTimeout(120)),
	}, nil
}

// Close releases the connections.
func (s *InfluxSource) Close(ctx context.Context) error {
	s.client.Close()
	return s.events.Close(ctx)
}

// Name describes the source for the page.
func (s *InfluxSource) Name() string { return "InfluxDB" }

// Load queries the device's events, envelope, alert records and, when the
// envelope is off, device health in q's window. If some rows cannot be
// read, it returns the rest with an error and a note on the page.
func (s *InfluxSource) Load(ctx context.Context, q Query) (*Data, error) {
	if !wire.ValidDevice(q.Device) {
		return nil, fmt.Errorf("report: invalid device id %q", q.Device)
	}
	if !q.From.Before(q.To) {
		return nil, fmt.Errorf("report: empty time range %v .. %v", q.From, q.To)
	}
	w := q.window()
	if w < time.Second || w%time.Second != 0 {
		return nil, fmt.Errorf("report: envelope window %v: want whole seconds", w)
	}
	d := &Data{Device: q.Device, From: q.From, To: q.To, Window: w, AlertsKnown: true}
	var partial []error

	events, err := s.events.QueryEvents(ctx, q.From, q.To, []string{q.Device}, nil)
	if err != nil {
		if events == nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		partial = append(partial, err)
		d.Notes = append(d.Notes, "Some event rows could not be read: "+firstLine(err.Error()))
	}
	d.Events = events

	if d.Envelope, err = s.envelope(ctx, q.Device, q.From, q.To, w); err != nil {
		return nil, err
	}
	if d.Alerts, err = s.alerts(ctx, q.Device, q.From, q.To.Add(alertSlack)); err != nil {
		return nil, err
	}
	health, err := s.healthSpans(ctx, q.Device, q.From, q.To)
	if err != nil {
		return nil, err
	}
	switch {
	case len(health) > 0:
		d.Recording, d.RecordingBasis = health, BasisHealth
	case len(d.Envelope) > 0:
		var starts []time.Time
		for _, ser := range d.Envelope {
			for _, p := range ser.Points {
				starts = append(starts, p.Time)
			}
		}
		slices.SortFunc(starts, time.Time.Compare)
		d.Recording = clip(spansFromWindows(starts, w), q.From, q.To)
		d.RecordingBasis = BasisEnvelope
	default:
		d.RecordingBasis = BasisUnknown
		d.Notes = append(d.Notes, "Recording time unknown: no device health reports or envelope in InfluxDB for this night.")
	}
	if len(d.Envelope) == 0 {
		d.Notes = append(d.Notes, "No envelope in InfluxDB for this night (the service may run with --influx-envelope=false).")
	}
	return d, errors.Join(partial...)
}

// alertSlack extends the alert query past the night: a cramp that begins
// just before the night ends is alerted, escalated and ended after.
const alertSlack = time.Hour

// envelope returns the mean RMS envelope and baseline of every channel of
// the device over windows of width w, one series per channel.
func (s *InfluxSource) envelope(ctx context.Context, device string, from, to time.Time, w time.Duration) ([]Series, error) {
	q := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %s and r.device == %s and (r._field == "rms_uv" or r._field == "baseline_uv"))
  |> aggregateWindow(every: %ds, fn: mean, timeSrc: "_start", createEmpty: false)
`, fluxString(s.bucket), fluxTime(from), fluxTime(to), fluxString(store.MeasurementEnvelope), fluxString(device), int64(w/time.Second))
	type key struct {
		ch wire.Channel
		t  int64
	}
	points := map[key]*Point{}
	err := s.each(ctx, "envelope", q, func(r *query.FluxRecord) error {
		label, _ := r.ValueByKey("channel").(string)
		ch, err := wire.ParseChannel(label)
		if err != nil {
			return err
		}
		v, ok := r.Value().(float64)
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		t := r.Time()
		if t.Before(from) || !t.Before(to) {
			return nil
		}
		k := key{ch, t.UnixMicro()}
		p := points[k]
		if p == nil {
			p = &Point{Time: t.UTC(), RMSUV: math.NaN(), BaselineUV: math.NaN()}
			points[k] = p
		}
		switch r.Field() {
		case "rms_uv":
			p.RMSUV = v
		case "baseline_uv":
			p.BaselineUV = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	byCh := map[wire.Channel][]Point{}
	for k, p := range points {
		if !math.IsNaN(p.RMSUV) {
			byCh[k.ch] = append(byCh[k.ch], *p)
		}
	}
	out := make([]Series, 0, len(byCh))
	for ch, ps := range byCh {
		slices.SortFunc(ps, func(a, b Point) int { return a.Time.Compare(b.Time) })
		out = append(out, Series{Channel: ch, Points: ps})
	}
	slices.SortFunc(out, func(a, b Series) int { return compareChannels(a.Channel, b.Channel) })
	return out, nil
}

// alerts returns the device's alert decisions in [from, to), by time.
func (s *InfluxSource) alerts(ctx context.Context, device string, from, to time.Time) ([]Alert, error) {
	q := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %s and r.device == %s)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
`, fluxString(s.bucket), fluxTime(from), fluxTime(to), fluxString(store.MeasurementAlerts), fluxString(device))
	out := []Alert{} // known, possibly none
	err := s.each(ctx, "alerts", q, func(r *query.FluxRecord) error {
		v := r.Values()
		str := func(k string) string { s, _ := v[k].(string); return s }
		a := Alert{Time: r.Time().UTC(), Type: str("type"), Outcome: str("outcome"), Reason: str("reason"),
			AlertID: str("alert_id"), EventID: str("event_id")}
		if a.Time.Before(from) || !a.Time.Before(to) {
			return nil
		}
		a.LatencyS, _ = v["latency_s"].(float64)
		// An alert without muscle and side is still an alert: keep the zero channel.
		a.Channel, _ = wire.ParseChannel(str("muscle") + "_" + str("side"))
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b Alert) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// healthSpans returns when the device was recording in [from, to), from
// its health reports: each interval between two consecutive reports at most
// MaxHealthGap apart in which frames arrived (frames_in, cumulative per
// service run, grew; a drop to a smaller non-zero count is a restart of the
// service while data flowed). Export counts recording hours the same way.
func (s *InfluxSource) healthSpans(ctx context.Context, device string, from, to time.Time) ([]Span, error) {
	q := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %s and r.device == %s and r._field == "frames_in")
  |> keep(columns: ["_time", "_value"])
  |> group()
  |> sort(columns: ["_time"])
`, fluxString(s.bucket), fluxTime(from), fluxTime(to), fluxString(store.MeasurementHealth), fluxString(device))
	var (
		out    []Span
		prevT  time.Time
		prevIn int64
	)
	err := s.each(ctx, "device health", q, func(r *query.FluxRecord) error {
		t := r.Time().UTC()
		in, ok := r.Value().(int64)
		if !ok || t.Before(from) || !t.Before(to) {
			return nil
		}
		if !prevT.IsZero() && t.Sub(prevT) <= MaxHealthGap && (in > prevIn || (in < prevIn && in > 0)) {
			if n := len(out); n > 0 && out[n-1].To.Equal(prevT) {
				out[n-1].To = t
			} else {
				out = append(out, Span{From: prevT, To: t})
			}
		}
		prevT, prevIn = t, in
		return nil
	})
	return out, err
}

// Devices lists the devices with events in [from, to). (One row per
// device: distinct() on a kept tag column returns nothing on 1.8's Flux.)
func (s *InfluxSource) Devices(ctx context.Context, from, to time.Time) ([]string, error) {
	q := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %s and r._field == "state")
  |> group(columns: ["device"])
  |> last()
  |> keep(columns: ["device"])
`, fluxString(s.bucket), fluxTime(from), fluxTime(to), fluxString(store.MeasurementEvents))
	var out []string
	err := s.each(ctx, "devices", q, func(r *query.FluxRecord) error {
		if d, ok := r.ValueByKey("device").(string); ok && !slices.Contains(out, d) {
			out = append(out, d)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// each runs a Flux query and calls fn for every record.
func (s *InfluxSource) each(ctx context.Context, what, q string, fn func(*query.FluxRecord) error) error {
	res, err := s.client.QueryAPI(s.org).Query(ctx, q)
	if err != nil {
		return fmt.Errorf("report: query %s: %w", what, err)
	}
	defer res.Close()
	for res.Next() {
		if err := fn(res.Record()); err != nil {
			return fmt.Errorf("report: query %s: %w", what, err)
		}
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("report: query %s: %w", what, err)
	}
	return nil
}

// fluxString quotes s as a Flux string literal. InfluxDB 1.8 has no query
// parameters, so values are quoted here (and device ids validated first).
func fluxString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// fluxTime writes t as a Flux time literal (RFC 3339, UTC, nanoseconds).
func fluxTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
