package wire

import (
	"bytes"
	"math"
	"unicode"
	"unicode/utf8"
)

// Decoder decodes EMG, IMU and status payloads. It keeps scratch buffers so
// that steady-state decoding reuses memory instead of allocating per frame.
// A Decoder is not safe for concurrent use: give each ingest shard its own.
// The zero Decoder is ready to use and enforces DefaultMaxPayload.
type Decoder struct {
	maxPayload int
	sc         scanner

	// Text of the first bad unit, channel label or site seen while parsing,
	// kept for the error detail. Validation runs after parsing (so the
	// reason for a bad frame does not depend on the order of its fields)
	// and by then the scanner's string buffers have been overwritten.
	badUnit, badLabel, badSite []byte
	// badTriple is set when an acc or gyr sample does not have 3 components.
	badTriple bool
}

// NewDecoder returns a Decoder that rejects payloads longer than maxPayload
// bytes; maxPayload <= 0 means DefaultMaxPayload.
func NewDecoder(maxPayload int) *Decoder {
	return &Decoder{maxPayload: maxPayload}
}

// binaryMagic starts every binary frame. It can never start a JSON text,
// which begins with '{' (or whitespace) here, nor a valid UTF-8 sequence
// (0xC7 is a lead byte but a lone one is not text anybody sends).
const binaryMagic = 0xC7

// DecodeEMG decodes an EMG payload into f. The format (JSON or binary) is
// detected from the first byte. It validates the frame against the
// contract, converts the samples to microvolts and fills f, reusing f's
// Channels and Data rows when they have capacity. On error f holds
// unspecified partial data and the error is an *Error.
func (d *Decoder) DecodeEMG(payload []byte, f *EMGFrame) error {
	if err := d.emg(payload, f); err != nil {
		return err
	}
	return nil
}

// DecodeIMU decodes an IMU payload (JSON or binary) into f, reusing f.Acc
// and f.Gyr when they have capacity. On error f holds unspecified partial
// data and the error is an *Error.
func (d *Decoder) DecodeIMU(payload []byte, f *IMUFrame) error {
	if err := d.imu(payload, f); err != nil {
		return err
	}
	return nil
}

// DecodeStatus decodes a status payload, which is JSON only, into s,
// reusing s.LeadOff and s.Firmware when they are unchanged. Absent optional
// fields read as unknown: BatteryPct -1, Firmware "", no LeadOff, RSSI 0.
// On error s holds unspecified partial data and the error is an *Error.
func (d *Decoder) DecodeStatus(payload []byte, s *StatusFrame) error {
	if err := d.status(payload, s); err != nil {
		return err
	}
	return nil
}

func (d *Decoder) size(payload []byte) *Error {
	max := d.maxPayload
	if max <= 0 {
		max = DefaultMaxPayload
	}
	switch {
	case len(payload) == 0:
		return reject(ReasonEmpty, "empty payload")
	case len(payload) > max:
		return reject(ReasonOversize, "payload is %d bytes, limit %d", len(payload), max)
	}
	return nil
}

func (d *Decoder) resetBad() {
	d.badUnit = d.badUnit[:0]
	d.badLabel = d.badLabel[:0]
	d.badSite = d.badSite[:0]
	d.badTriple = false
}

// noteBad keeps the first bad token of a kind, clipped, for error details.
func noteBad(dst, token []byte) []byte {
	if len(dst) > 0 {
		return dst
	}
	const max = 40
	if len(token) > max {
		return append(append(dst, token[:max]...), "..."...)
	}
	if len(token) == 0 {
		return append(dst, `""`...)
	}
	return append(dst, token...)
}

// Fields of the JSON objects, as bits, to catch missing and repeated keys.
const (
	fieldSeq = 1 << iota
	fieldT0
	fieldRate
	fieldUnit
	fieldCh
	fieldData
	fieldSite
	fieldAcc
	fieldGyr
)

