package schedule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones do not depend on the image having tzdata

	"go.yaml.in/yaml/v3"

	"taskstack/internal/tasks"
)

// Entry is one periodic task of the schedule file, validated.
type Entry struct {
	Name string
	// Cron is the entry's cron field as written: "*/5 * * * *", "@daily",
	// "@every 30s".
	Cron     string
	Timezone string
	Type     string
	Queue    string
	Enabled  bool
	// Payload is the payload as the file has it, in JSON.
	Payload json.RawMessage
	// Line is where the entry starts in the file.
	Line int

	spec     spec
	prepared tasks.Prepared
}

// Schedule is a validated schedule file.
type Schedule struct {
	Entries []Entry
	// hash identifies the file's content, so that an unchanged file is not
	// parsed again.
	hash string
}

// MaxEntries bounds a schedule (every entry is a label value of the
// schedule metrics).
const MaxEntries = 100

// validName is what an entry name may be: it becomes part of task IDs
// (sched:<name>:<unix>) and a metric label value.
var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// FieldError is one invalid field of the schedule file.
type FieldError struct {
	Line int
	// Entry is the entry's name when known, else its position ("entries[2]").
	Entry string
	// Field is named as in the file: "cron", "payload.sleep".
	Field   string
	Message string
}

func (e FieldError) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "line %d", e.Line)
	if e.Entry != "" {
		fmt.Fprintf(&b, ": entry %s", e.Entry)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	b.WriteString(": " + e.Message)
	return b.String()
}

// FileError lists every problem of a schedule file, each with its line.
type FileError struct {
	Path   string
	Fields []FieldError
}

func (e *FileError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.String()
	}
	return fmt.Sprintf("schedule file %s: %s", e.Path, strings.Join(parts, "; "))
}

func (e *FileError) add(line int, entry, field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Line: line, Entry: entry, Field: field, Message: fmt.Sprintf(format, args...)})
}

// Load reads and validates the schedule file at path against the catalogue.
func Load(path string, cat *tasks.Catalogue) (*Schedule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("schedule file: %w", err)
	}
	return Parse(path, data, cat)
}

// Parse validates a schedule file's content against the catalogue: every
// entry's type, payload and queue go through the catalogue's Prepare, so a
// schedule can only hold tasks the API would accept. Errors are a
// *FileError naming the line and field of every problem.
func Parse(path string, data []byte, cat *tasks.Catalogue) (*Schedule, error) {
	ferr := &FileError{Path: path}
	s := &Schedule{hash: contentHash(data)}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := yamlErrorLine(err)
		ferr.add(line, "", "", "%s", msg)
		return nil, ferr
	}
	if len(doc.Content) == 0 {
		return s, nil // an empty file is an empty schedule
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		ferr.add(root.Line, "", "", "the file must be a mapping with an entries list")
		return nil, ferr
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "entries" {
			ferr.add(k.Line, "", k.Value, "is not a known field (the file has one: entries)")
			continue
		}
		list = v
	}
	if list == nil || (list.Kind == yaml.ScalarNode && list.Tag == "!!null") {
		return finish(s, ferr)
	}
	if list.Kind != yaml.SequenceNode {
		ferr.add(list.Line, "", "entries", "must be a list of entries")
		return nil, ferr
	}
	if len(list.Content) > MaxEntries {
		ferr.add(list.Line, "", "entries", "has %d entries; at most %d", len(list.Content), MaxEntries)
	}
	seen := map[string]int{}
	for i, n := range list.Content {
		e, ok := parseEntry(ferr, i, n, cat)
		if !ok {
			continue
		}
		if first, dup := seen[e.Name]; dup {
			ferr.add(e.Line, strconv.Quote(e.Name), "name", "is used twice (first on line %d)", first)
			continue
		}
		seen[e.Name] = e.Line
		s.Entries = append(s.Entries, e)
	}
	return finish(s, ferr)
}

func finish(s *Schedule, ferr *FileError) (*Schedule, error) {
	if len(ferr.Fields) > 0 {
		return nil, ferr
	}
	slices.SortFunc(s.Entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return s, nil
}

func contentHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// entryFields are the fields an entry may have.
var entryFields = []string{"name", "cron", "type", "payload", "queue", "timezone", "enabled"}

func parseEntry(ferr *FileError, i int, n *yaml.Node, cat *tasks.Catalogue) (Entry, bool) {
	before := len(ferr.Fields)
	ep := &entryParser{ferr: ferr, entry: n, label: fmt.Sprintf("entries[%d]", i), nodes: map[string]*yaml.Node{}}
	if n.Kind != yaml.MappingNode {
		ferr.add(n.Line, ep.label, "", "must be a mapping (name, cron, type, payload, queue, timezone, enabled)")
		return Entry{}, false
	}
	e := Entry{Line: n.Line, Enabled: true}
	unknown, twice := ep.index()
	e.Name = ep.name()
	for _, k := range unknown {
		ferr.add(k.Line, ep.label, k.Value, "is not a known field (known: %s)", strings.Join(entryFields, ", "))
	}
	for _, k := range twice {
		ferr.add(k.Line, ep.label, k.Value, "is given twice")
	}
	e.Cron = ep.str("cron", true)
	e.Timezone = ep.str("timezone", false)
	e.Type = ep.str("type", true)
	e.Queue = ep.str("queue", false)
	if v := ep.nodes["enabled"]; v != nil {
		if v.Kind != yaml.ScalarNode || v.Decode(&e.Enabled) != nil || v.Tag != "!!bool" {
			ferr.add(v.Line, ep.label, "enabled", "must be true or false")
		}
	}
	e.spec = ep.spec(e.Cron, e.Timezone)
	payload, ok := ep.payload()
	e.Payload = payload
	if e.Type != "" && ok {
		if p, ok := ep.prepare(cat, tasks.Request{Type: e.Type, Payload: e.Payload, Queue: e.Queue}); ok {
			e.prepared, e.Queue = p, p.Queue
		}
	}
	return e, len(ferr.Fields) == before
}

// entryParser reads one entry's fields, adding what is wrong to ferr
// under the entry's label (its name once known, else its position).
type entryParser struct {
	ferr  *FileError
	entry *yaml.Node
	label string
	nodes map[string]*yaml.Node
}

// index maps the entry's known fields to their values and returns the
// unknown and repeated keys.
func (ep *entryParser) index() (unknown, twice []*yaml.Node) {
	n := ep.entry
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		switch {
		case !slices.Contains(entryFields, k.Value):
			unknown = append(unknown, k)
		case ep.nodes[k.Value] != nil:
			twice = append(twice, k)
		default:
			ep.nodes[k.Value] = v
		}
	}
	return unknown, twice
}

