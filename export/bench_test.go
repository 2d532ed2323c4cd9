package export

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// resetPeakRSS clears the kernel's high-water mark of this process's
// resident memory (Linux: writing 5 to clear_refs), so that peakRSS
// measures only what follows.
func resetPeakRSS(b *testing.B) {
	b.Helper()
	runtime.GC()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset the peak RSS (%v): it includes the setup", err)
	}
}

// peakRSS returns the process's peak resident memory in MiB (VmHWM).
func peakRSS(b *testing.B) float64 {
	b.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:")); ok {
			kb, err := strconv.Atoi(string(bytes.Fields(v)[0]))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// BenchmarkExport measures the export itself (rows, summaries, pseudonyms,
// formats, files) on generated device-nights, without a database: 100
// devices and 1000 events per night, over 1 or 10 nights (100 000 or
// 1 000 000 events). Peak RSS must not grow with the number of events.
//
//	go test -run XXX -bench Export -benchtime 1x ./export/
func BenchmarkExport(b *testing.B) {
	p, err := NewPseudonymizer([]byte(testKey))
	if err != nil {
		b.Fatal(err)
	}
	for _, nights := range []int{1, 10} {
		for _, formats := range [][]Format{{FormatCSV}, {FormatJSONL}, {FormatParquet}, {FormatEDF}, {FormatCSV, FormatJSONL, FormatParquet, FormatEDF}} {
			name := fmt.Sprintf("events=%d/%v", nights*100*1000, formats)
			b.Run(name, func(b *testing.B) {
				start := time.Date(2025, 1, 1, 18, 0, 0, 0, time.UTC)
				src := &synthSource{devices: 100, nNights: nights, perNight: 1000, start: start}
				opt := Options{From: start, To: start.AddDate(0, 0, nights), Nights: DefaultNights(time.UTC), Pseudonyms: p}
				resetPeakRSS(b)
				b.ResetTimer()
				for i := range b.N {
					dir := filepath.Join(b.TempDir(), strconv.Itoa(i))
					m, err := Run(b.Context(), src, dir, formats, opt)
					if err != nil {
						b.Fatal(err)
					}
					if m.Rows.Events != int64(nights*100*1000) {
						b.Fatalf("%d events exported", m.Rows.Events)
					}
					b.StopTimer()
					os.RemoveAll(dir)
					b.StartTimer()
				}
				b.ReportMetric(peakRSS(b), "peak-RSS-MiB")
				b.ReportMetric(float64(nights*100*1000)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