// header is what EMG and IMU JSON frames share, as parsed and not yet validated.
type header struct {
	seen   uint
	seq    int64
	seqOut bool // seq did not fit int64
	t0     int64
	rate   float64
}

// field reads one of the shared header fields if key names one.
func (d *Decoder) headerField(key []byte, h *header) (bool, *Error) {
	var bit uint
	switch string(key) {
	case "seq":
		bit = fieldSeq
	case "t0":
		bit = fieldT0
	case "rate":
		bit = fieldRate
	default:
		return false, nil
	}
	if err := d.markSeen(&h.seen, bit, key); err != nil {
		return true, err
	}
	var err *Error
	switch bit {
	case fieldSeq:
		h.seq, h.seqOut, err = d.sc.int()
	case fieldT0:
		var out bool
		h.t0, out, err = d.sc.int()
		if out {
			h.t0 = -1 // does not fit int64: certainly not a plausible time
		}
	case fieldRate:
		h.rate, err = d.sc.float()
	}
	return true, err
}

func (d *Decoder) markSeen(seen *uint, bit uint, key []byte) *Error {
	if *seen&bit != 0 {
		return d.sc.errorf("duplicate field %q", key)
	}
	*seen |= bit
	return nil
}

// check rejects missing fields and a seq outside uint32, and returns seq.
// The rest of the header is judged by checkEMG and checkIMU, which binary
// frames go through too.
func (h *header) check(required []fieldName) (uint32, *Error) {
	for _, r := range required {
		if h.seen&r.bit == 0 {
			return 0, reject(ReasonMissingField, "missing field %q", r.name)
		}
	}
	if h.seqOut || h.seq < 0 || h.seq > math.MaxUint32 {
		return 0, reject(ReasonOutOfRange, "seq outside 0..%d", uint32(math.MaxUint32))
	}
	return uint32(h.seq), nil
}

type fieldName struct {
	bit  uint
	name string
}

var (
	emgFields = []fieldName{{fieldSeq, "seq"}, {fieldT0, "t0"}, {fieldRate, "rate"}, {fieldUnit, "unit"}, {fieldCh, "ch"}, {fieldData, "data"}}
	imuFields = []fieldName{{fieldSeq, "seq"}, {fieldT0, "t0"}, {fieldRate, "rate"}, {fieldSite, "site"}, {fieldAcc, "acc"}, {fieldGyr, "gyr"}}
)

func checkTime(name string, t int64) *Error {
	if t < minTime || t > maxTime {
		return reject(ReasonBadTime, "%s %d µs is not between 1970 and 2200", name, t)
	}
	return nil
}

func checkRate(rate, lo, hi float64) *Error {
	// The negated form also rejects NaN.
	if !(rate >= lo && rate <= hi) {
		return reject(ReasonBadRate, "rate %g Hz outside %g..%g", rate, lo, hi)
	}
	return nil
}

// checkSpan rejects frames with no samples or more than MaxFrameSeconds of them.
func checkSpan(n int, rate float64) *Error {
	if n == 0 {
		return reject(ReasonEmpty, "frame has no samples")
	}
	if float64(n) > MaxFrameSeconds*rate {
		return reject(ReasonOutOfRange, "%d samples at %g Hz is longer than %d s", n, rate, MaxFrameSeconds)
	}
	return nil
}

// emg decodes and validates an EMG payload.
func (d *Decoder) emg(p []byte, f *EMGFrame) *Error {
	if err := d.size(p); err != nil {
		return err
	}
	d.resetBad()
	if p[0] == binaryMagic {
		if err := d.emgBinary(p, f); err != nil {
			return err
		}
	} else {
		if err := d.emgJSON(p, f); err != nil {
			return err
		}
	}
	return d.checkEMG(f)
}

