package export

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// cell is a decoded value: string, float64, int64, bool, time.Time, or nil
// for a missing value.
type cell = any

// table is a decoded table: column names and rows of cells.
type table struct {
	cols []string
	rows [][]cell
}

// colTypes maps column names to types.
func colTypes[R any](cols []column[R]) map[string]column[R] {
	m := map[string]column[R]{}
	for _, c := range cols {
		m[c.name] = c
	}
	return m
}

// expectTable turns rows into the table a reader should decode.
func expectTable[R any](cols []column[R], rows []R) table {
	var t table
	for _, c := range cols {
		t.cols = append(t.cols, c.name)
	}
	for i := range rows {
		var out []cell
		for _, c := range cols {
			out = append(out, cellOf(c.typ, c.get(&rows[i])))
		}
		t.rows = append(t.rows, out)
	}
	return t
}

func cellOf(typ colType, v value) cell {
	if v.null {
		return nil
	}
	switch typ {
	case tString:
		return v.s
	case tFloat:
		return v.f
	case tInt:
		return v.i
	case tBool:
		return v.b
	case tTime:
		return v.t.UTC()
	}
	return nil
}

// parseCell reads a CSV or JSON string into a typed cell.
func parseCell(typ colType, s string) (cell, error) {
	switch typ {
	case tString:
		return s, nil
	case tFloat:
		return strconv.ParseFloat(s, 64)
	case tInt:
		return strconv.ParseInt(s, 10, 64)
	case tBool:
		return strconv.ParseBool(s)
	case tTime:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, err
		}
		if len(s) != len("2006-01-02T15:04:05.000Z") || s[len(s)-1] != 'Z' {
			return nil, fmt.Errorf("time %q: want UTC RFC 3339 with milliseconds", s)
		}
		return t.UTC(), nil
	}
	return nil, fmt.Errorf("type %d", typ)
}

// readCSV reads a CSV table with encoding/csv.
func readCSV[R any](t *testing.T, path string, cols []column[R]) table {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return decodeCSV(t, f, cols)
}

func decodeCSV[R any](t *testing.T, r io.Reader, cols []column[R]) table {
	t.Helper()
	types := colTypes(cols)
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		t.Fatalf("csv header: %v", err)
	}
	out := table{cols: header}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("csv: %v", err)
		}
		row := make([]cell, len(rec))
		for i, s := range rec {
			c, ok := types[header[i]]
			if !ok {
				t.Fatalf("csv: unknown column %q", header[i])
			}
			if s == NA {
				if !c.optional {
					t.Fatalf("csv: n/a in required column %s", c.name)
				}
				continue
			}
			if row[i], err = parseCell(c.typ, s); err != nil {
				t.Fatalf("csv: column %s: %v", c.name, err)
			}
		}
		out.rows = append(out.rows, row)
	}
	return out
}

