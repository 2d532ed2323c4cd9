package wire

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestFastFloat checks that the fast path agrees bit for bit with strconv.
func TestFastFloat(t *testing.T) {
	cases := []string{
		"0", "-0", "1", "-1", "12.5", "-4.0", "8.1", "0.1", "0.3", "-1.7", "4.2",
		"123456789012345", "1234567890123456", "0.000001234", "1e22", "1e23", "1e-22", "1e-23",
		"9007199254740993", "1.5e3", "-2E-5", "1e+2", "123456.789012345", "0.0000000000000000000001",
		"100000", "-99999.99", "3.14159265358979", "1e308", "1e400", "2.2250738585072014e-308",
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		v := (r.Float64()*2 - 1) * math.Pow(10, float64(r.IntN(12)-6))
		cases = append(cases, strconv.FormatFloat(v, 'g', -1, 64), strconv.FormatFloat(v, 'f', r.IntN(6), 64))
	}
	for _, c := range cases {
		want, _ := strconv.ParseFloat(c, 64)
		var sc scanner
		sc.reset([]byte(c))
		got, err := sc.float()
		if err != nil {
			t.Fatalf("%q: %v", c, err)
		}
		if math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%q: got %v, strconv says %v", c, got, want)
		}
	}
}