// emgJSON parses an EMG JSON object into f without judging its content
// beyond syntax and types; checkEMG does that afterwards.
func (d *Decoder) emgJSON(p []byte, f *EMGFrame) *Error {
	sc := &d.sc
	sc.reset(p)
	var h header
	f.Unit = 0
	f.Channels = f.Channels[:0]
	f.Data = f.Data[:0]
	if err := sc.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := sc.next(first, '}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
		key, err := sc.key()
		if err != nil {
			return err
		}
		if ok, err := d.headerField(key, &h); ok {
			if err != nil {
				return err
			}
			continue
		}
		switch string(key) {
		case "unit":
			if err := d.markSeen(&h.seen, fieldUnit, key); err != nil {
				return err
			}
			u, err := sc.string()
			if err != nil {
				return err
			}
			switch string(u) {
			case "uV":
				f.Unit = Microvolt
			case "mV":
				f.Unit = Millivolt
			default:
				d.badUnit = noteBad(d.badUnit, u)
			}
		case "ch":
			if err := d.markSeen(&h.seen, fieldCh, key); err != nil {
				return err
			}
			if err := d.channelsJSON(&f.Channels); err != nil {
				return err
			}
		case "data":
			if err := d.markSeen(&h.seen, fieldData, key); err != nil {
				return err
			}
			if err := d.dataJSON(f); err != nil {
				return err
			}
		default:
			// Unknown fields are skipped so that firmware can add fields
			// without breaking older services.
			if err := sc.skip(); err != nil {
				return err
			}
		}
	}
	if err := sc.end(); err != nil {
		return err
	}
	seq, err := h.check(emgFields)
	if err != nil {
		return err
	}
	f.Seq, f.T0, f.Rate = seq, h.t0, h.rate
	return nil
}

// channelsJSON reads an array of channel labels into chs. Unknown labels
// are stored as the zero Channel and reported by checkChannels. At most
// MaxChannels+1 labels are stored, enough to reject the frame later
// without letting a hostile frame allocate without bound.
func (d *Decoder) channelsJSON(chs *[]Channel) *Error {
	sc := &d.sc
	if err := sc.expect('['); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := sc.next(first, ']')
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
		label, err := sc.string()
		if err != nil {
			return err
		}
		c, ok := channelFromLabel(label)
		if !ok {
			d.badLabel = noteBad(d.badLabel, label)
		}
		if len(*chs) <= MaxChannels {
			*chs = append(*chs, c)
		}
	}
}

// dataJSON reads the data array of arrays into f.Data, reusing rows.
func (d *Decoder) dataJSON(f *EMGFrame) *Error {
	sc := &d.sc
	if err := sc.expect('['); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := sc.next(first, ']')
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
		// Rows beyond MaxChannels+1 are only syntax-checked (see channelsJSON).
		var row []float64
		keep := len(f.Data) <= MaxChannels
		if keep {
			f.Data = growRows(f.Data)
			row = f.Data[len(f.Data)-1][:0]
		}
		if err := sc.expect('['); err != nil {
			return err
		}
		for first := true; ; first = false {
			more, err := sc.next(first, ']')
			if err != nil {
				return err
			}
			if !more {
				break
			}
			v, err := sc.float()
			if err != nil {
				return err
			}
			if keep {
				row = append(row, v)
			}
		}
		if keep {
			f.Data[len(f.Data)-1] = row
		}
	}
}

// growRows extends rows by one, reusing the slice kept in the spare
// capacity from an earlier frame so its backing array is reused too.
func growRows(rows [][]float64) [][]float64 {
	if len(rows) < cap(rows) {
		return rows[:len(rows)+1]
	}
	return append(rows, nil)
}

