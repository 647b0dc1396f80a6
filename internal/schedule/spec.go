package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// spec is when an entry fires. Every replica must compute the same ticks
// from the same file, whenever it started: a tick's time is part of its
// task ID.
type spec interface {
	// Next returns the first tick strictly after t (zero if none within
	// five years).
	Next(t time.Time) time.Time
}

// every fires at the multiples of d since the Unix epoch, so "@every 1h"
// fires on the hour (UTC) in every replica. robfig/cron's own @every counts
// from the moment it is scheduled, which differs per replica.
type every time.Duration

func (e every) Next(t time.Time) time.Time {
	s := int64(time.Duration(e) / time.Second)
	u := t.Unix()
	return time.Unix((u/s+1)*s, 0).In(t.Location())
}

// cronParser reads five-field cron lines and the descriptors (@hourly,
// @daily, ...). Seconds are not a field: the finest cron tick is a minute;
// use @every for less.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parseSpec reads an entry's cron field in loc (UTC when nil).
func parseSpec(raw string, loc *time.Location) (spec, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("is required: a cron line (\"*/5 * * * *\"), a descriptor (@hourly) or @every <duration>")
	}
	if strings.HasPrefix(raw, "CRON_TZ=") || strings.HasPrefix(raw, "TZ=") {
		return nil, errors.New("must not carry a time zone prefix; use the entry's timezone field")
	}
	if rest, ok := strings.CutPrefix(raw, "@every"); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		switch {
		case err != nil:
			return nil, fmt.Errorf("%q: @every takes a duration such as 30s, 5m or 1h", raw)
		case d < time.Second || d%time.Second != 0:
			return nil, fmt.Errorf("%q: @every must be a whole number of seconds, at least 1s", raw)
		}
		return every(d), nil
	}
	s, err := cronParser.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a cron line: %v", raw, err)
	}
	if loc == nil {
		loc = time.UTC
	}
	if ss, ok := s.(*cron.SpecSchedule); ok {
		ss.Location = loc // robfig uses time.Local unless told
	}
	return s, nil
}

// latestWithin returns the last tick in [from, to], or zero.
func latestWithin(s spec, from, to time.Time) time.Time {
	var last time.Time
	for t := s.Next(from.Add(-time.Nanosecond)); !t.IsZero() && !t.After(to); t = s.Next(t) {
		last = t
	}
	return last
}
