// Package evaluate scores the detector against ground truth: Match compares
// detected events with the truth of simulated nights (sensitivity, false
// alerts, alert latency, duration error, PLM F1, ...), and Run simulates
// nights with firmware-sim and pushes every message through the production
// path (ingest.Router, pipeline.Pipeline, detect) to produce those events.
//
// docs/evaluation.md defines every metric and the matching rules.
package evaluate
