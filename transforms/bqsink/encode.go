package bqsink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter/adapt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/railyard/railyard/schemas"
)

// BigQuery's TIMESTAMP range, in microseconds since the epoch:
// 0001-01-01 00:00:00 to 9999-12-31 23:59:59.999999 UTC.
const (
	minTimestampMicros = -62135596800000000
	maxTimestampMicros = 253402300799999999
)

// Encoder turns rows of one Railyard row type into Storage Write API rows:
// serialized protocol buffer messages whose descriptor is derived, like the
// table's schema, from the type's bq tags. Build it once per type with
// EncoderFor; it is safe for concurrent use.
type Encoder struct {
	rowType reflect.Type
	schema  bigquery.Schema
	msg     protoreflect.MessageDescriptor
	desc    *descriptorpb.DescriptorProto
	cols    []column
	byName  map[string]*column
}

// column is one field of the row type and the proto field it fills.
type column struct {
	name     string
	typ      bigquery.FieldType // GoogleSQL: STRING, INT64, FLOAT64, BOOL, BYTES, TIMESTAMP, JSON
	index    []int              // path to the Go field, through embedded structs
	nullable bool               // a pointer (or []byte) field: nil is NULL
	repeated bool
	field    protoreflect.FieldDescriptor
}

// RowError is a value BigQuery would reject, found before sending: the row
// becomes a dead letter instead.
type RowError struct {
	Column string
	Msg    string
}

func (e *RowError) Error() string { return fmt.Sprintf("column %s: %s", e.Column, e.Msg) }

var encoders sync.Map // reflect.Type → *Encoder

// EncoderFor returns the encoder of a row type (a struct with bq tags, as
// schemas.SchemaOf reads them), building it on first use.
func EncoderFor(t reflect.Type) (*Encoder, error) {
	if e, ok := encoders.Load(t); ok {
		return e.(*Encoder), nil
	}
	e, err := newEncoder(t)
	if err != nil {
		return nil, err
	}
	actual, _ := encoders.LoadOrStore(t, e)
	return actual.(*Encoder), nil
}

func newEncoder(t reflect.Type) (*Encoder, error) {
	schema, err := schemas.SchemaOf(t)
	if err != nil {
		return nil, fmt.Errorf("encoder for %v: %w", t, err)
	}
	storageSchema, err := adapt.BQSchemaToStorageTableSchema(legacyTypes(schema))
	if err != nil {
		return nil, fmt.Errorf("encoder for %v: %w", t, err)
	}
	d, err := adapt.StorageSchemaToProto2Descriptor(storageSchema, "row")
	if err != nil {
		return nil, fmt.Errorf("encoder for %v: %w", t, err)
	}
	msg, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("encoder for %v: descriptor is %T, not a message", t, d)
	}
	desc, err := adapt.NormalizeDescriptor(msg)
	if err != nil {
		return nil, fmt.Errorf("encoder for %v: %w", t, err)
	}
	e := &Encoder{rowType: t, schema: schema, msg: msg, desc: desc, byName: map[string]*column{}}
	fields := taggedFields(t, nil)
	if len(fields) != len(schema) {
		return nil, fmt.Errorf("encoder for %v: %d tagged fields for %d columns", t, len(fields), len(schema))
	}
	e.cols = make([]column, len(schema))
	for i, fs := range schema {
		f := fields[i]
		name, _, _ := strings.Cut(f.Tag.Get("bq"), ",")
		if name != fs.Name {
			return nil, fmt.Errorf("encoder for %v: field %s is column %q, schema says %q", t, f.Name, name, fs.Name)
		}
		pf := msg.Fields().ByName(protoreflect.Name(fs.Name))
		if pf == nil {
			return nil, fmt.Errorf("encoder for %v: no proto field for column %s", t, fs.Name)
		}
		if pf.IsPacked() {
			return nil, fmt.Errorf("encoder for %v: column %s is a packed list; Encode writes lists unpacked", t, fs.Name)
		}
		e.cols[i] = column{
			name:     fs.Name,
			typ:      fs.Type,
			index:    f.Index,
			nullable: !fs.Required && !fs.Repeated,
			repeated: fs.Repeated,
			field:    pf,
		}
		e.byName[fs.Name] = &e.cols[i]
	}
	return e, nil
}

