package export

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// Format is an output format.
type Format string

// The formats. CSV, JSON Lines and Parquet hold the tables; EDF+ holds one
// file per subject and night with the events as annotations (and the
// envelope windows as signals).
const (
	FormatCSV     Format = "csv"
	FormatJSONL   Format = "jsonl"
	FormatParquet Format = "parquet"
	FormatEDF     Format = "edf"
)

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatCSV, FormatJSONL, FormatParquet, FormatEDF:
		return f, nil
	}
	return "", fmt.Errorf("export: format %q: want csv, jsonl, parquet or edf", s)
}

// Ext returns the file name extension of the format.
func (f Format) Ext() string {
	return string(f)
}

// ContentType returns the media type of the format's files.
func (f Format) ContentType() string {
	switch f {
	case FormatCSV:
		return "text/csv; charset=utf-8; header=present"
	case FormatJSONL:
		return "application/jsonl; charset=utf-8"
	case FormatParquet:
		return "application/vnd.apache.parquet"
	}
	return "application/octet-stream"
}

// NA is how CSV writes a missing value.
const NA = "n/a"

// timeLayout is RFC 3339 in UTC with milliseconds, as every time is written.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// rowWriter writes the rows of one table.
type rowWriter[R any] interface {
	write(r *R) error
	// close finishes the table (Parquet writes its footer); it does not
	// close the underlying file.
	close() error
}

// newRowWriter returns a writer of format f for a table with cols.
func newRowWriter[R any](f Format, w io.Writer, name string, cols []column[R], meta map[string]string) (rowWriter[R], error) {
	switch f {
	case FormatCSV:
		return newCSVWriter(w, cols)
	case FormatJSONL:
		return &jsonlWriter[R]{w: bufio.NewWriterSize(w, 64<<10), cols: cols}, nil
	case FormatParquet:
		return newParquetWriter(w, name, cols, meta)
	}
	return nil, fmt.Errorf("export: format %q has no tables", f)
}