// checkEMG validates a parsed EMG frame, whose Data is still in the wire
// unit, and converts Data to microvolts. JSON and binary frames share it,
// so both are judged by the same rules in the same order.
func (d *Decoder) checkEMG(f *EMGFrame) *Error {
	if err := checkTime("t0", f.T0); err != nil {
		return err
	}
	if err := checkRate(f.Rate, MinEMGRate, MaxEMGRate); err != nil {
		return err
	}
	if f.Unit != Microvolt && f.Unit != Millivolt {
		return reject(ReasonBadUnit, "unit %q: want uV or mV", d.badUnit)
	}
	if len(f.Channels) == 0 {
		return reject(ReasonEmpty, "frame has no channels")
	}
	if err := checkChannels(f.Channels, d.badLabel); err != nil {
		return err
	}
	if len(f.Data) != len(f.Channels) {
		return reject(ReasonRagged, "%d channel labels but %d data rows", len(f.Channels), len(f.Data))
	}
	n := len(f.Data[0])
	for i, row := range f.Data {
		if len(row) != n {
			return reject(ReasonRagged, "data row %d has %d samples, row 0 has %d", i, len(row), n)
		}
	}
	if err := checkSpan(n, f.Rate); err != nil {
		return err
	}
	k := 1.0
	if f.Unit == Millivolt {
		k = 1000
	}
	for i, row := range f.Data {
		for j, v := range row {
			v *= k
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return reject(ReasonNonFinite, "%s sample %d is not a finite number", f.Channels[i], j)
			}
			if v > MaxEMGMicrovolts || v < -MaxEMGMicrovolts {
				return reject(ReasonOutOfRange, "%s sample %d is %g µV, limit ±%d µV", f.Channels[i], j, v, MaxEMGMicrovolts)
			}
			row[j] = v
		}
	}
	return nil
}

// checkChannels rejects empty, oversized, unknown and repeated channel lists
// (EMG frames and status lead-off lists alike). An unknown label is stored
// as the zero Channel; badLabel is its text for the error.
func checkChannels(chs []Channel, badLabel []byte) *Error {
	if len(chs) > MaxChannels {
		return reject(ReasonOutOfRange, "more than %d channels", MaxChannels)
	}
	var seen uint64
	for _, c := range chs {
		if c == (Channel{}) {
			return reject(ReasonUnknownChannel, "channel %q: want <calf|hamstring|quadriceps|tibialis>_<left|right>", badLabel)
		}
		bit := uint64(1) << (uint(c.Muscle)*4 + uint(c.Side))
		if seen&bit != 0 {
			return reject(ReasonDuplicateLabel, "channel %s appears twice", c)
		}
		seen |= bit
	}
	return nil
}

// channelFromLabel parses "<muscle>_<side>" without allocating.
func channelFromLabel(b []byte) (Channel, bool) {
	i := bytes.IndexByte(b, '_')
	if i < 0 {
		return Channel{}, false
	}
	side, ok := sideFromLabel(b[i+1:])
	if !ok {
		return Channel{}, false
	}
	for m, name := range muscleNames {
		if name != "" && string(b[:i]) == name {
			return Channel{Muscle: Muscle(m), Side: side}, true
		}
	}
	return Channel{}, false
}

// siteFromLabel parses "<segment>_<side>" without allocating.
func siteFromLabel(b []byte) (Site, bool) {
	i := bytes.IndexByte(b, '_')
	if i < 0 {
		return Site{}, false
	}
	side, ok := sideFromLabel(b[i+1:])
	if !ok {
		return Site{}, false
	}
	switch string(b[:i]) {
	case "shank":
		return Site{Segment: Shank, Side: side}, true
	case "thigh":
		return Site{Segment: Thigh, Side: side}, true
	}
	return Site{}, false
}

func sideFromLabel(b []byte) (Side, bool) {
	switch string(b) {
	case "left":
		return Left, true
	case "right":
		return Right, true
	}
	return 0, false
}

// imu decodes and validates an IMU payload.
func (d *Decoder) imu(p []byte, f *IMUFrame) *Error {
	if err := d.size(p); err != nil {
		return err
	}
	d.resetBad()
	if p[0] == binaryMagic {
		if err := d.imuBinary(p, f); err != nil {
			return err
		}
	} else {
		if err := d.imuJSON(p, f); err != nil {
			return err
		}
	}
	return d.checkIMU(f)
}