// taggedFields lists the fields of t that are columns, in schema order,
// with their index path from t (embedded structs add their fields in place).
func taggedFields(t reflect.Type, prefix []int) []reflect.StructField {
	var out []reflect.StructField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		f.Index = append(append([]int{}, prefix...), i)
		if f.Anonymous {
			out = append(out, taggedFields(f.Type, f.Index)...)
			continue
		}
		out = append(out, f)
	}
	return out
}

// legacyTypes maps the GoogleSQL type names Railyard's schemas use to the
// legacy names the adapt package knows (INT64 → INTEGER, FLOAT64 → FLOAT,
// BOOL → BOOLEAN); both name the same BigQuery types.
func legacyTypes(s bigquery.Schema) bigquery.Schema {
	out := make(bigquery.Schema, len(s))
	for i, f := range s {
		c := *f
		switch c.Type {
		case "INT64":
			c.Type = bigquery.IntegerFieldType
		case "FLOAT64":
			c.Type = bigquery.FloatFieldType
		case "BOOL":
			c.Type = bigquery.BooleanFieldType
		}
		out[i] = &c
	}
	return out
}

// RowType is the Go type the encoder encodes.
func (e *Encoder) RowType() reflect.Type { return e.rowType }

// Schema is the BigQuery schema of the row type.
func (e *Encoder) Schema() bigquery.Schema { return e.schema }

// Columns lists the column names in schema order.
func (e *Encoder) Columns() []string {
	names := make([]string, len(e.cols))
	for i, c := range e.cols {
		names[i] = c.name
	}
	return names
}

// Descriptor is the self-contained descriptor that the Storage Write API
// needs with the rows (managedwriter.WithSchemaDescriptor).
func (e *Encoder) Descriptor() *descriptorpb.DescriptorProto { return e.desc }

