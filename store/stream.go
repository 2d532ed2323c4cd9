package store

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/wire"
)

// Streaming reads for export: unlike QueryEvents they never hold a result
// in memory, so their memory use does not grow with the number of rows.
// InfluxDB returns a pivoted query as one table per series; to get rows in
// one order across series, the queries below merge the series and let the
// server sort them. That sort happens in InfluxDB's memory, so callers keep
// each query to a bounded time window (export asks for one night at a time).

// ErrBadRow marks a stored row that does not form an event (tags missing or
// invalid); EventStream yields it wrapped and goes on with the next row.
var ErrBadRow = errors.New("row is not a valid event")

// EventStream yields the events with an onset in [from, to), optionally
// limited to some devices and kinds (nil or empty: all), ordered by device,
// then onset, kind, muscle and side. Rows that do not form an event are
// yielded as errors wrapping ErrBadRow and the stream goes on; a query
// failure is yielded last.
// Stopping the iteration early closes the query.
func (s *Influx) EventStream(ctx context.Context, from, to time.Time, devices []string, kinds []detect.Kind) iter.Seq2[detect.Event, error] {
	return func(yield func(detect.Event, error) bool) {
		q, err := eventsFlux(s.cfg.Bucket, from, to, devices, kinds)
		if err != nil {
			yield(detect.Event{}, err)
			return
		}
		q += `  |> group()` + "\n" + `  |> sort(columns: ["device", "_time", "kind", "muscle", "side"])` + "\n"
		res, err := s.client.QueryAPI(s.cfg.Org).Query(ctx, q)
		if err != nil {
			yield(detect.Event{}, fmt.Errorf("store: stream events: %w", err))
			return
		}
		defer res.Close()
		for res.Next() {
			e, err := eventFromRecord(res.Record())
			if err != nil {
				if !yield(detect.Event{}, fmt.Errorf("store: stream events: %w: %w", ErrBadRow, err)) {
					return
				}
				continue
			}
			// InfluxDB 1.8's Flux treats the range stop as inclusive.
			if e.Onset.Before(from) || !e.Onset.Before(to) {
				continue
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := res.Err(); err != nil {
			yield(detect.Event{}, fmt.Errorf("store: stream events: %w", err))
		}
	}
}

// RowQuery selects the rows of one measurement for Rows and FirstTime.
type RowQuery struct {
	Measurement string
	// From and To bound the timestamps: [From, To).
	From, To time.Time
	// Devices limits the rows to these device tags; empty: all.
	Devices []string
	// Fields limits the fields read; empty: all. Rows that have none of
	// them are not returned.
	Fields []string
	// SortBy merges all series and sorts the rows by these columns ("_time"
	// is the timestamp). Empty: series by series, each in time order.
	SortBy []string
}

// Row is one pivoted row: the timestamp, and tags and fields by name (tags
// are strings; fields float64, int64, string or bool as written).
type Row struct {
	Time   time.Time
	Values map[string]any
}

// String returns the string value of a tag or field, "" if absent.
func (r Row) String(key string) string {
	s, _ := r.Values[key].(string)
	return s
}

// Float returns a numeric field as float64 and whether it is present.
func (r Row) Float(key string) (float64, bool) {
	switch v := r.Values[key].(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	}
	return 0, false
}

// Int returns an integer field and whether it is present.
func (r Row) Int(key string) (int64, bool) {
	v, ok := r.Values[key].(int64)
	return v, ok
}

// Bool returns a boolean field and whether it is present.
func (r Row) Bool(key string) (bool, bool) {
	v, ok := r.Values[key].(bool)
	return v, ok
}

// rowsFlux builds the Flux query of Rows, without the final sort.
func rowsFlux(bucket string, q RowQuery) (string, error) {
	if q.Measurement == "" {
		return "", fmt.Errorf("store: rows: no measurement")
	}
	if !q.From.Before(q.To) {
		return "", fmt.Errorf("store: rows: empty time range %v .. %v", q.From, q.To)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "from(bucket: %s)\n", fluxString(bucket))
	fmt.Fprintf(&b, "  |> range(start: %s, stop: %s)\n", fluxTime(q.From), fluxTime(q.To))
	fmt.Fprintf(&b, "  |> filter(fn: (r) => r._measurement == %s)\n", fluxString(q.Measurement))
	if len(q.Devices) > 0 {
		terms := make([]string, len(q.Devices))
		for i, d := range q.Devices {
			if !wire.ValidDevice(d) {
				return "", fmt.Errorf("store: rows: invalid device id %q", d)
			}
			terms[i] = "r.device == " + fluxString(d)
		}
		fmt.Fprintf(&b, "  |> filter(fn: (r) => %s)\n", strings.Join(terms, " or "))
	}
	if len(q.Fields) > 0 {
		terms := make([]string, len(q.Fields))
		for i, f := range q.Fields {
			terms[i] = "r._field == " + fluxString(f)
		}
		fmt.Fprintf(&b, "  |> filter(fn: (r) => %s)\n", strings.Join(terms, " or "))
	}
	return b.String(), nil
}

func fluxColumns(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = fluxString(c)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// Rows yields the rows of a measurement, pivoted so that each row holds all
// fields of one point. A query failure is yielded last; stopping the
// iteration early closes the query.
func (s *Influx) Rows(ctx context.Context, q RowQuery) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		fq, err := rowsFlux(s.cfg.Bucket, q)
		if err != nil {
			yield(Row{}, err)
			return
		}
		fq += `  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")` + "\n"
		if len(q.SortBy) > 0 {
			fq += "  |> group()\n  |> sort(columns: " + fluxColumns(q.SortBy) + ")\n"
		}
		res, err := s.client.QueryAPI(s.cfg.Org).Query(ctx, fq)
		if err != nil {
			yield(Row{}, fmt.Errorf("store: rows of %s: %w", q.Measurement, err))
			return
		}
		defer res.Close()
		for res.Next() {
			r := res.Record()
			t := r.Time().UTC()
			if t.Before(q.From) || !t.Before(q.To) {
				continue
			}
			if !yield(Row{Time: t, Values: r.Values()}, nil) {
				return
			}
		}
		if err := res.Err(); err != nil {
			yield(Row{}, fmt.Errorf("store: rows of %s: %w", q.Measurement, err))
		}
	}
}

// FirstTime returns the earliest timestamp of a point selected by q
// (SortBy is ignored), and false if there is none. Export uses it to skip
// empty stretches of a long time range with one cheap query.
func (s *Influx) FirstTime(ctx context.Context, q RowQuery) (time.Time, bool, error) {
	fq, err := rowsFlux(s.cfg.Bucket, q)
	if err != nil {
		return time.Time{}, false, err
	}
	// first() per series, then the earliest of those.
	fq += "  |> first()\n  |> group()\n  |> sort(columns: [\"_time\"])\n"
	res, err := s.client.QueryAPI(s.cfg.Org).Query(ctx, fq)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: first %s: %w", q.Measurement, err)
	}
	defer res.Close()
	for res.Next() {
		// 1.8 treats the stop as inclusive: a point at To is not in range.
		if t := res.Record().Time().UTC(); !t.Before(q.From) && t.Before(q.To) {
			return t, true, nil
		}
	}
	if err := res.Err(); err != nil {
		return time.Time{}, false, fmt.Errorf("store: first %s: %w", q.Measurement, err)
	}
	return time.Time{}, false, nil
}

// TagValues returns the distinct values of a tag among the series selected
// by q (SortBy is ignored; only the first point of each series is read),
// sorted. Export uses it to learn a device's EMG channels.
func (s *Influx) TagValues(ctx context.Context, q RowQuery, tag string) ([]string, error) {
	fq, err := rowsFlux(s.cfg.Bucket, q)
	if err != nil {
		return nil, err
	}
	fq += "  |> first()\n"
	res, err := s.client.QueryAPI(s.cfg.Org).Query(ctx, fq)
	if err != nil {
		return nil, fmt.Errorf("store: %s values: %w", tag, err)
	}
	defer res.Close()
	seen := map[string]bool{}
	var out []string
	for res.Next() {
		if v, ok := res.Record().ValueByKey(tag).(string); ok && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("store: %s values: %w", tag, err)
	}
	slices.Sort(out)
	return out, nil
}