func (d *Decoder) imuJSON(p []byte, f *IMUFrame) *Error {
	sc := &d.sc
	sc.reset(p)
	var h header
	f.Site = Site{}
	f.Acc = f.Acc[:0]
	f.Gyr = f.Gyr[:0]
	if err := sc.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := sc.next(first, '}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
		key, err := sc.key()
		if err != nil {
			return err
		}
		if ok, err := d.headerField(key, &h); ok {
			if err != nil {
				return err
			}
			continue
		}
		switch string(key) {
		case "site":
			if err := d.markSeen(&h.seen, fieldSite, key); err != nil {
				return err
			}
			label, err := sc.string()
			if err != nil {
				return err
			}
			site, ok := siteFromLabel(label)
			if !ok {
				d.badSite = noteBad(d.badSite, label)
			}
			f.Site = site
		case "acc":
			if err := d.markSeen(&h.seen, fieldAcc, key); err != nil {
				return err
			}
			if f.Acc, err = d.triplesJSON(f.Acc); err != nil {
				return err
			}
		case "gyr":
			if err := d.markSeen(&h.seen, fieldGyr, key); err != nil {
				return err
			}
			if f.Gyr, err = d.triplesJSON(f.Gyr); err != nil {
				return err
			}
		default:
			if err := sc.skip(); err != nil {
				return err
			}
		}
	}
	if err := sc.end(); err != nil {
		return err
	}
	seq, err := h.check(imuFields)
	if err != nil {
		return err
	}
	f.Seq, f.T0, f.Rate = seq, h.t0, h.rate
	return nil
}

// triplesJSON reads [[x,y,z],...] appending to dst. A sample with other
// than 3 components sets d.badTriple (reported as ragged by checkIMU).
func (d *Decoder) triplesJSON(dst [][3]float64) ([][3]float64, *Error) {
	sc := &d.sc
	if err := sc.expect('['); err != nil {
		return dst, err
	}
	for first := true; ; first = false {
		more, err := sc.next(first, ']')
		if err != nil {
			return dst, err
		}
		if !more {
			return dst, nil
		}
		if err := sc.expect('['); err != nil {
			return dst, err
		}
		var t [3]float64
		k := 0
		for first := true; ; first = false {
			more, err := sc.next(first, ']')
			if err != nil {
				return dst, err
			}
			if !more {
				break
			}
			v, err := sc.float()
			if err != nil {
				return dst, err
			}
			if k < 3 {
				t[k] = v
			}
			k++
		}
		if k != 3 {
			d.badTriple = true
		}
		dst = append(dst, t)
	}
}

// checkIMU validates a parsed IMU frame.
func (d *Decoder) checkIMU(f *IMUFrame) *Error {
	if err := checkTime("t0", f.T0); err != nil {
		return err
	}
	if err := checkRate(f.Rate, MinIMURate, MaxIMURate); err != nil {
		return err
	}
	if f.Site.Segment == 0 || f.Site.Side == 0 {
		return reject(ReasonUnknownSite, "site %q: want <shank|thigh>_<left|right>", d.badSite)
	}
	if d.badTriple {
		return reject(ReasonRagged, "every acc and gyr sample must have 3 components")
	}
	if len(f.Acc) != len(f.Gyr) {
		return reject(ReasonRagged, "%d acc samples but %d gyr samples", len(f.Acc), len(f.Gyr))
	}
	if err := checkSpan(len(f.Acc), f.Rate); err != nil {
		return err
	}
	if err := checkTriples("acc", f.Acc, MaxAccG, "g"); err != nil {
		return err
	}
	return checkTriples("gyr", f.Gyr, MaxGyrDPS, "dps")
}

