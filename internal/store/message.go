package store

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// message is asynq's TaskMessage (internal/proto/asynq.proto in asynq
// v0.26.0), decoded by hand: asynq keeps its protobuf types internal.
type message struct {
	Type         string
	Payload      []byte
	Headers      map[string]string
	ID           string
	Queue        string
	Retry        int
	Retried      int
	ErrorMsg     string
	Timeout      int64 // seconds
	Deadline     int64 // Unix seconds
	LastFailedAt int64 // Unix seconds
	Retention    int64 // seconds
	CompletedAt  int64 // Unix seconds
}

// Field numbers of asynq.TaskMessage.
const (
	fieldType         = 1
	fieldPayload      = 2
	fieldID           = 3
	fieldQueue        = 4
	fieldRetry        = 5
	fieldRetried      = 6
	fieldErrorMsg     = 7
	fieldTimeout      = 8
	fieldDeadline     = 9
	fieldLastFailedAt = 11
	fieldRetention    = 12
	fieldCompletedAt  = 13
	fieldHeaders      = 15
)

var errMalformed = errors.New("malformed task message")

func decodeMessage(b []byte) (message, error) {
	var m message
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return m, errMalformed
		}
		b = b[n:]
		switch {
		case typ == protowire.BytesType && (num == fieldType || num == fieldPayload || num == fieldID || num == fieldQueue || num == fieldErrorMsg || num == fieldHeaders):
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return m, errMalformed
			}
			b = b[n:]
			switch num {
			case fieldType:
				m.Type = string(v)
			case fieldPayload:
				m.Payload = v
			case fieldID:
				m.ID = string(v)
			case fieldQueue:
				m.Queue = string(v)
			case fieldErrorMsg:
				m.ErrorMsg = string(v)
			case fieldHeaders:
				k, val, err := decodeMapEntry(v)
				if err != nil {
					return m, err
				}
				if m.Headers == nil {
					m.Headers = map[string]string{}
				}
				m.Headers[k] = val
			}
		case typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return m, errMalformed
			}
			b = b[n:]
			switch num {
			case fieldRetry:
				m.Retry = int(int32(v))
			case fieldRetried:
				m.Retried = int(int32(v))
			case fieldTimeout:
				m.Timeout = int64(v)
			case fieldDeadline:
				m.Deadline = int64(v)
			case fieldLastFailedAt:
				m.LastFailedAt = int64(v)
			case fieldRetention:
				m.Retention = int64(v)
			case fieldCompletedAt:
				m.CompletedAt = int64(v)
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return m, errMalformed
			}
			b = b[n:]
		}
	}
	if m.ID == "" || m.Type == "" {
		return m, fmt.Errorf("%w: no id or type", errMalformed)
	}
	return m, nil
}

// decodeMapEntry reads one map<string,string> entry (key 1, value 2).
func decodeMapEntry(b []byte) (string, string, error) {
	var k, v string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", "", errMalformed
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return "", "", errMalformed
			}
			b = b[n:]
			continue
		}
		s, n := protowire.ConsumeString(b)
		if n < 0 {
			return "", "", errMalformed
		}
		b = b[n:]
		switch num {
		case 1:
			k = s
		case 2:
			v = s
		}
	}
	return k, v, nil
}
