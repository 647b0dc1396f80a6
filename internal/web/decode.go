package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"taskstack/internal/tasks"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// decodeJSON reads one JSON object from the body into v: at most
// MaxBodyBytes, unknown fields refused, trailing data refused.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	// The Content-Type is not checked: `curl -d` sends a form type with a
	// JSON body, and the body has to be valid JSON either way.
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return err
		}
		return newProblem(http.StatusBadRequest, "the body must hold a single JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return err
	case errors.Is(err, io.EOF):
		return newProblem(http.StatusBadRequest, "the body is empty; send a JSON object")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return newProblem(http.StatusBadRequest, "the body is not valid JSON")
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return newProblem(http.StatusBadRequest, "the body must be a JSON object")
		}
		return newProblem(http.StatusBadRequest, fmt.Sprintf("field %q must be a %s", field, jsonKind(typeErr.Type.String())),
			tasks.FieldError{Field: field, Message: "must be a " + jsonKind(typeErr.Type.String())})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return newProblem(http.StatusBadRequest, fmt.Sprintf("unknown field %q", name),
			tasks.FieldError{Field: name, Message: "is not a known field"})
	}
	return newProblem(http.StatusBadRequest, "the body could not be decoded")
}

func jsonKind(goType string) string {
	switch {
	case goType == "string":
		return "string"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "*int"), strings.HasPrefix(goType, "float"):
		return "number"
	case goType == "bool":
		return "boolean"
	}
	return "JSON value of type " + goType
}