func checkTriples(name string, v [][3]float64, limit float64, unit string) *Error {
	for i, t := range v {
		for _, x := range t {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return reject(ReasonNonFinite, "%s sample %d is not a finite number", name, i)
			}
			if x > limit || x < -limit {
				return reject(ReasonOutOfRange, "%s sample %d has %g %s, limit ±%g", name, i, x, unit, limit)
			}
		}
	}
	return nil
}

// Fields of the status object.
const (
	fieldT = 1 << iota
	fieldBattery
	fieldFirmware
	fieldLeadOff
	fieldRSSI
)

// status decodes and validates a status payload.
func (d *Decoder) status(p []byte, s *StatusFrame) *Error {
	if err := d.size(p); err != nil {
		return err
	}
	d.resetBad()
	sc := &d.sc
	sc.reset(p)
	var (
		seen        uint
		tOut        bool
		fwTooLong   bool
		haveBattery bool
	)
	s.T, s.BatteryPct, s.RSSI = 0, -1, 0
	s.LeadOff = s.LeadOff[:0]
	fw := "" // stays "" unless the frame carries a firmware string
	if err := sc.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := sc.next(first, '}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
		key, err := sc.key()
		if err != nil {
			return err
		}
		var bit uint
		switch string(key) {
		case "t":
			bit = fieldT
		case "battery_pct":
			bit = fieldBattery
		case "firmware":
			bit = fieldFirmware
		case "lead_off":
			bit = fieldLeadOff
		case "rssi_dbm":
			bit = fieldRSSI
		default:
			if err := sc.skip(); err != nil {
				return err
			}
			continue
		}
		if err := d.markSeen(&seen, bit, key); err != nil {
			return err
		}
		// Optional fields may be null: Go's encoding/json writes nil
		// slices that way, and null plainly means "not reported".
		if bit != fieldT && sc.isNull() {
			continue
		}
		switch bit {
		case fieldT:
			s.T, tOut, err = sc.int()
		case fieldBattery:
			s.BatteryPct, err = sc.float()
			haveBattery = true
		case fieldFirmware:
			var b []byte
			if b, err = sc.string(); err == nil {
				switch {
				case len(b) > MaxFirmwareLen:
					fwTooLong = true
				case string(b) == s.Firmware:
					// Status frames repeat the same firmware; keep the old
					// string rather than allocating a new one.
					fw = s.Firmware
				default:
					fw = string(b)
				}
			}
		case fieldLeadOff:
			err = d.channelsJSON(&s.LeadOff)
		case fieldRSSI:
			s.RSSI, err = sc.float()
		}
		if err != nil {
			return err
		}
	}
	if err := sc.end(); err != nil {
		return err
	}
	s.Firmware = fw
	if seen&fieldT == 0 {
		return reject(ReasonMissingField, `missing field "t"`)
	}
	if tOut {
		s.T = -1 // does not fit int64: certainly not a plausible time
	}
	if err := checkTime("t", s.T); err != nil {
		return err
	}
	if haveBattery {
		if err := checkFinite("battery_pct", s.BatteryPct, 0, 100); err != nil {
			return err
		}
	}
	if fwTooLong {
		return reject(ReasonOutOfRange, "firmware longer than %d bytes", MaxFirmwareLen)
	}
	if !printable(s.Firmware) {
		return reject(ReasonOutOfRange, "firmware %q is not printable UTF-8", s.Firmware)
	}
	if err := checkChannels(s.LeadOff, d.badLabel); err != nil {
		return err
	}
	if seen&fieldRSSI != 0 && s.RSSI != 0 {
		return checkFinite("rssi_dbm", s.RSSI, MinRSSI, MaxRSSI)
	}
	return nil
}

func checkFinite(name string, v, lo, hi float64) *Error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return reject(ReasonNonFinite, "%s is not a finite number", name)
	}
	if v < lo || v > hi {
		return reject(ReasonOutOfRange, "%s %g outside %g..%g", name, v, lo, hi)
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters,
// so that a firmware string is safe in logs, tags and dashboards.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
