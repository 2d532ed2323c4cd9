package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Binary encoding, version 1. docs/wire-format.md documents it byte by
// byte; keep the two in step (TestDocHexExamples fails when they drift).
//
// Every frame is a 24-byte header, a body that depends on the stream, and a
// CRC-32 trailer. Samples are int16 counts times a float32 scale factor,
// which keeps a 1 kHz 2-channel EMG stream at about 4 kB/s and lets a
// microcontroller send raw ADC counts with its calibration as the scale.
const (
	binaryVersion   = 1
	binaryHeaderLen = 24
	binaryCRCLen    = 4
	emgChannelLen   = 8 // code, 3 reserved bytes, float32 scale
	imuScalesLen    = 8 // acc and gyr float32 scales
	maxCount        = math.MaxInt16
)

// Header offsets.
const (
	offMagic   = 0
	offVersion = 1
	offStream  = 2
	offUnit    = 3 // EMG: unit; IMU: site code
	offSeq     = 4
	offT0      = 8
	offRate    = 16 // uint32 millihertz
	offCount   = 20 // uint16 samples per channel
	offNCh     = 22 // EMG: channel count; IMU: 0
	offReserve = 23
)

// channelCode packs a channel into one byte: muscle in the high nibble, side
// in the low one, so calf_left is 0x11 and tibialis_right 0x42 in a hex dump.
func channelCode(c Channel) byte { return byte(c.Muscle)<<4 | byte(c.Side)&0x0f }

func channelFromCode(b byte) (Channel, bool) {
	c := Channel{Muscle: Muscle(b >> 4), Side: Side(b & 0x0f)}
	if c.Muscle < Calf || c.Muscle > Tibialis || c.Side < Left || c.Side > Right {
		return Channel{}, false
	}
	return c, true
}

// siteCode packs a site like channelCode: shank_left is 0x11, thigh_right 0x22.
func siteCode(s Site) byte { return byte(s.Segment)<<4 | byte(s.Side)&0x0f }

func siteFromCode(b byte) (Site, bool) {
	s := Site{Segment: Segment(b >> 4), Side: Side(b & 0x0f)}
	if s.Segment < Shank || s.Segment > Thigh || s.Side < Left || s.Side > Right {
		return Site{}, false
	}
	return s, true
}

// AppendEMGBinary appends f in the binary encoding to dst. Each channel gets
// its own scale factor, chosen from that channel's largest |value| so the
// int16 range is used fully; the quantisation error is at most half a
// scale step, max|value|/65534. Samples are written in f.Unit (a zero Unit
// means uV). It fails only for frames the format cannot carry (non-finite
// samples, unknown channels, ragged rows, more than 255 channels or 65535
// samples, a rate outside 0..4294967 Hz); frames that decoders would reject
// for their content, such as a rate of 100 Hz, are still encoded, so tests
// and simulators can produce them.
func AppendEMGBinary(dst []byte, f *EMGFrame) ([]byte, error) {
	if len(f.Channels) != len(f.Data) {
		return dst, fmt.Errorf("wire: %d channels but %d data rows", len(f.Channels), len(f.Data))
	}
	if len(f.Channels) > math.MaxUint8 {
		return dst, fmt.Errorf("wire: %d channels, binary limit %d", len(f.Channels), math.MaxUint8)
	}
	n := f.Len()
	unit := f.Unit
	if unit != Millivolt {
		unit = Microvolt
	}
	k := 1.0
	if unit == Millivolt {
		k = 1.0 / 1000
	}
	for i, row := range f.Data {
		if len(row) != n {
			return dst, fmt.Errorf("wire: data row %d has %d samples, row 0 has %d", i, len(row), n)
		}
		if _, ok := channelFromCode(channelCode(f.Channels[i])); !ok {
			return dst, fmt.Errorf("wire: channel %d (%v) has no binary code", i, f.Channels[i])
		}
	}
	dst, err := appendBinaryHeader(dst, StreamEMG, byte(unit), f.Seq, f.T0, f.Rate, n, byte(len(f.Channels)))
	if err != nil {
		return dst, err
	}
	start := len(dst) - binaryHeaderLen
	// Scales come first in the frame, so compute them all before samples.
	for i, row := range f.Data {
		m, err := maxAbs(row, k)
		if err != nil {
			return dst[:start], fmt.Errorf("wire: channel %v: %w", f.Channels[i], err)
		}
		scale, err := scaleFor(m)
		if err != nil {
			return dst[:start], fmt.Errorf("wire: channel %v: %w", f.Channels[i], err)
		}
		dst = append(dst, channelCode(f.Channels[i]), 0, 0, 0)
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(scale))
	}
	for i, row := range f.Data {
		scaleAt := start + binaryHeaderLen + i*emgChannelLen + 4
		scale := float64(math.Float32frombits(binary.LittleEndian.Uint32(dst[scaleAt:])))
		for _, v := range row {
			dst = binary.LittleEndian.AppendUint16(dst, uint16(quantise(v*k, scale)))
		}
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:])), nil
}

