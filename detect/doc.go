// Package detect turns one device's EMG and IMU streams into events: night
// cramps, periodic limb movements (PLM), voluntary movements and artifacts.
//
// Each EMG channel runs a chain designed for its sample rate: a Butterworth
// band-pass (20-450 Hz, clipped below Nyquist) and a notch at the mains
// frequency (50 or 60 Hz, detected from the data), then a moving-RMS
// envelope at a block rate (default 10 Hz), a robust resting baseline and a
// per-channel state machine. Each IMU site yields activity and orientation
// features at the same block rate. A per-device classifier combines them:
// sustained high-amplitude contraction of one muscle with a still leg is a
// cramp, short bursts in a periodic series are PLM, bursts with large leg
// motion are movements, and bad signal is an artifact.
//
// Everything runs on sample time (frame T0 plus sample index over rate),
// never on wall-clock time, so replaying a recording yields the same events.
// See docs/detection.md for how and why, and for every threshold.
package detect
