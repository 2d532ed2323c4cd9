package wire

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a small strict JSON reader over one payload. It exists instead
// of encoding/json because the decoders run once per frame on every device:
// encoding/json allocates per call and per number, matches keys
// case-insensitively and cannot tell a repeated key from a single one, while
// this scanner reads numbers straight into the caller's slices without
// allocating and reports a byte offset with every syntax error.
//
// Objects and arrays are read by the decoders themselves (they know the
// schema); the scanner offers the tokens and skips unknown values.
type scanner struct {
	b   []byte
	i   int
	str []byte // scratch for strings that contain escapes
}

// maxSkipDepth bounds nesting inside unknown fields so that a hostile
// payload cannot make skipping expensive; real payloads never nest deeply.
const maxSkipDepth = 64

func (s *scanner) reset(b []byte) {
	s.b = b
	s.i = 0
}

func (s *scanner) errorf(format string, args ...any) *Error {
	e := reject(ReasonBadJSON, format, args...)
	e.Detail = "offset " + strconv.Itoa(s.i) + ": " + e.Detail
	return e
}

// ws skips JSON whitespace.
func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// expect skips whitespace and consumes c.
func (s *scanner) expect(c byte) *Error {
	if s.peek() != c {
		return s.unexpected(string(c))
	}
	s.i++
	return nil
}

func (s *scanner) unexpected(want string) *Error {
	if s.i >= len(s.b) {
		return s.errorf("unexpected end of input, want %s", want)
	}
	return s.errorf("unexpected %q, want %s", s.b[s.i], want)
}

// end checks that nothing but whitespace follows the top-level value.
func (s *scanner) end() *Error {
	if s.peek() != 0 || s.i < len(s.b) {
		return s.errorf("data after the top-level object")
	}
	return nil
}

// next is called after '{' or '[' (first == true) or after an element, and
// reports whether another element follows, consuming the ',' between
// elements and the closing bracket at the end.
func (s *scanner) next(first bool, closing byte) (bool, *Error) {
	c := s.peek()
	if c == closing {
		s.i++
		return false, nil
	}
	if first {
		return true, nil
	}
	if c != ',' {
		return false, s.unexpected("',' or '" + string(closing) + "'")
	}
	s.i++
	return true, nil
}

// isNull consumes a null literal if one comes next.
func (s *scanner) isNull() bool {
	if s.peek() == 'n' && len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// key reads an object key and the ':' after it.
func (s *scanner) key() ([]byte, *Error) {
	k, err := s.string()
	if err != nil {
		return nil, err
	}
	return k, s.expect(':')
}

// string reads a JSON string. The result aliases the payload when the
// string has no escapes and the scratch buffer otherwise; either way it is
// only valid until the next call.
func (s *scanner) string() ([]byte, *Error) {
	if s.peek() != '"' {
		return nil, s.unexpected("string")
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], nil
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			return nil, s.errorf("control character in string")
		}
		s.i++
	}
	return nil, s.errorf("unterminated string")
}

// escaped finishes a string that contains escapes, decoding it into s.str.
func (s *scanner) escaped(start int) ([]byte, *Error) {
	s.str = append(s.str[:0], s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.str, nil
		case c < 0x20:
			return nil, s.errorf("control character in string")
		case c != '\\':
			s.str = append(s.str, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			break
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			s.str = append(s.str, e)
		case 'b':
			s.str = append(s.str, '\b')
		case 'f':
			s.str = append(s.str, '\f')
		case 'n':
			s.str = append(s.str, '\n')
		case 'r':
			s.str = append(s.str, '\r')
		case 't':
			s.str = append(s.str, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, s.errorf("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// A surrogate pair is two escapes; a lone half becomes U+FFFD.
				r2 := utf8.RuneError
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					save := s.i
					s.i += 2
					lo, ok := s.hex4()
					if !ok {
						return nil, s.errorf("bad \\u escape")
					}
					if r2 = utf16.DecodeRune(r, lo); r2 == utf8.RuneError {
						s.i = save
					}
				}
				r = r2
			}
			s.str = utf8.AppendRune(s.str, r)
		default:
			return nil, s.errorf("bad escape \\%c", e)
		}
	}
	return nil, s.errorf("unterminated string")
}

func (s *scanner) hex4() (rune, bool) {
	if len(s.b)-s.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	s.i += 4
	return r, true
}

