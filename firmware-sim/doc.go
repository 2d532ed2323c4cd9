// Package firmwaresim simulates the firmware of crampwatch sensors: one
// virtual wearer per Device, producing a whole night of EMG, IMU and status
// frames in wire contract v1, together with the ground truth of what happened
// in that night (cramps, periodic limb movements, movements, artifacts).
//
// The simulated nights are meant to be honest rather than easy: band-limited
// surface EMG with per-wearer gain and resting level, baseline wander, mains
// hum, cramps with gradual onsets and irregular intensity, PLM series next to
// isolated leg movements, turning over and getting up with motion artifacts,
// electrode lead-off, flat lines, saturation, hum bursts, sensor gaps, and
// transport faults (lost and duplicated frames, clock jitter). The detector
// is judged on these nights, so they must look like the real thing.
//
// Everything is reproducible: a Scenario, a seed and a start time give
// identical bytes on every run. A Device generates its night lazily, frame by
// frame, so memory does not grow with the length of the night, and the hot
// path allocates nothing per sample, so Run can drive thousands of devices in
// real time as a load generator.
package firmwaresim