// str reads a string field.
func (ep *entryParser) str(field string, required bool) string {
	v := ep.nodes[field]
	if v == nil {
		if required {
			ep.ferr.add(ep.entry.Line, ep.label, field, "is required")
		}
		return ""
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		ep.ferr.add(v.Line, ep.label, field, "must be a string")
		return ""
	}
	return strings.TrimSpace(v.Value)
}

// name reads and checks the entry's name, which becomes its label.
func (ep *entryParser) name() string {
	name := ep.str("name", true)
	switch {
	case name == "" && ep.nodes["name"] != nil:
		ep.ferr.add(ep.nodes["name"].Line, ep.label, "name", "must not be empty")
	case name != "" && !validName.MatchString(name):
		ep.ferr.add(ep.nodes["name"].Line, ep.label, "name", "%q must be lower-case letters, digits, '.', '_' or '-' (at most 63, starting with a letter or digit)", name)
	case name != "":
		ep.label = strconv.Quote(name)
	}
	return name
}

// spec reads the cron field in its time zone; nil when either is wrong.
func (ep *entryParser) spec(cron, timezone string) spec {
	var loc *time.Location
	if timezone != "" {
		var err error
		if loc, err = time.LoadLocation(timezone); err != nil {
			ep.ferr.add(ep.nodes["timezone"].Line, ep.label, "timezone", "%q is not a time zone (use an IANA name such as Europe/Paris or UTC)", timezone)
		}
	}
	if cron == "" {
		return nil
	}
	sp, err := parseSpec(cron, loc)
	switch {
	case err != nil:
		ep.ferr.add(ep.nodes["cron"].Line, ep.label, "cron", "%v", err)
	case timezone != "" && isEvery(sp):
		ep.ferr.add(ep.nodes["timezone"].Line, ep.label, "timezone", "has no effect on @every (its ticks are counted from the Unix epoch); remove it")
	case sp.Next(time.Now()).IsZero():
		ep.ferr.add(ep.nodes["cron"].Line, ep.label, "cron", "%q never fires", cron)
	default:
		return sp
	}
	return nil
}

// payload reads the payload mapping as JSON (nil when absent); ok is
// false when it cannot be read.
func (ep *entryParser) payload() (json.RawMessage, bool) {
	v := ep.nodes["payload"]
	if v == nil {
		return nil, true
	}
	var raw any
	if err := v.Decode(&raw); err != nil {
		ep.ferr.add(v.Line, ep.label, "payload", "could not be read: %v", err)
		return nil, false
	}
	b, err := json.Marshal(raw)
	if err != nil {
		ep.ferr.add(v.Line, ep.label, "payload", "must be a mapping with string keys")
		return nil, false
	}
	if raw == nil {
		return nil, true
	}
	return b, true
}

// prepare validates the task through the catalogue, as the API would,
// naming each bad field at its line.
func (ep *entryParser) prepare(cat *tasks.Catalogue, r tasks.Request) (tasks.Prepared, bool) {
	p, err := cat.Prepare(r)
	var verr *tasks.ValidationError
	switch {
	case errors.As(err, &verr):
		for _, f := range verr.Fields {
			ep.ferr.add(fieldLine(ep.entry, ep.nodes, f.Field), ep.label, f.Field, "%s", f.Message)
		}
	case err != nil:
		ep.ferr.add(ep.entry.Line, ep.label, "", "%v", err)
	default:
		return p, true
	}
	return tasks.Prepared{}, false
}

func isEvery(s spec) bool { _, ok := s.(every); return ok }

// fieldLine finds the line of a field the catalogue named ("payload.sleep"
// is the line of the key sleep inside the payload mapping).
func fieldLine(entry *yaml.Node, nodes map[string]*yaml.Node, field string) int {
	top, rest, _ := strings.Cut(field, ".")
	v := nodes[top]
	if v == nil {
		return entry.Line
	}
	if rest != "" && v.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(v.Content); j += 2 {
			if v.Content[j].Value == rest {
				return v.Content[j].Line
			}
		}
	}
	return v.Line
}

// yamlErrorLine pulls the line out of a yaml.v3 syntax error ("yaml: line
// 7: did not find expected key").
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, tail, _ := strings.Cut(rest, ":")
		if n, err := strconv.Atoi(num); err == nil {
			return n, strings.TrimSpace(tail)
		}
	}
	return 0, msg
}
