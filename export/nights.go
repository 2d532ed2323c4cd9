package export

import (
	"fmt"
	"time"
)

// DefaultNightStartHour is the local hour at which a night begins, as the
// alerts engine counts nights (alert-night-start-hour).
const DefaultNightStartHour = 18

// Nights cuts time into nights. A night begins at StartHour local time in
// Location and lasts until StartHour the next day (23 or 25 hours when the
// clocks change); it is named by the local date it began, so a cramp at
// 02:00 belongs to the night of the evening before.
type Nights struct {
	StartHour int            // 0-23; DefaultNightStartHour when built with DefaultNights
	Location  *time.Location // nil: UTC
}

// DefaultNights starts nights at 18:00 in loc.
func DefaultNights(loc *time.Location) Nights {
	return Nights{StartHour: DefaultNightStartHour, Location: loc}
}

// Validate checks the start hour.
func (n Nights) Validate() error {
	if n.StartHour < 0 || n.StartHour > 23 {
		return fmt.Errorf("export: night start hour %d: want 0-23", n.StartHour)
	}
	return nil
}

func (n Nights) loc() *time.Location {
	if n.Location == nil {
		return time.UTC
	}
	return n.Location
}

// Of returns the night t belongs to: its name (YYYY-MM-DD) and its bounds
// [start, end) in UTC.
func (n Nights) Of(t time.Time) (name string, start, end time.Time) {
	lt := t.In(n.loc())
	start = time.Date(lt.Year(), lt.Month(), lt.Day(), n.StartHour, 0, 0, 0, n.loc())
	if lt.Before(start) {
		start = time.Date(lt.Year(), lt.Month(), lt.Day()-1, n.StartHour, 0, 0, 0, n.loc())
	}
	end = time.Date(start.Year(), start.Month(), start.Day()+1, n.StartHour, 0, 0, 0, n.loc())
	return start.Format(time.DateOnly), start.UTC(), end.UTC()
}

// Named returns the bounds of the night named date (YYYY-MM-DD).
func (n Nights) Named(date string) (start, end time.Time, err error) {
	d, err := time.ParseInLocation(time.DateOnly, date, n.loc())
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("export: night %q: %w", date, err)
	}
	start = time.Date(d.Year(), d.Month(), d.Day(), n.StartHour, 0, 0, 0, n.loc())
	end = time.Date(d.Year(), d.Month(), d.Day()+1, n.StartHour, 0, 0, 0, n.loc())
	return start.UTC(), end.UTC(), nil
}

// ParseTime reads a time bound given on the command line or in a URL: RFC
// 3339, or a date YYYY-MM-DD meaning the start of that night (for a lower
// bound) or the end of that night (for an upper bound, so that
// --from 2025-01-14 --to 2025-01-14 is that one night).
func (n Nights) ParseTime(s string, upper bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	start, end, err := n.Named(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("export: time %q: want RFC 3339 or YYYY-MM-DD", s)
	}
	if upper {
		return end, nil
	}
	return start, nil
}
