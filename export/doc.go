// Package export turns what crampwatch recorded into files researchers and
// clinicians can open: an events table, a per-night summary table and,
// optionally, the signal envelope in windows around each event, as CSV,
// JSON Lines, Parquet, or EDF+ (events as annotations, the sleep-research
// format). docs/export.md documents every column with its unit.
//
// Data comes from InfluxDB (events, device health, the wearer's loop:
// alerts, acknowledgements, diary) or, when there is no database, from the
// local event journal. Wearers appear only as keyed pseudonyms
// (HMAC-SHA256 of the device id); device ids and free-text diary notes are
// exported only when asked for explicitly.
//
// An export streams: it reads one night at a time and writes each row as
// it goes, so memory does not grow with the number of rows. Files are
// written to a temporary directory that is renamed into place only when
// everything succeeded, so a cancelled or failed export leaves no partial
// output. Handler serves the same export over HTTP.
package export
