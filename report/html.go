package report

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/crampwatch/crampwatch/detect"
)

//go:embed night.html.tmpl
var pageText string

// page is parsed once per call: the template is small, and a package-level
// parsed template would be global state.
func page() (*template.Template, error) {
	return template.New("night").Parse(pageText)
}

// row is one line of the summary table: a stable id (for scripts and
// tests), a label, the value as shown, and how to read it.
type row struct {
	ID, Label, Value, Note string
}

// crampRow is one line of the cramp table.
type crampRow struct {
	Onset, End, Duration, Muscle, Peak, Confirm, State string
}

// view is what the page template renders.
type view struct {
	Title, Heading, Meta, Generated string
	Notes                           []string
	Rows                            []row
	Image                           template.URL
	ImageAlt                        string
	Cramps                          []crampRow
}

// RenderHTML writes the report as one self-contained HTML page: inline
// CSS, the picture (png, as made by RenderPNG) embedded as a data URI, no
// script and no external asset, so it can be mailed or opened offline.
func RenderHTML(w io.Writer, r *Report, png []byte) error {
	t, err := page()
	if err != nil {
		return fmt.Errorf("report: html template: %w", err)
	}
	loc := r.Location
	if loc == nil {
		loc = time.UTC
	}
	v := view{
		Title:   "Night report " + r.Night,
		Heading: "Night report · " + nightTitle(r.Night, loc),
		Meta:    fmt.Sprintf("%s · times in %s · data: %s", recordingText(r.Data, loc), loc, r.Source),
		Notes:   r.Data.Notes,
		Rows:    summaryRows(r.Summary),
	}
	if r.Who != "" {
		v.Title += " · " + r.Who
		v.Heading += " · " + r.Who
	}
	if !r.Generated.IsZero() {
		v.Generated = r.Generated.In(loc).Format("2006-01-02 15:04 MST")
	}
	if len(png) > 0 {
		// Safe: the URL is built here from our own PNG bytes.
		v.Image = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
		v.ImageAlt = fmt.Sprintf("EMG envelope per muscle and timeline of events for the night of %s", r.Night)
	}
	for _, e := range r.Data.Events {
		if e.Kind != detect.KindCramp {
			continue
		}
		c := crampRow{
			Onset:    e.Onset.In(loc).Format("15:04:05"),
			End:      e.End.In(loc).Format("15:04:05"),
			Duration: durationText(e.DurationS),
			Muscle:   channelName(e.Channel),
			Peak:     num(e.PeakUV, 0),
			Confirm:  "n/a",
			State:    "ended",
		}
		if !e.ConfirmedAt.IsZero() {
			c.Confirm = seconds(e.ConfirmedAt.Sub(e.Onset).Seconds())
		}
		if e.State == detect.StateOngoing {
			c.State = "end not recorded"
		}
		v.Cramps = append(v.Cramps, c)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return fmt.Errorf("report: html: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("report: write html: %w", err)
	}
	return nil
}

// summaryRows lays out the summary for the page.
func summaryRows(s Summary) []row {
	alerts, alertNote := "n/a", "the data source keeps no alert records"
	latency := "n/a"
	if s.AlertsKnown {
		alerts = fmt.Sprint(s.Alerts)
		alertNote = fmt.Sprintf("episodes in which the wearer was buzzed (cramps on both legs at once share one); %d escalations, %d TENS prompts, %d messages suppressed",
			s.Escalations, s.TENSPrompts, s.Suppressed)
		latency = seconds(s.MedianAlertLatencyS)
	}
	cramps := ""
	if s.AlertsKnown && s.Cramps > 0 {
		cramps = fmt.Sprintf("%d alerted", s.AlertedCramps)
	}
	if s.OngoingCramps > 0 {
		if cramps != "" {
			cramps += "; "
		}
		cramps += fmt.Sprintf("%d with no recorded end (counted up to confirmation)", s.OngoingCramps)
	}
	return []row{
		{"recording-hours", "Recording", hours(s.RecordingHours), recordingNote(s.RecordingBasis)},
		{"cramps", "Cramps", fmt.Sprint(s.Cramps), cramps},
		{"cramps-per-hour", "Cramps per hour", num(s.CrampsPerHour, 2), "per hour of recording"},
		{"total-cramp", "Total cramp time", durationText(s.TotalCrampS), num(s.TotalCrampS, 1) + " s"},
		{"longest-cramp", "Longest cramp", durationText(s.LongestCrampS), num(s.LongestCrampS, 1) + " s"},
		{"plms", "PLMs", fmt.Sprint(s.PLMs), "leg movements in periodic series (WASM 2016 rules)"},
		{"plm-index", "PLM index", num(s.PLMIndex, 2), "PLMs per hour of recording; sleep time is unknown, so this is at most the clinical index"},
		{"movements", "Movements", fmt.Sprint(s.Movements), "turning over, getting up"},
		{"artifact-minutes", "Artifact time", num(s.ArtifactMinutes, 2) + " min", "lead-off, flat line, saturation, mains hum, gaps; overlaps counted once"},
		{"alerts", "Alerts", alerts, alertNote},
		{"alert-latency", "Median alert latency", latency, "cramp onset to the first buzz of its episode, over alerted cramps"},
		{"confirm-latency", "Median confirmation time", seconds(s.MedianConfirmS), "cramp onset to the detector's confirmation"},
	}
}

// recordingNote says how the recording time was found.
func recordingNote(basis string) string {
	switch basis {
	case BasisHealth:
		return "time with data from the device, from its health reports"
	case BasisEnvelope:
		return "time with data from the device, from the stored envelope"
	}
	return "the data source does not record when the sensors were on"
}
