package report

import (
	"fmt"
	"time"
)

// DefaultNightStartHour is the local hour at which a night begins, the same
// default as the alert engine's alert-night-start-hour.
const DefaultNightStartHour = 18

// NightWindow returns the interval [from, to) of the night that began on
// date (YYYY-MM-DD) at startHour local time in loc. Across a daylight saving
// change the night is 23 or 25 hours long, as the wearer lived it.
func NightWindow(date string, loc *time.Location, startHour int) (from, to time.Time, err error) {
	if loc == nil {
		return time.Time{}, time.Time{}, fmt.Errorf("night %q: no time zone", date)
	}
	if startHour < 0 || startHour > 23 {
		return time.Time{}, time.Time{}, fmt.Errorf("night start hour %d: want 0..23", startHour)
	}
	d, err := time.ParseInLocation(time.DateOnly, date, loc)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("night %q: want YYYY-MM-DD: %w", date, err)
	}
	from = time.Date(d.Year(), d.Month(), d.Day(), startHour, 0, 0, 0, loc)
	to = time.Date(d.Year(), d.Month(), d.Day()+1, startHour, 0, 0, 0, loc)
	return from, to, nil
}

// NightOf names the night t belongs to: the local date (YYYY-MM-DD) of the
// evening it began.
func NightOf(t time.Time, loc *time.Location, startHour int) string {
	l := t.In(loc)
	if l.Hour() < startHour {
		l = l.AddDate(0, 0, -1)
	}
	return l.Format(time.DateOnly)
}

// LastNight names the night a report run at now is most likely about:
// the night going on or last ended, except in the evening, after a new
// night has begun, when it is still the previous one (the new one has
// hardly started).
func LastNight(now time.Time, loc *time.Location, startHour int) string {
	l := now.In(loc)
	if l.Hour() >= startHour {
		l = l.AddDate(0, 0, -1)
	}
	return NightOf(l, loc, startHour)
}