// Encode returns row (a value or pointer of the encoder's row type) as a
// serialized proto row. A value BigQuery would reject — a JSON column
// that does not parse, a string that is not UTF-8, a TIMESTAMP outside
// years 1-9999 — returns a *RowError.
//
// It writes the proto2 wire format of the row's descriptor straight from
// the struct's fields, in field order: the bytes proto.Marshal
// (deterministic) gives for the same row as a dynamicpb message
// (TestEncodeIsProtoMarshal holds them equal), at a fraction of the cost:
// building the dynamic message and marshalling it by reflection was most
// of the sink's CPU per row.
func (e *Encoder) Encode(row any) ([]byte, error) {
	v, err := e.value(row)
	if err != nil {
		return nil, err
	}
	var b []byte
	err = e.eachValue(v, func(c *column, x reflect.Value) error {
		var err error
		b, err = c.append(b, x)
		return err
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// eachValue calls fn with each value of row v that is not NULL, column by
// column in field order, a list element by element: the one place that
// says what NULL is (a nil pointer; a nil []byte for BYTES), for Encode
// and message alike.
func (e *Encoder) eachValue(v reflect.Value, fn func(c *column, x reflect.Value) error) error {
	for i := range e.cols {
		c := &e.cols[i]
		fv := v.FieldByIndex(c.index)
		switch {
		case c.repeated:
			for j := 0; j < fv.Len(); j++ {
				if err := fn(c, fv.Index(j)); err != nil {
					return err
				}
			}
		case fv.Kind() == reflect.Pointer:
			if !fv.IsNil() {
				if err := fn(c, fv.Elem()); err != nil {
					return err
				}
			}
		case fv.Kind() == reflect.Slice && fv.IsNil(): // BYTES: nil is NULL
		default:
			if err := fn(c, fv); err != nil {
				return err
			}
		}
	}
	return nil
}

// append appends the field of column c holding v, validated, to b.
func (c *column) append(b []byte, v reflect.Value) ([]byte, error) {
	num := c.field.Number()
	switch c.typ {
	case "STRING", "JSON":
		s := v.String()
		if err := c.validString(s); err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendString(b, s), nil
	case "BYTES":
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, v.Bytes()), nil
	}
	x, err := c.scalarBits(v)
	if err != nil {
		return nil, err
	}
	if c.typ == "FLOAT64" {
		b = protowire.AppendTag(b, num, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, x), nil
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, x), nil
}

// scalarBits is the validated value of a numeric column c holding v as
// the bits its wire type carries: a varint, or for FLOAT64 a fixed64.
func (c *column) scalarBits(v reflect.Value) (uint64, error) {
	switch c.typ {
	case "TIMESTAMP":
		us := v.Int()
		if err := c.validTimestamp(us); err != nil {
			return 0, err
		}
		return uint64(us), nil
	case "INT64":
		return uint64(v.Int()), nil
	case "FLOAT64":
		return math.Float64bits(v.Float()), nil
	case "BOOL":
		return protowire.EncodeBool(v.Bool()), nil
	}
	return 0, fmt.Errorf("column %s: no encoding for type %s", c.name, c.typ)
}

// validString returns the RowError of a STRING or JSON value BigQuery
// would reject, or nil.
func (c *column) validString(s string) error {
	if !utf8.ValidString(s) {
		return &RowError{Column: c.name, Msg: "not valid UTF-8"}
	}
	if c.typ == "JSON" && !json.Valid([]byte(s)) {
		return &RowError{Column: c.name, Msg: fmt.Sprintf("not a valid JSON document: %s", clip(s, 80))}
	}
	return nil
}

// validTimestamp returns the RowError of a TIMESTAMP outside BigQuery's
// range, or nil.
func (c *column) validTimestamp(us int64) error {
	if us < minTimestampMicros || us > maxTimestampMicros {
		return &RowError{Column: c.name, Msg: fmt.Sprintf("%d µs is outside BigQuery's TIMESTAMP range (years 1-9999)", us)}
	}
	return nil
}

// Timestamp returns the TIMESTAMP column col of row, in microseconds.
func (e *Encoder) Timestamp(row any, col string) (int64, error) {
	c, ok := e.byName[col]
	if !ok || c.typ != "TIMESTAMP" || c.nullable || c.repeated {
		return 0, fmt.Errorf("%v has no REQUIRED TIMESTAMP column %q", e.rowType, col)
	}
	v, err := e.value(row)
	if err != nil {
		return 0, err
	}
	return v.FieldByIndex(c.index).Int(), nil
}

// JSON returns row as a JSON object keyed by column name, for a dead
// letter's payload. It does not validate: a bad value is shown as it is.
func (e *Encoder) JSON(row any) ([]byte, error) {
	m, err := e.message(row)
	if err != nil {
		return nil, err
	}
	return e.messageJSON(m)
}

// DecodeJSON returns a serialized proto row as a JSON object keyed by
// column name (see JSON).
func (e *Encoder) DecodeJSON(data []byte) ([]byte, error) {
	m, err := e.decode(data)
	if err != nil {
		return nil, err
	}
	return e.messageJSON(m)
}

// DecodeString returns the STRING column col of a serialized proto row;
// nil when NULL or when the type has no such column.
func (e *Encoder) DecodeString(data []byte, col string) *string {
	c, ok := e.byName[col]
	if !ok || c.typ != "STRING" || c.repeated {
		return nil
	}
	m, err := e.decode(data)
	if err != nil || !m.Has(c.field) {
		return nil
	}
	s := m.Get(c.field).String()
	return &s
}

func (e *Encoder) decode(data []byte) (*dynamicpb.Message, error) {
	m := dynamicpb.NewMessage(e.msg)
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("decode %v row: %w", e.rowType, err)
	}
	return m, nil
}

func (e *Encoder) value(row any) (reflect.Value, error) {
	v := reflect.ValueOf(row)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Type() == e.rowType {
		return v, nil
	}
	// A runner that does not know the named type decodes a row as an
	// anonymous struct with the same fields and tags: that converts.
	if v.Kind() == reflect.Struct && v.Type().Name() == "" && v.Type().ConvertibleTo(e.rowType) {
		return v.Convert(e.rowType), nil
	}
	return reflect.Value{}, fmt.Errorf("row is %v, the encoder encodes %v", v.Type(), e.rowType)
}

// message is row as a dynamic proto message, not validated (for JSON).
func (e *Encoder) message(row any) (*dynamicpb.Message, error) {
	v, err := e.value(row)
	if err != nil {
		return nil, err
	}
	m := dynamicpb.NewMessage(e.msg)
	err = e.eachValue(v, func(c *column, x reflect.Value) error {
		pv, err := c.scalar(x)
		if err != nil {
			return err
		}
		if c.repeated {
			m.Mutable(c.field).List().Append(pv)
		} else {
			m.Set(c.field, pv)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// scalar converts one Go value of column c to its proto value.
func (c *column) scalar(v reflect.Value) (protoreflect.Value, error) {
	switch c.typ {
	case "STRING", "JSON":
		return protoreflect.ValueOfString(v.String()), nil
	case "TIMESTAMP":
		return protoreflect.ValueOfInt64(v.Int()), nil
	case "INT64":
		return protoreflect.ValueOfInt64(v.Int()), nil
	case "FLOAT64":
		return protoreflect.ValueOfFloat64(v.Float()), nil
	case "BOOL":
		return protoreflect.ValueOfBool(v.Bool()), nil
	case "BYTES":
		return protoreflect.ValueOfBytes(v.Bytes()), nil
	}
	return protoreflect.Value{}, fmt.Errorf("column %s: no encoding for type %s", c.name, c.typ)
}

// messageJSON writes m as one JSON object, columns in schema order:
// TIMESTAMP as RFC 3339 UTC, JSON columns as the string they hold (it may
// be what was wrong), BYTES as base64, NULL as null.
func (e *Encoder) messageJSON(m *dynamicpb.Message) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i := range e.cols {
		c := &e.cols[i]
		if i > 0 {
			buf.WriteByte(',')
		}
		name, _ := json.Marshal(c.name)
		buf.Write(name)
		buf.WriteByte(':')
		var v any
		switch {
		case c.repeated:
			list := m.Get(c.field).List()
			items := make([]any, list.Len())
			for j := range items {
				items[j] = c.jsonValue(list.Get(j))
			}
			v = items
		case !m.Has(c.field):
			v = nil
		default:
			v = c.jsonValue(m.Get(c.field))
		}
		out, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.name, err)
		}
		buf.Write(out)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func (c *column) jsonValue(v protoreflect.Value) any {
	switch c.typ {
	case "TIMESTAMP":
		return time.UnixMicro(v.Int()).UTC().Format(time.RFC3339Nano)
	case "INT64":
		return v.Int()
	case "FLOAT64":
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(f)
		}
		return f
	case "BOOL":
		return v.Bool()
	case "BYTES":
		return v.Bytes()
	}
	return v.String()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// String returns the STRING column col of row; nil when NULL or when the
// type has no such column.
func (e *Encoder) String(row any, col string) *string {
	c, ok := e.byName[col]
	if !ok || c.typ != "STRING" || c.repeated {
		return nil
	}
	v, err := e.value(row)
	if err != nil {
		return nil
	}
	fv := v.FieldByIndex(c.index)
	if fv.Kind() == reflect.Pointer {
		if fv.IsNil() {
			return nil
		}
		fv = fv.Elem()
	}
	s := fv.String()
	return &s
}
