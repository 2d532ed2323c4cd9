package export

import (
	"testing"
	"time"
)

func TestNightsOf(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name       string
		n          Nights
		t          string
		night      string
		start, end string
	}{
		{"evening", DefaultNights(time.UTC), "2025-01-14T23:00:00Z", "2025-01-14", "2025-01-14T18:00:00Z", "2025-01-15T18:00:00Z"},
		{"small hours belong to the evening before", DefaultNights(time.UTC), "2025-01-15T02:00:00Z", "2025-01-14", "2025-01-14T18:00:00Z", "2025-01-15T18:00:00Z"},
		{"afternoon after", DefaultNights(time.UTC), "2025-01-15T17:59:59Z", "2025-01-14", "2025-01-14T18:00:00Z", "2025-01-15T18:00:00Z"},
		{"start is inclusive", DefaultNights(time.UTC), "2025-01-15T18:00:00Z", "2025-01-15", "2025-01-15T18:00:00Z", "2025-01-16T18:00:00Z"},
		{"local zone", DefaultNights(berlin), "2025-01-14T17:30:00Z", "2025-01-14", "2025-01-14T17:00:00Z", "2025-01-15T17:00:00Z"},
		{"spring forward: 23 h", DefaultNights(berlin), "2025-03-30T01:30:00Z", "2025-03-29", "2025-03-29T17:00:00Z", "2025-03-30T16:00:00Z"},
		{"fall back: 25 h", DefaultNights(berlin), "2025-10-26T03:00:00Z", "2025-10-25", "2025-10-25T16:00:00Z", "2025-10-26T17:00:00Z"},
		{"midnight start", Nights{StartHour: 0}, "2025-01-15T02:00:00Z", "2025-01-15", "2025-01-15T00:00:00Z", "2025-01-16T00:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			night, start, end := tc.n.Of(utc(tc.t))
			if night != tc.night || !start.Equal(utc(tc.start)) || !end.Equal(utc(tc.end)) {
				t.Errorf("Of(%s) = %s [%v, %v), want %s [%s, %s)", tc.t, night, start, end, tc.night, tc.start, tc.end)
			}
			s2, e2, err := tc.n.Named(night)
			if err != nil || !s2.Equal(start) || !e2.Equal(end) {
				t.Errorf("Named(%s) = [%v, %v) %v, want the same bounds", night, s2, e2, err)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	n := DefaultNights(time.UTC)
	tests := []struct {
		in    string
		upper bool
		want  string
		bad   bool
	}{
		{in: "2025-01-14T23:00:00.5Z", want: "2025-01-14T23:00:00.5Z"},
		{in: "2025-01-15T01:00:00+02:00", want: "2025-01-14T23:00:00Z"},
		{in: "2025-01-14", want: "2025-01-14T18:00:00Z"},
		{in: "2025-01-14", upper: true, want: "2025-01-15T18:00:00Z"},
		{in: "yesterday", bad: true},
		{in: "2025-13-01", bad: true},
	}
	for _, tc := range tests {
		got, err := n.ParseTime(tc.in, tc.upper)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseTime(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		want, _ := time.Parse(time.RFC3339Nano, tc.want)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q, %v) = %v, %v; want %v", tc.in, tc.upper, got, err, want)
		}
	}
	if err := (Nights{StartHour: 24}).Validate(); err == nil {
		t.Error("start hour 24 accepted")
	}
}