// AppendIMUBinary appends f in the binary encoding to dst, with one scale
// factor for all acc components and one for all gyr components. Like
// AppendEMGBinary it fails only for frames the format cannot carry.
func AppendIMUBinary(dst []byte, f *IMUFrame) ([]byte, error) {
	n := len(f.Acc)
	if len(f.Gyr) != n {
		return dst, fmt.Errorf("wire: %d acc samples but %d gyr samples", n, len(f.Gyr))
	}
	if _, ok := siteFromCode(siteCode(f.Site)); !ok {
		return dst, fmt.Errorf("wire: site %v has no binary code", f.Site)
	}
	accScale, err := tripleScale(f.Acc)
	if err != nil {
		return dst, fmt.Errorf("wire: acc: %w", err)
	}
	gyrScale, err := tripleScale(f.Gyr)
	if err != nil {
		return dst, fmt.Errorf("wire: gyr: %w", err)
	}
	dst, err = appendBinaryHeader(dst, StreamIMU, siteCode(f.Site), f.Seq, f.T0, f.Rate, n, 0)
	if err != nil {
		return dst, err
	}
	start := len(dst) - binaryHeaderLen
	dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(accScale))
	dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(gyrScale))
	for _, block := range [2]struct {
		v     [][3]float64
		scale float64
	}{{f.Acc, float64(accScale)}, {f.Gyr, float64(gyrScale)}} {
		for _, t := range block.v {
			for _, x := range t {
				dst = binary.LittleEndian.AppendUint16(dst, uint16(quantise(x, block.scale)))
			}
		}
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:])), nil
}

func appendBinaryHeader(dst []byte, s Stream, unitOrSite byte, seq uint32, t0 int64, rate float64, n int, nch byte) ([]byte, error) {
	if n > math.MaxUint16 {
		return dst, fmt.Errorf("wire: %d samples, binary limit %d", n, math.MaxUint16)
	}
	mhz := math.Round(rate * 1000)
	if !(mhz >= 0 && mhz <= math.MaxUint32) {
		return dst, fmt.Errorf("wire: rate %g Hz cannot be encoded", rate)
	}
	dst = append(dst, binaryMagic, binaryVersion, byte(s), unitOrSite)
	dst = binary.LittleEndian.AppendUint32(dst, seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(t0))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(mhz))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(n))
	return append(dst, nch, 0), nil
}

var errNonFinite = errors.New("non-finite sample")

// maxAbs returns max |x*k| over v, failing on non-finite values.
func maxAbs(v []float64, k float64) (float64, error) {
	m := 0.0
	for _, x := range v {
		x *= k
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, errNonFinite
		}
		m = max(m, math.Abs(x))
	}
	return m, nil
}

func tripleScale(v [][3]float64) (float32, error) {
	m := 0.0
	for _, t := range v {
		tm, err := maxAbs(t[:], 1)
		if err != nil {
			return 0, err
		}
		m = max(m, tm)
	}
	return scaleFor(m)
}

// minScale is the smallest normal float32. Below it float32 loses precision
// (subnormals), so scales are never smaller; values that tiny (1e-38 µV or
// g) are zero for any physical purpose.
const minScale = 0x1p-126

// scaleFor picks the scale factor for values up to maxAbs: the largest
// float32 s with s*32767 <= maxAbs, but at least minScale. Rounding s down
// rather than to nearest guarantees that decoded values never exceed the
// original maximum, so a frame just inside a validation limit stays inside it.
func scaleFor(maxAbs float64) (float32, error) {
	if maxAbs == 0 {
		return 1, nil // any positive scale represents all zeros
	}
	s := float32(maxAbs / maxCount)
	if math.IsInf(float64(s), 0) {
		return 0, errors.New("sample too large for a float32 scale factor")
	}
	for s > 0 && float64(s)*maxCount > maxAbs {
		s = math.Nextafter32(s, 0)
	}
	return max(s, minScale), nil
}

// quantise maps v to the nearest count, clamped to ±32767 (-32768 is never
// written, so the range is symmetric).
func quantise(v, scale float64) int16 {
	q := math.Round(v / scale)
	return int16(max(-maxCount, min(maxCount, q)))
}

// binaryHeader checks the parts of a binary frame that do not depend on the
// stream and returns the sample count and the header's EMG channel count.
func binaryHeader(p []byte, want Stream) (n, nch int, err *Error) {
	if len(p) < binaryHeaderLen+binaryCRCLen {
		return 0, 0, reject(ReasonBadBinary, "frame is %d bytes, shorter than a header", len(p))
	}
	if v := p[offVersion]; v != binaryVersion {
		return 0, 0, reject(ReasonBadVersion, "binary version %d, want %d", v, binaryVersion)
	}
	if s := Stream(p[offStream]); s != want {
		return 0, 0, reject(ReasonBadBinary, "frame is for stream %v, decoding %v", s, want)
	}
	if p[offReserve] != 0 {
		return 0, 0, reject(ReasonBadBinary, "reserved header byte is 0x%02x, want 0", p[offReserve])
	}
	n = int(binary.LittleEndian.Uint16(p[offCount:]))
	nch = int(p[offNCh])
	return n, nch, nil
}

