// Package report builds the night report: one wearer's night as a PNG
// (the EMG envelope of every muscle with cramps shaded and PLMs marked, and
// a hypnogram-like timeline of event kinds) and a small self-contained HTML
// page with that picture and the night's summary numbers. It is for people
// who have no Grafana: a wearer, or a clinician sent one file.
//
// Data comes from InfluxDB (events, the envelope averaged over windows,
// alert records) or, when there is no database, from the local event
// journal, which has events only: the page then says what it cannot show.
//
// A night is named by the local date on which it began; it runs from the
// night start hour (default 18:00) of that date to the same hour the next
// day, so a cramp at 02:00 belongs to the night of the previous date.
//
// The work is split so each part can be used and tested alone: a source
// loads Data, Summarize computes the numbers, RenderPNG and RenderHTML
// draw them, and Write does all of it into files.
package report