// appendFloat writes a float in the shortest form that reads back exactly.
// Non-finite values cannot occur in our data (the store drops them), but
// if one did it must not produce invalid JSON.
func appendFloat(b []byte, f float64) []byte {
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// csvWriter writes RFC 4180 CSV with a header line. It formats fields
// itself rather than through encoding/csv, whose Write takes []string and
// so would allocate every number.
type csvWriter[R any] struct {
	w    *bufio.Writer
	cols []column[R]
	line []byte
}

func newCSVWriter[R any](w io.Writer, cols []column[R]) (*csvWriter[R], error) {
	c := &csvWriter[R]{w: bufio.NewWriterSize(w, 64<<10), cols: cols}
	for i, col := range cols {
		if i > 0 {
			c.line = append(c.line, ',')
		}
		c.line = appendCSVField(c.line, col.name)
	}
	c.line = append(c.line, "\r\n"...)
	_, err := c.w.Write(c.line)
	return c, err
}

// appendCSVField quotes s when it has to be (separator, quote, line break,
// or leading or trailing space that some readers would trim).
func appendCSVField(b []byte, s string) []byte {
	quote := s != "" && (s[0] == ' ' || s[len(s)-1] == ' ')
	for i := 0; i < len(s) && !quote; i++ {
		switch s[i] {
		case ',', '"', '\r', '\n':
			quote = true
		}
	}
	if !quote {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

func (c *csvWriter[R]) write(r *R) error {
	c.line = c.line[:0]
	for i := range c.cols {
		col := &c.cols[i]
		if i > 0 {
			c.line = append(c.line, ',')
		}
		v := col.get(r)
		if v.null || (col.typ == tFloat && !finite(v.f)) {
			c.line = append(c.line, NA...)
			continue
		}
		switch col.typ {
		case tString:
			c.line = appendCSVField(c.line, v.s)
		case tFloat:
			c.line = appendFloat(c.line, v.f)
		case tInt:
			c.line = strconv.AppendInt(c.line, v.i, 10)
		case tBool:
			c.line = strconv.AppendBool(c.line, v.b)
		case tTime:
			c.line = v.t.UTC().AppendFormat(c.line, timeLayout)
		}
	}
	c.line = append(c.line, "\r\n"...)
	_, err := c.w.Write(c.line)
	return err
}

func (c *csvWriter[R]) close() error { return c.w.Flush() }

// jsonlWriter writes one JSON object per line, keys in column order,
// missing values as null.
type jsonlWriter[R any] struct {
	w    *bufio.Writer
	cols []column[R]
	line []byte
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029': // line separators break naive JSON Lines readers
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func (j *jsonlWriter[R]) write(r *R) error {
	j.line = append(j.line[:0], '{')
	for i := range j.cols {
		col := &j.cols[i]
		if i > 0 {
			j.line = append(j.line, ',')
		}
		j.line = appendJSONString(j.line, col.name)
		j.line = append(j.line, ':')
		v := col.get(r)
		if v.null || (col.typ == tFloat && !finite(v.f)) {
			j.line = append(j.line, "null"...)
			continue
		}
		switch col.typ {
		case tString:
			j.line = appendJSONString(j.line, v.s)
		case tFloat:
			j.line = strconv.AppendFloat(j.line, v.f, 'g', -1, 64)
		case tInt:
			j.line = strconv.AppendInt(j.line, v.i, 10)
		case tBool:
			j.line = strconv.AppendBool(j.line, v.b)
		case tTime:
			j.line = append(j.line, '"')
			j.line = v.t.UTC().AppendFormat(j.line, timeLayout)
			j.line = append(j.line, '"')
		}
	}
	j.line = append(j.line, '}', '\n')
	_, err := j.w.Write(j.line)
	return err
}

func (j *jsonlWriter[R]) close() error { return j.w.Flush() }

// parquetRowGroup bounds the rows of one row group: the writer holds a row
// group's pages in memory until it is complete, so this bounds memory.
const parquetRowGroup = 64 << 10

// parquetWriter writes typed, zstd-compressed Parquet columns: strings as
// UTF-8 byte arrays, floats as doubles, integers as int64, times as
// timestamps in milliseconds (UTC), missing values as nulls.
type parquetWriter[R any] struct {
	w    *parquet.GenericWriter[any]
	cols []column[R]
	row  parquet.Row
	buf  []parquet.Row
}

// orderedGroup is a Parquet group whose columns keep the order given:
// parquet.Group is a map and sorts its fields by name, which would scatter
// the columns researchers expect side by side (onset next to end).
type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func (g *orderedGroup) Fields() []parquet.Field { return g.fields }

// namedField names a node within an orderedGroup.
type namedField struct {
	parquet.Node
	name string
}

func (f *namedField) Name() string { return f.name }

// Value is not used for writing parquet.Row values.
func (f *namedField) Value(base reflect.Value) reflect.Value { return base }

func parquetNode(typ colType, optional bool) parquet.Node {
	var n parquet.Node
	switch typ {
	case tString:
		n = parquet.String()
	case tFloat:
		n = parquet.Leaf(parquet.DoubleType)
	case tInt:
		n = parquet.Int(64)
	case tBool:
		n = parquet.Leaf(parquet.BooleanType)
	case tTime:
		n = parquet.TimestampAdjusted(parquet.Millisecond, true)
	}
	if optional {
		n = parquet.Optional(n)
	}
	return n
}

// parquetSchema returns the schema of a table with cols.
func parquetSchema[R any](name string, cols []column[R]) *parquet.Schema {
	g := &orderedGroup{Group: parquet.Group{}}
	for _, c := range cols {
		n := parquetNode(c.typ, c.optional)
		g.Group[c.name] = n
		g.fields = append(g.fields, &namedField{Node: n, name: c.name})
	}
	return parquet.NewSchema(name, g)
}

func newParquetWriter[R any](w io.Writer, name string, cols []column[R], meta map[string]string) (*parquetWriter[R], error) {
	opts := []parquet.WriterOption{
		parquetSchema(name, cols),
		// One codec for all columns: each codec keeps its own pool of
		// encoders, and a zstd encoder holds megabytes of history, so a
		// codec per column cost 20 MiB per column.
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedDefault}),
		parquet.MaxRowsPerRowGroup(parquetRowGroup),
		parquet.CreatedBy("crampwatch export", "", ""),
	}
	for k, v := range meta {
		opts = append(opts, parquet.KeyValueMetadata(k, v))
	}
	// GenericWriter[any] takes its schema from the options and rows as
	// parquet.Row values, which need no reflection.
	pw := &parquetWriter[R]{w: parquet.NewGenericWriter[any](w, opts...), cols: cols}
	pw.row = make(parquet.Row, len(cols))
	pw.buf = make([]parquet.Row, 1)
	return pw, nil
}

func (p *parquetWriter[R]) write(r *R) error {
	for i := range p.cols {
		col := &p.cols[i]
		v := col.get(r)
		var pv parquet.Value
		if v.null || (col.typ == tFloat && !finite(v.f)) {
			if !col.optional {
				return fmt.Errorf("export: parquet: column %s: missing value", col.name)
			}
			p.row[i] = parquet.NullValue().Level(0, 0, i)
			continue
		}
		switch col.typ {
		case tString:
			pv = parquet.ByteArrayValue([]byte(v.s))
		case tFloat:
			pv = parquet.DoubleValue(v.f)
		case tInt:
			pv = parquet.Int64Value(v.i)
		case tBool:
			pv = parquet.BooleanValue(v.b)
		case tTime:
			pv = parquet.Int64Value(v.t.UnixMilli())
		}
		def := 0
		if col.optional {
			def = 1
		}
		p.row[i] = pv.Level(0, def, i)
	}
	p.buf[0] = p.row
	if _, err := p.w.WriteRows(p.buf); err != nil {
		return fmt.Errorf("export: parquet: %w", err)
	}
	return nil
}

func (p *parquetWriter[R]) close() error {
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("export: parquet: %w", err)
	}
	return nil
}

// truncMilli cuts t to the millisecond in UTC, the precision of every
// exported time, so that all formats hold the same instant.
func truncMilli(t time.Time) time.Time {
	return time.UnixMilli(t.UnixMilli()).UTC()
}
