package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// FieldError is one invalid field, named as the caller wrote it
// ("payload.sleep").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of a request: well-formed
// JSON whose values are not acceptable (an HTTP API answers it with 422).
type ValidationError struct {
	Fields []FieldError
}

// Add records one invalid field.
func (e *ValidationError) Add(field, msg string) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: msg})
}

// Err returns e when it holds a field, nil otherwise, so a Validate method
// can end with `return v.Err()`.
func (e *ValidationError) Err() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid task: " + strings.Join(parts, "; ")
}

// DecodeError is JSON that cannot be read into what it should be: not
// JSON, not one object, an unknown field or a value of the wrong JSON type
// (an HTTP API answers it with 400). Field is empty when the problem is the
// document as a whole.
type DecodeError struct {
	Field   string
	Message string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// DecodeStrict reads exactly one JSON object from r into v (a pointer to a
// struct): unknown fields, trailing data, `null` and anything but an object
// are refused with a *DecodeError. Errors of r itself (such as
// *http.MaxBytesError) are returned as they are.
func DecodeStrict(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return decodeStrictBytes(data, v)
}

func decodeStrictBytes(data []byte, v any) error {
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return &DecodeError{Message: "is empty; send a JSON object"}
	case trimmed[0] != '{':
		if json.Valid(trimmed) {
			return &DecodeError{Message: "must be a JSON object"}
		}
		return &DecodeError{Message: "is not valid JSON"}
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	// Anything but white space after the object is refused. (dec.More
	// alone misses a stray closing "}" or "]": found by FuzzDecodeRequest.)
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &DecodeError{Message: "must hold a single JSON object"}
	}
	return nil
}

func decodeError(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &DecodeError{Message: "is not valid JSON"}
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return &DecodeError{Message: "must be a JSON object"}
		}
		return &DecodeError{Field: jsonPath(typeErr.Field), Message: "must be a " + jsonType(typeErr.Type)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this one.
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &DecodeError{Field: name, Message: "is not a known field"}
	}
	return &DecodeError{Message: fmt.Sprintf("could not be decoded: %v", err)}
}

// jsonPath drops the Go names of embedded structs that encoding/json puts
// in a field path ("Request.max_retry"): our JSON names are lower case.
func jsonPath(field string) string {
	parts := strings.Split(field, ".")
	out := parts[:0]
	for _, p := range parts {
		if p != "" && !(p[0] >= 'A' && p[0] <= 'Z') {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

// jsonType names the JSON type a Go type is decoded from.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "JSON array"
	case reflect.Map, reflect.Struct:
		return "JSON object"
	}
	return "JSON value"
}
