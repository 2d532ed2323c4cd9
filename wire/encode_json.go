package wire

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendEMGJSON appends f as a contract EMG JSON object to dst, with the keys
// in the order of the spec: seq, t0, rate, unit, ch, data. Samples are written
// in f.Unit (Data holds microvolts, so millivolt frames are divided by 1000
// and written with 15 significant digits); a zero Unit is written as "uV".
// Other numbers use the shortest form that parses back to the same float64. A non-finite sample is written as null, which no
// decoder accepts: the encoder does not hide bad data, it lets validation
// catch it.
func AppendEMGJSON(dst []byte, f *EMGFrame) []byte {
	unit := f.Unit
	if unit != Millivolt {
		unit = Microvolt
	}
	dst = appendHeaderJSON(dst, f.Seq, f.T0, f.Rate)
	dst = append(dst, `,"unit":"`...)
	dst = append(dst, unit.String()...)
	dst = append(dst, `","ch":[`...)
	for i, c := range f.Channels {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, c.String())
	}
	dst = append(dst, `],"data":[`...)
	for i, row := range f.Data {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		for j, v := range row {
			if j > 0 {
				dst = append(dst, ',')
			}
			if unit == Millivolt {
				dst = appendMillivolts(dst, v)
			} else {
				dst = appendJSONFloat(dst, v)
			}
		}
		dst = append(dst, ']')
	}
	return append(dst, "]}"...)
}

// AppendIMUJSON appends f as a contract IMU JSON object to dst, with the keys
// seq, t0, rate, site, acc, gyr. Acceleration is in g, angular rate in
// degrees per second, one [x,y,z] triple per sample.
func AppendIMUJSON(dst []byte, f *IMUFrame) []byte {
	dst = appendHeaderJSON(dst, f.Seq, f.T0, f.Rate)
	dst = append(dst, `,"site":`...)
	dst = appendJSONString(dst, f.Site.String())
	dst = append(dst, `,"acc":`...)
	dst = appendTriples(dst, f.Acc)
	dst = append(dst, `,"gyr":`...)
	dst = appendTriples(dst, f.Gyr)
	return append(dst, '}')
}

// AppendStatusJSON appends s as a status JSON object to dst:
// {"t":..,"battery_pct":..,"firmware":..,"lead_off":[..],"rssi_dbm":..}.
// Optional fields are left out when they hold their "unknown" value:
// BatteryPct < 0, empty Firmware, no LeadOff channels, RSSI == 0.
func AppendStatusJSON(dst []byte, s *StatusFrame) []byte {
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, s.T, 10)
	if s.BatteryPct >= 0 || math.IsNaN(s.BatteryPct) {
		dst = append(dst, `,"battery_pct":`...)
		dst = appendJSONFloat(dst, s.BatteryPct)
	}
	if s.Firmware != "" {
		dst = append(dst, `,"firmware":`...)
		dst = appendJSONString(dst, s.Firmware)
	}
	if len(s.LeadOff) > 0 {
		dst = append(dst, `,"lead_off":[`...)
		for i, c := range s.LeadOff {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, c.String())
		}
		dst = append(dst, ']')
	}
	if s.RSSI != 0 {
		dst = append(dst, `,"rssi_dbm":`...)
		dst = appendJSONFloat(dst, s.RSSI)
	}
	return append(dst, '}')
}

func appendHeaderJSON(dst []byte, seq uint32, t0 int64, rate float64) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, uint64(seq), 10)
	dst = append(dst, `,"t0":`...)
	dst = strconv.AppendInt(dst, t0, 10)
	dst = append(dst, `,"rate":`...)
	return appendJSONFloat(dst, rate)
}

func appendTriples(dst []byte, v [][3]float64) []byte {
	dst = append(dst, '[')
	for i, t := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = appendJSONFloat(dst, t[0])
		dst = append(dst, ',')
		dst = appendJSONFloat(dst, t[1])
		dst = append(dst, ',')
		dst = appendJSONFloat(dst, t[2])
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

// appendJSONFloat writes v in the shortest form that round-trips. JSON has
// no NaN or Inf, so those become null (which decoders reject).
func appendJSONFloat(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, "null"...)
	}
	// 'g' switches to exponent form for very large or small magnitudes,
	// which JSON allows; integers print without a decimal point.
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// appendMillivolts writes a microvolt value in millivolts. Dividing by 1000
// in binary floating point turns 4.2 into 0.004200000000000001; 15
// significant digits hide that rounding noise (float64 carries 15.9) and
// still keep far more precision than any EMG front end delivers.
func appendMillivolts(dst []byte, uv float64) []byte {
	mv := uv / 1000
	if math.IsNaN(mv) || math.IsInf(mv, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, mv, 'g', 15, 64)
}

// appendJSONString writes s as a JSON string, escaping quotes, backslashes
// and control characters and replacing invalid UTF-8 with U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