// readJSONL reads a JSON Lines table with encoding/json, checking that
// every line has the columns in order.
func readJSONL[R any](t *testing.T, path string, cols []column[R]) table {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out table
	for _, c := range cols {
		out.cols = append(out.cols, c.name)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		// Walk the tokens to check the key order, then decode values.
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("jsonl: line %q does not start an object", sc.Text())
		}
		row := make([]cell, len(cols))
		for i, c := range cols {
			key, err := dec.Token()
			if err != nil || key != c.name {
				t.Fatalf("jsonl: key %d = %v, want %q", i, key, c.name)
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatalf("jsonl: %s: %v", c.name, err)
			}
			if string(raw) == "null" {
				if !c.optional {
					t.Fatalf("jsonl: null in required column %s", c.name)
				}
				continue
			}
			switch c.typ {
			case tString, tTime:
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					t.Fatalf("jsonl: %s: %v", c.name, err)
				}
				if row[i], err = parseCell(c.typ, s); err != nil {
					t.Fatalf("jsonl: %s: %v", c.name, err)
				}
			case tBool:
				var v bool
				if err := json.Unmarshal(raw, &v); err != nil {
					t.Fatalf("jsonl: %s: %v", c.name, err)
				}
				row[i] = v
			default:
				if row[i], err = parseCell(c.typ, string(raw)); err != nil {
					t.Fatalf("jsonl: %s: %v", c.name, err)
				}
			}
		}
		if tok, err := dec.Token(); err != nil || tok != json.Delim('}') || dec.More() {
			t.Fatalf("jsonl: line %q has more than the columns", sc.Text())
		}
		out.rows = append(out.rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readParquet reads a Parquet table with parquet-go, checking the column
// types and that every column chunk is zstd-compressed.
func readParquet[R any](t *testing.T, path string, cols []column[R]) table {
	t.Helper()
	osf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer osf.Close()
	st, _ := osf.Stat()
	f, err := parquet.OpenFile(osf, st.Size())
	if err != nil {
		t.Fatalf("parquet: %v", err)
	}
	for _, rg := range f.Metadata().RowGroups {
		for _, cc := range rg.Columns {
			if cc.MetaData.Codec != format.Zstd {
				t.Fatalf("parquet: column %v compressed with %v, want ZSTD", cc.MetaData.PathInSchema, cc.MetaData.Codec)
			}
		}
	}
	schemaCols := f.Schema().Columns()
	types := colTypes(cols)
	out := table{}
	for _, p := range schemaCols {
		out.cols = append(out.cols, p[0])
	}
	for i, name := range out.cols {
		c := types[name]
		leaf, _ := f.Schema().Lookup(name)
		if leaf.Node.Optional() != c.optional {
			t.Fatalf("parquet: column %s optional=%v, want %v", name, leaf.Node.Optional(), c.optional)
		}
		var want parquet.Kind
		switch c.typ {
		case tString:
			want = parquet.ByteArray
		case tFloat:
			want = parquet.Double
		case tInt, tTime:
			want = parquet.Int64
		case tBool:
			want = parquet.Boolean
		}
		if k := leaf.Node.Type().Kind(); k != want {
			t.Fatalf("parquet: column %d %s has kind %v, want %v", i, name, k, want)
		}
		if lt := leaf.Node.Type().LogicalType(); c.typ == tTime && (lt == nil || !strings.HasPrefix(lt.String(), "TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS")) {
			t.Fatalf("parquet: column %s is not a timestamp", name)
		}
	}
	rr := parquet.NewReader(f)
	defer rr.Close()
	buf := make([]parquet.Row, 64)
	for {
		n, err := rr.ReadRows(buf)
		for _, pr := range buf[:n] {
			row := make([]cell, len(out.cols))
			for _, v := range pr {
				i := v.Column()
				if v.IsNull() {
					continue
				}
				switch c := types[out.cols[i]]; c.typ {
				case tString:
					row[i] = string(v.ByteArray())
				case tFloat:
					row[i] = v.Double()
				case tInt:
					row[i] = v.Int64()
				case tBool:
					row[i] = v.Boolean()
				case tTime:
					row[i] = time.UnixMilli(v.Int64()).UTC()
				}
			}
			out.rows = append(out.rows, row)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("parquet: %v", err)
		}
	}
	return out
}

// equalTables reports the first difference between two tables.
func equalTables(got, want table) error {
	if fmt.Sprint(got.cols) != fmt.Sprint(want.cols) {
		return fmt.Errorf("columns %v, want %v", got.cols, want.cols)
	}
	if len(got.rows) != len(want.rows) {
		return fmt.Errorf("%d rows, want %d", len(got.rows), len(want.rows))
	}
	for i := range want.rows {
		for j := range want.cols {
			g, w := got.rows[i][j], want.rows[i][j]
			if !equalCells(g, w) {
				return fmt.Errorf("row %d column %s = %#v, want %#v", i, want.cols[j], g, w)
			}
		}
	}
	return nil
}

func equalCells(a, b cell) bool {
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || (math.IsNaN(x) && math.IsNaN(y)))
	}
	return a == b
}
