// Package ingest routes raw MQTT messages (topic, payload) to ordered,
// de-duplicated, per-device frames for the rest of the service.
//
// A Router parses the topic, copies the payload into a pooled buffer and
// queues it on the shard that owns the device (a device always hashes to the
// same shard, so its frames are handled by one goroutine and need no locks).
// The shard decodes the payload with its own wire.Decoder, puts the device's
// EMG and IMU frames back in sequence order (dropping QoS 1 duplicates,
// waiting briefly for reordered frames, reporting lost frames as gaps and
// recognising device reboots) and calls a Handler. Malformed messages are
// rejected with their wire.Reason, counted, and never stop a device or its
// neighbours.
//
// See docs/ingest.md for the ordering rules and the metrics.
package ingest
