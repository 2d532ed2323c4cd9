package report

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/journal"
)

// JournalSource reads the local event journal, for services that run
// without InfluxDB. The journal holds events only: no envelope, no alert
// records and no record of when the sensors were on.
type JournalSource struct {
	Path string
}

// Name describes the source for the page.
func (s JournalSource) Name() string { return "local journal " + filepath.Base(s.Path) }

// Load reads the journal and keeps the device's events with an onset in
// [q.From, q.To), each in its last reported state (a cramp's ended line
// follows its ongoing one). Malformed lines are skipped and noted.
func (s JournalSource) Load(ctx context.Context, q Query) (*Data, error) {
	events, readErr := s.read(ctx)
	if events == nil && readErr != nil {
		return nil, readErr
	}
	d := &Data{Device: q.Device, From: q.From, To: q.To, Window: q.window()}
	last := map[string]int{} // event id -> index in d.Events
	for _, e := range events {
		if e.Device != q.Device || e.Onset.Before(q.From) || !e.Onset.Before(q.To) {
			continue
		}
		if i, ok := last[e.ID()]; ok {
			d.Events[i] = e
			continue
		}
		last[e.ID()] = len(d.Events)
		d.Events = append(d.Events, e)
	}
	sortEvents(d.Events)
	d.RecordingBasis = BasisUnknown
	d.Notes = append(d.Notes,
		"No envelope: the local journal keeps events only. Run the service with InfluxDB to see the EMG envelope.",
		"Recording time unknown: the journal does not record when the sensors were on, so per-hour rates are n/a.",
		"No alert records: the local journal does not keep them. The detector's confirmation time is the alert latency a wearer would have had.")
	if readErr != nil {
		d.Notes = append(d.Notes, "Some journal lines could not be read: "+firstLine(readErr.Error()))
	}
	return d, readErr
}

// Devices lists the devices with events in [from, to).
func (s JournalSource) Devices(ctx context.Context, from, to time.Time) ([]string, error) {
	events, err := s.read(ctx)
	if events == nil && err != nil {
		return nil, err
	}
	var out []string
	for _, e := range events {
		if !e.Onset.Before(from) && e.Onset.Before(to) && !slices.Contains(out, e.Device) {
			out = append(out, e.Device)
		}
	}
	slices.Sort(out)
	return out, nil
}

// read returns every event line of the journal. Malformed lines only add
// to the error: the events are nil only when the file could not be read.
func (s JournalSource) read(ctx context.Context) ([]detect.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	events, err := journal.Read(s.Path)
	var lineErr *journal.LineError
	if err != nil && events == nil && !errors.As(err, &lineErr) {
		return nil, fmt.Errorf("report: %w", err) // could not open or read the file
	}
	if events == nil {
		events = []detect.Event{} // readable, with no valid line
	}
	if err != nil {
		err = fmt.Errorf("report: %w", err)
	}
	return events, err
}

// firstLine keeps the first line of a long joined error for the page.
func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}
