package report

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// num formats v with prec decimals, or "n/a" when it is unknown (NaN).
func num(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// durationText writes seconds for people: "42 s", "3 min 05 s", "1 h 02 min".
func durationText(sec float64) string {
	if math.IsNaN(sec) || math.IsInf(sec, 0) {
		return "n/a"
	}
	s := int64(math.Round(sec))
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s < 3600:
		return fmt.Sprintf("%d min %02d s", s/60, s%60)
	}
	return fmt.Sprintf("%d h %02d min", s/3600, s%3600/60)
}

// shortDuration writes a window width: "30 s", "5 min".
func shortDuration(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return fmt.Sprintf("%g s", d.Seconds())
}

// hours writes a number of hours with two decimals, or "n/a".
func hours(h float64) string {
	if s := num(h, 2); s != "n/a" {
		return s + " h"
	}
	return "n/a"
}

// seconds writes a time in seconds with one decimal, or "n/a".
func seconds(v float64) string {
	if s := num(v, 1); s != "n/a" {
		return s + " s"
	}
	return "n/a"
}
