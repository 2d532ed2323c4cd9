package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/query"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/wire"
)

// QueryEvents returns the events with an onset in [from, to), optionally
// limited to some devices and kinds (nil or empty: all), sorted by onset,
// then device, kind and channel. Each event appears once: its ended report
// overwrote the ongoing one in the database, so an ongoing event is one
// whose end has not been written yet.
//
// Times come back at microsecond precision: Onset is the point's
// timestamp; End and ConfirmedAt are rebuilt from duration_s and latency_s
// (the "end" field, in milliseconds, checks End). Rows whose tags do not
// form an event are skipped and reported in the returned error alongside
// the events that could be read.
func (s *Influx) QueryEvents(ctx context.Context, from, to time.Time, devices []string, kinds []detect.Kind) ([]detect.Event, error) {
	q, err := eventsFlux(s.cfg.Bucket, from, to, devices, kinds)
	if err != nil {
		return nil, err
	}
	res, err := s.client.QueryAPI(s.cfg.Org).Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store: query events: %w", err)
	}
	defer res.Close()
	var (
		events []detect.Event
		bad    []error
	)
	for res.Next() {
		e, err := eventFromRecord(res.Record())
		if err != nil {
			bad = append(bad, err)
			continue
		}
		// InfluxDB 1.8's Flux treats the range stop as inclusive, 2.x as
		// exclusive: filter here so both give [from, to).
		if e.Onset.Before(from) || !e.Onset.Before(to) {
			continue
		}
		events = append(events, e)
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("store: query events: %w", err)
	}
	slices.SortFunc(events, compareEvents)
	if len(bad) > 0 {
		return events, fmt.Errorf("store: query events: %d rows skipped: %w", len(bad), errors.Join(bad...))
	}
	return events, nil
}

// eventsFlux builds the Flux query of QueryEvents. InfluxDB 1.8 has no
// query parameters, so values are validated and quoted here.
func eventsFlux(bucket string, from, to time.Time, devices []string, kinds []detect.Kind) (string, error) {
	if !from.Before(to) {
		return "", fmt.Errorf("store: query events: empty time range %v .. %v", from, to)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "from(bucket: %s)\n", fluxString(bucket))
	fmt.Fprintf(&b, "  |> range(start: %s, stop: %s)\n", fluxTime(from), fluxTime(to))
	fmt.Fprintf(&b, "  |> filter(fn: (r) => r._measurement == %s)\n", fluxString(MeasurementEvents))
	if len(devices) > 0 {
		terms := make([]string, len(devices))
		for i, d := range devices {
			if !wire.ValidDevice(d) {
				return "", fmt.Errorf("store: query events: invalid device id %q", d)
			}
			terms[i] = "r.device == " + fluxString(d)
		}
		fmt.Fprintf(&b, "  |> filter(fn: (r) => %s)\n", strings.Join(terms, " or "))
	}
	if len(kinds) > 0 {
		terms := make([]string, len(kinds))
		for i, k := range kinds {
			switch k {
			case detect.KindCramp, detect.KindPLM, detect.KindMovement, detect.KindArtifact:
			default:
				return "", fmt.Errorf("store: query events: unknown kind %q", k)
			}
			terms[i] = "r.kind == " + fluxString(string(k))
		}
		fmt.Fprintf(&b, "  |> filter(fn: (r) => %s)\n", strings.Join(terms, " or "))
	}
	b.WriteString(`  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")` + "\n")
	return b.String(), nil
}

// fluxString quotes s as a Flux string literal.
func fluxString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// fluxTime writes t as a Flux time literal (RFC 3339, UTC, nanoseconds).
func fluxTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// eventFromRecord turns one pivoted row into an event.
func eventFromRecord(r *query.FluxRecord) (detect.Event, error) {
	v := r.Values()
	str := func(k string) string { s, _ := v[k].(string); return s }
	num := func(k string) (float64, bool) {
		switch x := v[k].(type) {
		case float64:
			return x, true
		case int64:
			return float64(x), true
		}
		return 0, false
	}
	e := detect.Event{
		Device: str("device"),
		Kind:   detect.Kind(str("kind")),
		State:  detect.State(str("state")),
		Onset:  r.Time().UTC(),
		Cause:  str("cause"),
	}
	if e.Device == "" || e.Kind == "" || e.Onset.IsZero() {
		return detect.Event{}, fmt.Errorf("row %v: not an event", v)
	}
	ch, err := wire.ParseChannel(str("muscle") + "_" + str("side"))
	if err != nil {
		return detect.Event{}, fmt.Errorf("event %s at %v: %w", e.Device, e.Onset, err)
	}
	e.Channel = ch
	e.DurationS, _ = num("duration_s")
	e.PeakUV, _ = num("peak_uv")
	e.MeanUV, _ = num("mean_uv")
	e.MedianFreqHz, _ = num("median_freq_hz")
	e.Confidence, _ = num("confidence")
	if lat, ok := num("latency_s"); ok {
		e.ConfirmedAt = e.Onset.Add(microsDuration(lat))
	}
	e.End = e.Onset.Add(microsDuration(e.DurationS))
	if endMs, ok := v["end"].(int64); ok && e.End.UnixMilli() != endMs {
		// duration_s and end disagree (written by something else): trust
		// the explicit end, at its millisecond precision.
		e.End = time.UnixMilli(endMs).UTC()
	}
	return e, nil
}

// microsDuration converts seconds to a duration rounded to microseconds,
// the precision the events were written with.
func microsDuration(sec float64) time.Duration {
	return time.Duration(math.Round(sec*1e6)) * time.Microsecond
}

func compareEvents(a, b detect.Event) int {
	if c := a.Onset.Compare(b.Onset); c != 0 {
		return c
	}
	if c := strings.Compare(a.Device, b.Device); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
		return c
	}
	return strings.Compare(a.Channel.String(), b.Channel.String())
}
