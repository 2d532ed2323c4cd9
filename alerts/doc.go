// Package alerts closes the wearer's loop: it turns detected cramps into
// gentle alerts with the right stretch, escalates long unacknowledged cramps
// to a stronger alert and then to a TENS prompt, takes the wearer's
// acknowledgements and symptom diary entries, and keeps every decision on
// record for the night summary and the clinician.
//
// The Engine is a pipeline.Sink. Its policy runs on sample time (the device
// clock carried by events, envelope and motion points), never on wall-clock
// time, so a replayed or simulated night produces the same alerts as the live
// one. All policy state sits behind one mutex; outbound messages, webhook
// deliveries and records are queued and sent by their own goroutines so the
// pipeline never waits for a broker, an HTTP server or a database. Home
// Assistant discovery configs wait in a pending set of their own and go out
// only while no wearer message is queued, so a fleet start cannot crowd an
// alert out of its queue. SaveState and LoadState carry the policy state
// (open alerts, escalation stage, the last hour's cap and cooldown history)
// across a service restart (see state.go).
//
// Safety rules the engine enforces (see docs/alerts.md):
//   - one gentle alert per confirmed cramp, nothing for plm, movement or artifact;
//   - escalation only while a cramp persists unacknowledged;
//   - a TENS message is only a prompt, only with a clinician-configured preset,
//     and never carries an intensity outside the configured bounds;
//   - cooldown, an hourly cap and quiet hours keep the wearer from being
//     buzzed in a loop.
package alerts