// number reads a number in strict JSON syntax and returns its text and
// whether it is an integer (no fraction, no exponent). The syntax check
// matters: strconv alone would also accept "inf", "0x1p3" or "+1".
func (s *scanner) number() (raw []byte, integer bool, err *Error) {
	s.ws()
	start := s.i
	b := s.b
	i := s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		s.i = i
		return nil, false, s.unexpected("number")
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return nil, false, s.errorf("digit expected after decimal point")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return nil, false, s.errorf("digit expected in exponent")
		}
	}
	s.i = i
	return b[start:i], integer, nil
}

// float reads a number as float64. Numbers too large for float64 come back
// as ±Inf and are rejected later by validation (non_finite), so syntax and
// meaning stay separate.
func (s *scanner) float() (float64, *Error) {
	raw, _, err := s.number()
	if err != nil {
		return 0, err
	}
	if v, ok := fastFloat(raw); ok {
		return v, nil
	}
	// string(raw) does not allocate here: the conversion does not escape
	// and numbers are short enough for the compiler's stack buffer.
	v, _ := strconv.ParseFloat(string(raw), 64)
	// After the syntax check only range errors are possible, and then v is
	// ±Inf or ±0, which validation judges.
	return v, nil
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// fastFloat converts the common short numbers ("-12.5", "3", "1e-3")
// without strconv. When the decimal mantissa fits in 53 bits and the power
// of ten is exact, one multiplication or division by it is correctly
// rounded (Clinger's fast path), so the result equals strconv's. raw has
// already passed the JSON number syntax check. ok is false when the fast
// path does not apply.
func fastFloat(raw []byte) (float64, bool) {
	i, neg := 0, false
	if raw[0] == '-' {
		neg, i = true, 1
	}
	var mant uint64
	digits, fracDigits, dot := 0, 0, false
	for ; i < len(raw); i++ {
		c := raw[i]
		if c == '.' {
			dot = true
			continue
		}
		if c == 'e' || c == 'E' {
			break
		}
		if digits >= 15 {
			return 0, false // might not fit in 53 bits
		}
		mant = mant*10 + uint64(c-'0')
		if mant != 0 {
			digits++ // leading zeros do not count
		}
		if dot {
			fracDigits++
		}
	}
	exp := -fracDigits
	if i < len(raw) { // exponent
		i++
		eneg := false
		if raw[i] == '+' || raw[i] == '-' {
			eneg = raw[i] == '-'
			i++
		}
		e := 0
		for ; i < len(raw); i++ {
			if e > 1000 {
				return 0, false
			}
			e = e*10 + int(raw[i]-'0')
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	v := float64(mant)
	switch {
	case exp == 0:
	case exp > 0 && exp < len(pow10):
		v *= pow10[exp]
	case exp < 0 && -exp < len(pow10):
		v /= pow10[-exp]
	default:
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// int reads an integer-valued number. ok is false when the number has a
// fraction or exponent; overflow reports ok with out == true so callers can
// reject it as out of range rather than as bad syntax.
func (s *scanner) int() (v int64, out bool, err *Error) {
	raw, integer, err := s.number()
	if err != nil {
		return 0, false, err
	}
	if !integer {
		return 0, false, s.errorf("integer expected, got %s", clip(string(raw)))
	}
	v, perr := strconv.ParseInt(string(raw), 10, 64)
	if perr != nil {
		return 0, true, nil
	}
	return v, false, nil
}

// skip skips one value of any type, checking its syntax.
func (s *scanner) skip() *Error {
	return s.skipDepth(0)
}

func (s *scanner) skipDepth(depth int) *Error {
	if depth > maxSkipDepth {
		return s.errorf("nesting deeper than %d", maxSkipDepth)
	}
	switch c := s.peek(); c {
	case '{':
		s.i++
		for first := true; ; first = false {
			more, err := s.next(first, '}')
			if err != nil {
				return err
			}
			if !more {
				return nil
			}
			if _, err := s.key(); err != nil {
				return err
			}
			if err := s.skipDepth(depth + 1); err != nil {
				return err
			}
		}
	case '[':
		s.i++
		for first := true; ; first = false {
			more, err := s.next(first, ']')
			if err != nil {
				return err
			}
			if !more {
				return nil
			}
			if err := s.skipDepth(depth + 1); err != nil {
				return err
			}
		}
	case '"':
		_, err := s.string()
		return err
	case 't', 'f', 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return nil
			}
		}
		return s.unexpected("value")
	default:
		_, _, err := s.number()
		return err
	}
}