// checkCRC verifies the length the header implies and the CRC trailer.
func checkCRC(p []byte, size int) *Error {
	if len(p) != size {
		return reject(ReasonBadBinary, "frame is %d bytes, header implies %d", len(p), size)
	}
	body := p[:size-binaryCRCLen]
	if got, want := binary.LittleEndian.Uint32(p[size-binaryCRCLen:]), crc32.ChecksumIEEE(body); got != want {
		return reject(ReasonBadBinary, "CRC is 0x%08x, content gives 0x%08x", got, want)
	}
	return nil
}

func readHeaderCommon(p []byte) (seq uint32, t0 int64, rate float64) {
	seq = binary.LittleEndian.Uint32(p[offSeq:])
	t0 = int64(binary.LittleEndian.Uint64(p[offT0:]))
	rate = float64(binary.LittleEndian.Uint32(p[offRate:])) / 1000
	return seq, t0, rate
}

// readScale reads a float32 scale factor and rejects unusable ones.
func readScale(p []byte, what string) (float64, *Error) {
	s := float64(math.Float32frombits(binary.LittleEndian.Uint32(p)))
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return 0, reject(ReasonNonFinite, "%s scale factor is not a finite number", what)
	}
	if s <= 0 {
		return 0, reject(ReasonBadBinary, "%s scale factor %g, want > 0", what, s)
	}
	return s, nil
}

// emgBinary parses a binary EMG frame into f (Data in the wire unit).
func (d *Decoder) emgBinary(p []byte, f *EMGFrame) *Error {
	n, nch, err := binaryHeader(p, StreamEMG)
	if err != nil {
		return err
	}
	if err := checkCRC(p, binaryHeaderLen+nch*(emgChannelLen+2*n)+binaryCRCLen); err != nil {
		return err
	}
	f.Seq, f.T0, f.Rate = readHeaderCommon(p)
	f.Unit = Unit(p[offUnit])
	if f.Unit != Microvolt && f.Unit != Millivolt {
		f.Unit = 0
		d.badUnit = fmt.Appendf(d.badUnit[:0], "code 0x%02x", p[offUnit])
	}
	f.Channels = f.Channels[:0]
	f.Data = f.Data[:0]
	// As in JSON, at most MaxChannels+1 channels are kept: enough to
	// reject the frame in checkEMG.
	keep := min(nch, MaxChannels+1)
	samples := p[binaryHeaderLen+nch*emgChannelLen:]
	for i := range keep {
		desc := p[binaryHeaderLen+i*emgChannelLen:]
		if desc[1]|desc[2]|desc[3] != 0 {
			return reject(ReasonBadBinary, "channel %d: reserved bytes are not 0", i)
		}
		c, ok := channelFromCode(desc[0])
		if !ok && len(d.badLabel) == 0 {
			d.badLabel = fmt.Appendf(d.badLabel, "code 0x%02x", desc[0])
		}
		scale, err := readScale(desc[4:], "channel")
		if err != nil {
			return err
		}
		f.Channels = append(f.Channels, c)
		f.Data = growRows(f.Data)
		row := f.Data[i][:0]
		for j := range n {
			row = append(row, float64(int16(binary.LittleEndian.Uint16(samples[2*(i*n+j):])))*scale)
		}
		f.Data[i] = row
	}
	return nil
}

// imuBinary parses a binary IMU frame into f.
func (d *Decoder) imuBinary(p []byte, f *IMUFrame) *Error {
	n, nch, err := binaryHeader(p, StreamIMU)
	if err != nil {
		return err
	}
	if nch != 0 {
		return reject(ReasonBadBinary, "channel count byte is %d in an IMU frame, want 0", nch)
	}
	if err := checkCRC(p, binaryHeaderLen+imuScalesLen+2*6*n+binaryCRCLen); err != nil {
		return err
	}
	f.Seq, f.T0, f.Rate = readHeaderCommon(p)
	site, ok := siteFromCode(p[offUnit])
	if !ok {
		d.badSite = fmt.Appendf(d.badSite[:0], "code 0x%02x", p[offUnit])
	}
	f.Site = site
	accScale, err := readScale(p[binaryHeaderLen:], "acc")
	if err != nil {
		return err
	}
	gyrScale, err := readScale(p[binaryHeaderLen+4:], "gyr")
	if err != nil {
		return err
	}
	body := p[binaryHeaderLen+imuScalesLen:]
	f.Acc = readTriples(f.Acc[:0], body[:6*n], accScale)
	f.Gyr = readTriples(f.Gyr[:0], body[6*n:12*n], gyrScale)
	return nil
}

func readTriples(dst [][3]float64, b []byte, scale float64) [][3]float64 {
	for i := 0; i+6 <= len(b); i += 6 {
		dst = append(dst, [3]float64{
			float64(int16(binary.LittleEndian.Uint16(b[i:]))) * scale,
			float64(int16(binary.LittleEndian.Uint16(b[i+2:]))) * scale,
			float64(int16(binary.LittleEndian.Uint16(b[i+4:]))) * scale,
		})
	}
	return dst
}
